package itp

import (
	"errors"
	"testing"
)

// result is a sql.Result with a chosen answer.
type result struct {
	n   int64
	err error
}

func (r result) LastInsertId() (int64, error) { return 0, errors.New("not supported") }
func (r result) RowsAffected() (int64, error) { return r.n, r.err }

// TestBrandChanged: a driver that cannot count changed rows reports its own
// error, wrapped; only a count of zero means the brand does not exist.
func TestBrandChanged(t *testing.T) {
	t.Parallel()
	driverErr := errors.New("driver: RowsAffected not supported")
	for _, tc := range []struct {
		name string
		res  result
		want error // nil: success
	}{
		{"one row", result{n: 1}, nil},
		{"no row", result{n: 0}, ErrBrandNotFound},
		{"count failed", result{err: driverErr}, driverErr},
	} {
		err := brandChanged(tc.res, "brand-1")
		if (tc.want == nil) != (err == nil) || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if tc.want != ErrBrandNotFound && errors.Is(err, ErrBrandNotFound) {
			t.Errorf("%s: %v taken for a missing brand", tc.name, err)
		}
	}
}

package store_test

import (
	"context"
	"database/sql"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

func TestParams(t *testing.T) {
	t.Parallel()
	// build writes a statement the way callers do: placeholders in the order
	// their values are added.
	type build func(p *store.Params) string
	tests := []struct {
		name     string
		build    build
		postgres string
		sqlite   string
		args     []any
	}{
		{
			name:     "nothing added",
			build:    func(p *store.Params) string { return "SELECT 1" + p.List() },
			postgres: "SELECT 1",
			sqlite:   "SELECT 1",
			args:     nil,
		},
		{
			name: "one value",
			build: func(p *store.Params) string {
				return "SELECT id FROM t WHERE id = " + p.Add("a")
			},
			postgres: "SELECT id FROM t WHERE id = $1",
			sqlite:   "SELECT id FROM t WHERE id = ?",
			args:     []any{"a"},
		},
		{
			name: "conditions then a list then a limit, numbered in order",
			build: func(p *store.Params) string {
				return "SELECT id FROM t WHERE a = " + p.Add("x") + " AND k IN (" + p.List("k1", "k2", "k3") + ") LIMIT " + p.Add(10)
			},
			postgres: "SELECT id FROM t WHERE a = $1 AND k IN ($2, $3, $4) LIMIT $5",
			sqlite:   "SELECT id FROM t WHERE a = ? AND k IN (?, ?, ?) LIMIT ?",
			args:     []any{"x", "k1", "k2", "k3", 10},
		},
		{
			name: "a value used twice is added twice",
			build: func(p *store.Params) string {
				return "(at < " + p.Add(int64(5)) + " OR (at = " + p.Add(int64(5)) + " AND id < " + p.Add("z") + "))"
			},
			postgres: "(at < $1 OR (at = $2 AND id < $3))",
			sqlite:   "(at < ? OR (at = ? AND id < ?))",
			args:     []any{int64(5), int64(5), "z"},
		},
		{
			name: "VALUES rows",
			build: func(p *store.Params) string {
				return "VALUES (" + p.List("s", "k1", "v1") + "), (" + p.List("s", "k2", "v2") + ")"
			},
			postgres: "VALUES ($1, $2, $3), ($4, $5, $6)",
			sqlite:   "VALUES (?, ?, ?), (?, ?, ?)",
			args:     []any{"s", "k1", "v1", "s", "k2", "v2"},
		},
	}
	for _, tt := range tests {
		for _, e := range []struct {
			engine store.Engine
			want   string
		}{{store.Postgres, tt.postgres}, {store.SQLite, tt.sqlite}} {
			t.Run(tt.name+"/"+string(e.engine), func(t *testing.T) {
				p := store.NewParams(e.engine)
				if got := tt.build(p); got != e.want {
					t.Errorf("text = %q, want %q", got, e.want)
				}
				if diff := cmp.Diff(tt.args, p.Args()); diff != "" {
					t.Errorf("args (-want +got):\n%s", diff)
				}
				if p.Len() != len(tt.args) {
					t.Errorf("Len = %d, want %d", p.Len(), len(tt.args))
				}
			})
		}
	}
}

// TestParamsBind runs statements written with Params on each engine: every
// value must reach its own placeholder, repeated values and long lists
// included.
func TestParamsBind(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `CREATE TABLE params_test (id TEXT PRIMARY KEY, at BIGINT NOT NULL)`); err != nil {
				return err
			}
			p := store.NewParams(db.Engine())
			q := `INSERT INTO params_test (id, at) VALUES `
			for i := range 600 { // 1,200 parameters: past the point where numbered ones cost
				if i > 0 {
					q += ", "
				}
				q += "(" + p.List(string(rune('a'+i%26))+string(rune('a'+i/26)), int64(i)) + ")"
			}
			_, err := tx.ExecContext(ctx, q, p.Args()...)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		p := store.NewParams(db.Engine())
		q := `SELECT id FROM params_test WHERE id IN (` + p.List("aa", "ba", "cb", "zz") + `) AND (at > ` + p.Add(int64(26)) +
			` OR (at = ` + p.Add(int64(0)) + ` AND id = ` + p.Add("aa") + `)) ORDER BY at LIMIT ` + p.Add(10)
		rows, err := db.Read().QueryContext(ctx, q, p.Args()...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			got = append(got, id)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		// aa is at 0 (the OR's second branch), ba at 1 (neither), cb at 28
		// (past 26), zz does not exist.
		if want := []string{"aa", "cb"}; !slices.Equal(got, want) {
			t.Errorf("ids = %v, want %v", got, want)
		}
	})
}

package payments

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// fuzzStore stores what a fuzz target accepted on every engine (PostgreSQL
// too when PONTE_TEST_DATABASE_URL is set), as the handler would: a refusal
// by the rules is fine, a database error is a failure.
func fuzzStore(f *testing.F) func(t *testing.T, req ConsentRequest, jti string) {
	dbs := storetest.OpenEach(f)
	services := make([]*Service, len(dbs))
	for i, db := range dbs {
		storetest.AddApplication(f, db.DB, "a1")
		services[i] = NewService(db.DB, clock.NewFake(now), slog.New(slog.NewTextHandler(io.Discard, nil)), "https://ponte.example")
	}
	var n atomic.Int64
	return func(t *testing.T, req ConsentRequest, jti string) {
		key := strconv.FormatInt(n.Add(1), 10)
		if jti != "" {
			jti += "-" + key // the same seed runs once per engine and per fuzz worker
		}
		for i, svc := range services {
			_, err := svc.Create(context.Background(), CreateInput{ApplicationID: "a1", IdempotencyKey: key, Request: req, JTI: jti})
			var verr *ValidationError
			if err != nil && !errors.As(err, &verr) && !errors.Is(err, idempotency.ErrKeyReused) {
				t.Fatalf("%s: store %+v: %v", dbs[i].Engine, req, err)
			}
		}
	}
}

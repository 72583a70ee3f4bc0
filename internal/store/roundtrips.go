package store

import (
	"context"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// RoundTrips counts the PostgreSQL round trips made under one context: every
// query, exec, prepare and batch (a pipelined batch is one), whichever pool
// (database/sql or the native pgx pool) carried it. Tests use it to hold the
// hot write paths to one round trip per request (issue 17 §2).
type RoundTrips struct{ n atomic.Int64 }

// N is how many round trips were counted so far.
func (r *RoundTrips) N() int64 { return r.n.Load() }

type roundTripsKey struct{}

// CountRoundTrips returns a context under which every PostgreSQL round trip
// is counted in the returned counter. On SQLite nothing is counted.
func CountRoundTrips(ctx context.Context) (context.Context, *RoundTrips) {
	r := &RoundTrips{}
	return context.WithValue(ctx, roundTripsKey{}, r), r
}

func countRoundTrip(ctx context.Context) {
	if r, ok := ctx.Value(roundTripsKey{}).(*RoundTrips); ok {
		r.n.Add(1)
	}
}

// roundTripTracer is installed on every PostgreSQL connection; it costs one
// context lookup per statement when nothing is counting.
type roundTripTracer struct{}

var (
	_ pgx.QueryTracer   = roundTripTracer{}
	_ pgx.BatchTracer   = roundTripTracer{}
	_ pgx.PrepareTracer = roundTripTracer{}
)

func (roundTripTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	countRoundTrip(ctx)
	return ctx
}

func (roundTripTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (roundTripTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	countRoundTrip(ctx)
	return ctx
}

func (roundTripTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (roundTripTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

func (roundTripTracer) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	countRoundTrip(ctx)
	return ctx
}

func (roundTripTracer) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

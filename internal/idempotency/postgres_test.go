package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// postgresDB opens a fresh PostgreSQL schema with application a1 and a
// table the test effects write, or skips without PostgreSQL.
func postgresDB(t *testing.T) *store.DB {
	t.Helper()
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	db := storetest.Open(t, storetest.FreshSchema(t, base))
	app(t, db, "a1")
	if _, err := db.Pool().Exec(context.Background(), `CREATE TABLE effects (id TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	return db
}

var errTaken = errors.New("effect's row taken")

// insertEffect is an effect that writes row id of effects and a job, both
// only when the key is claimed; a taken id fails it with errTaken.
func insertEffect(id string, now time.Time) func(q *idempotency.Query) error {
	return func(q *idempotency.Query) error {
		q.With("effect", `INSERT INTO effects (id) SELECT `+q.Arg(id)+` FROM `+idempotency.Claimed)
		q.OnUniqueViolation("effects", errTaken)
		job, err := jobs.EnqueueQuery(now, jobs.Job{Kind: "test.effect", Payload: id, UniqueKey: "effect:" + id}, idempotency.Claimed, q.Arg)
		if err != nil {
			return err
		}
		q.With("job", job)
		return nil
	}
}

// rows counts the effects' rows and their jobs.
func rows(t *testing.T, db *store.DB) (effects, jobRows int) {
	t.Helper()
	err := db.Read().QueryRow(`SELECT (SELECT count(*) FROM effects), (SELECT count(*) FROM jobs WHERE kind = 'test.effect')`).
		Scan(&effects, &jobRows)
	if err != nil {
		t.Fatal(err)
	}
	return effects, jobRows
}

// TestRunPostgres: the claim, the effect and the record are one round trip;
// a replay or another request under the key one more (the read of the
// record); a refused effect writes nothing and leaves the key free; a record
// past its TTL is taken over; a key a ticket holds is refused.
func TestRunPostgres(t *testing.T) {
	t.Parallel()
	db := postgresDB(t)
	bg := context.Background()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	run := func(req idempotency.Request, body string, effect func(q *idempotency.Query) error) (idempotency.Response, int64, error) {
		ctx, n := store.CountRoundTrips(bg)
		resp := idempotency.Response{Status: 201, Body: []byte(body)}
		got, err := idempotency.RunPostgres(ctx, db, req, resp, effect)
		return got, n.N(), err
	}
	// Warm the connection's statement cache: a statement's first use on a
	// connection also prepares it.
	for i := range 2 {
		warm := idempotency.Request{ApplicationID: "a1", Key: fmt.Sprint("warm-", i), Fingerprint: "f", Now: now}
		if _, _, err := run(warm, `{}`, insertEffect(fmt.Sprint("warm-", i), now)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := run(warm, `{}`, insertEffect(fmt.Sprint("warm-", i), now)); err != nil {
			t.Fatal(err)
		}
	}
	req := idempotency.Request{ApplicationID: "a1", Key: "k", Fingerprint: "f1", Now: now}
	steps := []struct {
		name      string
		req       idempotency.Request
		body, id  string
		wantBody  string
		replayed  bool
		err       error
		trips     int64
		effects   int // rows of effects afterwards, warm-ups included
		skipTrips bool
	}{
		{name: "fresh", req: req, body: `{"n":1}`, id: "e1", wantBody: `{"n":1}`, trips: 1, effects: 3},
		{name: "replay", req: req, body: `{"n":2}`, id: "e2", wantBody: `{"n":1}`, replayed: true, trips: 2, effects: 3},
		{name: "another request", req: idempotency.Request{ApplicationID: "a1", Key: "k", Fingerprint: "f2", Now: now},
			body: `{"n":3}`, id: "e3", err: idempotency.ErrKeyReused, trips: 2, effects: 3},
		{name: "refused effect", req: idempotency.Request{ApplicationID: "a1", Key: "k2", Fingerprint: "f", Now: now},
			body: `{"n":4}`, id: "e1", err: errTaken, trips: 1, effects: 3},
		{name: "key of the refused effect is free", req: idempotency.Request{ApplicationID: "a1", Key: "k2", Fingerprint: "f", Now: now},
			// pgx forgets a statement that failed: its next use prepares it again.
			body: `{"n":5}`, id: "e5", wantBody: `{"n":5}`, effects: 4, skipTrips: true},
		{name: "past the TTL, before a sweep", req: idempotency.Request{ApplicationID: "a1", Key: "k", Fingerprint: "f2", Now: now.Add(idempotency.TTL)},
			body: `{"n":6}`, id: "e6", wantBody: `{"n":6}`, trips: 1, effects: 5},
		{name: "no key", req: idempotency.Request{ApplicationID: "a1", Now: now}, body: `{"n":7}`, id: "e7", wantBody: `{"n":7}`,
			effects: 6, skipTrips: true}, // another statement, not warmed up
	}
	for _, s := range steps {
		got, trips, err := run(s.req, s.body, insertEffect(s.id, now))
		if !errors.Is(err, s.err) {
			t.Fatalf("%s: err %v, want %v", s.name, err, s.err)
		}
		if err == nil && (string(got.Body) != s.wantBody || got.Replayed != s.replayed || got.Status != 201) {
			t.Errorf("%s: %d %s replayed %v; want %s replayed %v", s.name, got.Status, got.Body, got.Replayed, s.wantBody, s.replayed)
		}
		if !s.skipTrips && trips != s.trips {
			t.Errorf("%s: %d round trips, want %d", s.name, trips, s.trips)
		}
		if effects, jobRows := rows(t, db); effects != s.effects || jobRows != s.effects {
			t.Errorf("%s: %d effects and %d jobs, want %d of each", s.name, effects, jobRows, s.effects)
		}
	}

	// Before runs in the same batch, ahead of the statement, and rolls back with it.
	ctx, n := store.CountRoundTrips(bg)
	before := func(id string) func(q *idempotency.Query) error {
		return func(q *idempotency.Query) error {
			q.Before(`INSERT INTO effects (id) VALUES ($1)`, "before-"+id)
			return insertEffect(id, now)(q)
		}
	}
	resp := idempotency.Response{Status: 201, Body: []byte(`{}`)}
	b1 := idempotency.Request{ApplicationID: "a1", Key: "b1", Fingerprint: "f", Now: now}
	if _, err := idempotency.RunPostgres(ctx, db, b1, resp, before("b1")); err != nil {
		t.Fatal(err)
	}
	if _, err := idempotency.RunPostgres(bg, db, idempotency.Request{ApplicationID: "a1", Key: "b2", Fingerprint: "f", Now: now},
		resp, before("e1")); !errors.Is(err, errTaken) {
		t.Fatalf("a refused effect after Before: %v", err)
	}
	var kept int
	if err := db.Read().QueryRow(`SELECT count(*) FROM effects WHERE id LIKE 'before-%'`).Scan(&kept); err != nil || kept != 1 {
		t.Errorf("Before rows: %d %v; want 1 (the refused batch's rolled back)", kept, err)
	}
	if n.N() > 2 { // first use of the batch's statements
		t.Errorf("a batch with Before: %d round trips", n.N())
	}

	// A key a live consent-flow ticket holds is taken.
	if _, err := db.Pool().Exec(bg, `INSERT INTO consent_flow_tickets (ticket_id, application_id, company_key, document_number,
		request_uri, client_id, status, created_at, updated_at, expires_at, idempotency_key)
		VALUES ('t1', 'a1', 'K', '47742663023', 'r', 'c', 'UNUSED', $1, $1, $2, 'held')`,
		now.UnixMilli(), now.Add(time.Minute).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	held := idempotency.Request{ApplicationID: "a1", Key: "held", Fingerprint: "f", Now: now.Add(time.Hour)}
	if _, _, err := run(held, `{}`, insertEffect("h1", now)); !errors.Is(err, idempotency.ErrKeyReused) {
		t.Errorf("key of a live ticket: %v, want ErrKeyReused", err)
	}
	held.Now = now.Add(idempotency.TTL)
	if got, _, err := run(held, `{}`, insertEffect("h1", now)); err != nil || got.Replayed {
		t.Errorf("key of a ticket 24 h old: %+v %v", got, err)
	}

	// SQLite has no native pool: RunPostgres refuses rather than half-works.
	lite := storetest.Open(t, "sqlite:"+t.TempDir()+"/p.db")
	if _, err := idempotency.RunPostgres(bg, lite, req, resp, insertEffect("x", now)); err == nil {
		t.Error("RunPostgres on SQLite did not fail")
	}
}

// TestRunPostgresConcurrent: 20 requests with one key at once make one
// effect, and every caller gets the first answer.
func TestRunPostgresConcurrent(t *testing.T) {
	t.Parallel()
	db := postgresDB(t)
	now := time.Unix(1e9, 0)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		bodies = map[string]int{}
		fresh  int
	)
	for i := range 20 {
		wg.Go(func() {
			resp := idempotency.Response{Status: 201, Body: fmt.Appendf(nil, `{"n":%d}`, i)}
			got, err := idempotency.RunPostgres(context.Background(), db,
				idempotency.Request{ApplicationID: "a1", Key: "same", Fingerprint: "f", Now: now}, resp, insertEffect(fmt.Sprint("c", i), now))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			bodies[string(got.Body)]++
			if !got.Replayed {
				fresh++
			}
		})
	}
	wg.Wait()
	if effects, jobRows := rows(t, db); effects != 1 || jobRows != 1 || fresh != 1 || len(bodies) != 1 {
		t.Errorf("%d effects, %d jobs, %d fresh answers, answers %v; want one effect, one job, one fresh answer, one body",
			effects, jobRows, fresh, bodies)
	}
}

// A statement refused by the database after the claim rolls the claim back:
// no record, no effect.
func TestRunPostgresAtomic(t *testing.T) {
	t.Parallel()
	db := postgresDB(t)
	now := time.Unix(1e9, 0)
	req := idempotency.Request{ApplicationID: "a1", Key: "k", Fingerprint: "f", Now: now}
	failing := func(q *idempotency.Query) error {
		if err := insertEffect("a", now)(q); err != nil {
			return err
		}
		q.With("bad", `INSERT INTO effects (id) SELECT NULL FROM `+idempotency.Claimed) // NOT NULL violation
		return nil
	}
	resp := idempotency.Response{Status: 201, Body: []byte(`{}`)}
	if _, err := idempotency.RunPostgres(context.Background(), db, req, resp, failing); err == nil {
		t.Fatal("a failing statement did not fail")
	}
	var records int
	if err := db.Read().QueryRow(`SELECT count(*) FROM idempotency_records`).Scan(&records); err != nil {
		t.Fatal(err)
	}
	if effects, jobRows := rows(t, db); effects != 0 || jobRows != 0 || records != 0 {
		t.Errorf("after a failed statement: %d effects, %d jobs, %d records; want none", effects, jobRows, records)
	}
}

// TestRunPostgresIf: a guard that does not hold writes nothing — no effect,
// no record, the key stays free — and answers ErrGuardFailed in the same one
// round trip, also for a key already stored (no replay is read); one that
// holds claims, writes and replays as RunPostgres does.
func TestRunPostgresIf(t *testing.T) {
	t.Parallel()
	db := postgresDB(t)
	bg := context.Background()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	guard := func(holds bool) func(q *idempotency.Query) string {
		return func(q *idempotency.Query) string { return q.Arg(holds) + `::boolean` }
	}
	run := func(key, id string, holds bool) (idempotency.Response, int64, error) {
		ctx, n := store.CountRoundTrips(bg)
		req := idempotency.Request{ApplicationID: "a1", Key: key, Fingerprint: "f", Now: now}
		got, err := idempotency.RunPostgresIf(ctx, db, req, idempotency.Response{Status: 201, Body: []byte(id)}, guard(holds), insertEffect(id, now))
		return got, n.N(), err
	}
	for i := range 2 { // prepare both statements on the pool's connections
		for range 2 { // a create, then its replay
			if _, _, err := run(fmt.Sprint("warm-", i), fmt.Sprint("warm-", i), true); err != nil {
				t.Fatal(err)
			}
		}
		for _, key := range []string{fmt.Sprint("warm-no-", i), ""} {
			if _, _, err := run(key, fmt.Sprint("warm-no-", i), false); !errors.Is(err, idempotency.ErrGuardFailed) {
				t.Fatal(err)
			}
		}
	}
	effects, jobRows := rows(t, db)
	for _, key := range []string{"k1", ""} {
		if _, trips, err := run(key, "e1", false); !errors.Is(err, idempotency.ErrGuardFailed) || trips != 1 {
			t.Fatalf("key %q, guard false: %v in %d round trips, want ErrGuardFailed in 1", key, err, trips)
		}
	}
	if e, j := rows(t, db); e != effects || j != jobRows {
		t.Fatalf("after a false guard: %d effects, %d jobs; want %d, %d", e, j, effects, jobRows)
	}
	if got, trips, err := run("k1", "e1", true); err != nil || got.Replayed || trips != 1 {
		t.Fatalf("guard true, the key still free: %+v %v in %d round trips", got, err, trips)
	}
	if _, trips, err := run("k1", "e1", false); !errors.Is(err, idempotency.ErrGuardFailed) || trips != 1 {
		t.Fatalf("a stored key, guard false: %v in %d round trips, want ErrGuardFailed in 1", err, trips)
	}
	if got, trips, err := run("k1", "e1", true); err != nil || !got.Replayed || string(got.Body) != "e1" || trips != 2 {
		t.Fatalf("a stored key, guard true: %+v %v in %d round trips, want the replay in 2", got, err, trips)
	}
	if e, j := rows(t, db); e != effects+1 || j != jobRows+1 {
		t.Fatalf("%d effects, %d jobs; want one more of each than %d, %d", e, j, effects, jobRows)
	}
}

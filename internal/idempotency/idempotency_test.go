package idempotency_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// app inserts the application the records belong to (a foreign key).
func app(t *testing.T, db *store.DB, id string) {
	t.Helper()
	err := db.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO applications (id, client_id, name, company_key, scopes, secret_hash, created_at, updated_at)
			VALUES ($1, $1, 'n', 'K', 's', 'h', 0, 0)`, id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		app(t, db, "a1")
		app(t, db, "a2")
		now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		req := idempotency.Request{ApplicationID: "a1", Key: "k", Fingerprint: "f1", Now: now}
		var effects atomic.Int32
		effect := func(*sql.Tx) error { effects.Add(1); return nil }
		first, _ := idempotency.Encode(201, map[string]string{"n": "1"})
		got, err := idempotency.Run(ctx, db, req, first, effect)
		if err != nil || got.Replayed || string(got.Body) != `{"n":"1"}` {
			t.Fatalf("first: %+v %v", got, err)
		}
		// The same request later: the stored response, no second effect.
		second, _ := idempotency.Encode(201, map[string]string{"n": "2"})
		req.Now = now.Add(time.Hour)
		got, err = idempotency.Run(ctx, db, req, second, effect)
		if err != nil || !got.Replayed || got.Status != 201 || string(got.Body) != `{"n":"1"}` || effects.Load() != 1 {
			t.Errorf("replay: %+v %v, effects %d", got, err, effects.Load())
		}
		// Another request with the key: refused, no effect.
		other := req
		other.Fingerprint = "f2"
		if _, err := idempotency.Run(ctx, db, other, second, effect); !errors.Is(err, idempotency.ErrKeyReused) || effects.Load() != 1 {
			t.Errorf("reuse: %v, effects %d", err, effects.Load())
		}
		// Keys are per application.
		a2 := req
		a2.ApplicationID = "a2"
		if got, err := idempotency.Run(ctx, db, a2, second, effect); err != nil || got.Replayed {
			t.Errorf("other application: %+v %v", got, err)
		}
		// A failed effect keeps nothing: the key stays free.
		boom := errors.New("boom")
		failing := idempotency.Request{ApplicationID: "a1", Key: "k-fail", Fingerprint: "f", Now: now}
		if _, err := idempotency.Run(ctx, db, failing, first, func(*sql.Tx) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("failing effect: %v", err)
		}
		if got, err := idempotency.Run(ctx, db, failing, second, effect); err != nil || got.Replayed || string(got.Body) != `{"n":"2"}` {
			t.Errorf("after a failed effect: %+v %v", got, err)
		}
		// After the TTL the key is free again, even before a sweep.
		late := req
		late.Now = now.Add(idempotency.TTL)
		if got, err := idempotency.Run(ctx, db, late, second, effect); err != nil || got.Replayed {
			t.Errorf("after TTL: %+v %v", got, err)
		}
		// Sweep removes what expired.
		n, err := idempotency.Sweep(ctx, db, now.Add(3*idempotency.TTL))
		if err != nil || n == 0 {
			t.Errorf("sweep: %d %v", n, err)
		}
		// No key: no record, the effect just runs.
		if got, err := idempotency.Run(ctx, db, idempotency.Request{ApplicationID: "a1", Now: now}, first, effect); err != nil || got.Replayed {
			t.Errorf("no key: %+v %v", got, err)
		}
	})
}

func TestRunConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		app(t, db, "a1")
		var effects atomic.Int32
		resp, _ := idempotency.Encode(201, map[string]int{"ok": 1})
		var wg sync.WaitGroup
		replays := atomic.Int32{}
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := idempotency.Run(context.Background(), db,
					idempotency.Request{ApplicationID: "a1", Key: "same", Fingerprint: "f", Now: time.Unix(1e9, 0)}, resp,
					func(*sql.Tx) error { effects.Add(1); return nil })
				if err != nil || string(got.Body) != `{"ok":1}` {
					t.Errorf("%+v %v", got, err)
				}
				if got.Replayed {
					replays.Add(1)
				}
			}()
		}
		wg.Wait()
		if effects.Load() != 1 || replays.Load() != 19 {
			t.Errorf("effects %d, replays %d; want 1 and 19", effects.Load(), replays.Load())
		}
	})
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	a, _ := idempotency.Fingerprint("POST", "/x", map[string]string{"a": "1"})
	b, _ := idempotency.Fingerprint("POST", "/x", map[string]string{"a": "1"})
	c, _ := idempotency.Fingerprint("POST", "/y", map[string]string{"a": "1"})
	d, _ := idempotency.Fingerprint("POST", "/x", map[string]string{"a": "2"})
	if a != b || a == c || a == d {
		t.Errorf("fingerprints: %s %s %s %s", a, b, c, d)
	}
}

// A key a consent-flow ticket holds in its own row (migration 00011) is taken
// for every other route of the application while it lives, as if its record
// were in idempotency_records.
func TestKeyHeldByTicket(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		app(t, db, "a1")
		now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		err := db.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO consent_flow_tickets (ticket_id, application_id, company_key, document_number,
				request_uri, client_id, status, created_at, updated_at, expires_at, idempotency_key)
				VALUES ('t1', 'a1', 'K', '47742663023', 'r', 'c', 'UNUSED', $1, $1, $2, 'k')`,
				now.UnixMilli(), now.Add(time.Minute).UnixMilli())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var effects atomic.Int32
		effect := func(*sql.Tx) error { effects.Add(1); return nil }
		resp, _ := idempotency.Encode(201, map[string]string{"n": "1"})
		req := idempotency.Request{ApplicationID: "a1", Key: "k", Fingerprint: "f", Now: now.Add(time.Hour)}
		if _, err := idempotency.Run(ctx, db, req, resp, effect); !errors.Is(err, idempotency.ErrKeyReused) || effects.Load() != 0 {
			t.Errorf("key of a live ticket: %v, effects %d; want ErrKeyReused and no effect", err, effects.Load())
		}
		// 24 h after the ticket, the key is free.
		req.Now = now.Add(idempotency.TTL)
		if got, err := idempotency.Run(ctx, db, req, resp, effect); err != nil || got.Replayed || effects.Load() != 1 {
			t.Errorf("after 24 h: %+v %v, effects %d", got, err, effects.Load())
		}
	})
}

// TestWithin: an answer decided inside the caller's transaction is kept when
// decide says so and replayed after; a refusal not kept leaves the key free;
// another request under the key, or a key past its TTL, behave as with Run.
func TestWithin(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		app(t, db, "a1")
		now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		calls := 0
		within := func(req idempotency.Request, status int, keep bool) (idempotency.Response, error) {
			var out idempotency.Response
			err := db.Write(ctx, func(tx *sql.Tx) error {
				var err error
				out, err = idempotency.Within(ctx, db, tx, req, func() (idempotency.Response, bool, error) {
					calls++
					resp, err := idempotency.Encode(status, map[string]int{"call": calls})
					return resp, keep, err
				})
				return err
			})
			return out, err
		}
		req := idempotency.Request{ApplicationID: "a1", Key: "k", Fingerprint: "f1", Now: now}
		// Not kept: the key stays free, the next call decides again.
		if got, err := within(req, 400, false); err != nil || got.Status != 400 || got.Replayed {
			t.Fatalf("not kept: %+v %v", got, err)
		}
		got, err := within(req, 422, true)
		if err != nil || got.Status != 422 || string(got.Body) != `{"call":2}` {
			t.Fatalf("kept 422: %+v %v", got, err)
		}
		req.Now = now.Add(time.Hour)
		if got, err := within(req, 201, true); err != nil || !got.Replayed || got.Status != 422 || string(got.Body) != `{"call":2}` || calls != 2 {
			t.Errorf("replay: %+v %v, calls %d", got, err, calls)
		}
		other := req
		other.Fingerprint = "f2"
		if _, err := within(other, 201, true); !errors.Is(err, idempotency.ErrKeyReused) || calls != 2 {
			t.Errorf("another request: %v, calls %d", err, calls)
		}
		// Past its TTL the key is free again, even before a sweep.
		later := other
		later.Now = now.Add(idempotency.TTL + time.Minute)
		if got, err := within(later, 201, true); err != nil || got.Replayed || got.Status != 201 || calls != 3 {
			t.Errorf("after the TTL: %+v %v, calls %d", got, err, calls)
		}
		// No key: decide runs every time.
		if got, err := within(idempotency.Request{ApplicationID: "a1", Now: now}, 201, true); err != nil || got.Replayed || calls != 4 {
			t.Errorf("no key: %+v %v, calls %d", got, err, calls)
		}
	})
}

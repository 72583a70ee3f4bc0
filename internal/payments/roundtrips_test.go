package payments_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// consentService is a payments.Service on db, with application "app1",
// and the request of happyBody.
func consentService(t *testing.T, db *store.DB) (*payments.Service, payments.ConsentRequest) {
	t.Helper()
	storetest.AddApplication(t, db, "app1")
	var body payments.CreateConsentBody
	if err := json.Unmarshal([]byte(happyBody), &body); err != nil {
		t.Fatal(err)
	}
	return payments.NewService(db, clock.NewFake(apptest.Epoch), nil, productionSelf), *body.Data
}

// postgresOnly opens a fresh PostgreSQL schema, or skips.
func postgresOnly(t *testing.T) *store.DB {
	t.Helper()
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	return storetest.Open(t, storetest.FreshSchema(t, base))
}

// counts reads how many consents, jti records, idempotency records and jobs
// of kind are stored.
func counts(t *testing.T, db *store.DB, consentsTable, jtisTable, kind string) [4]int {
	t.Helper()
	var c [4]int
	err := db.Read().QueryRow(fmt.Sprintf(`SELECT (SELECT count(*) FROM %s), (SELECT count(*) FROM %s),
		(SELECT count(*) FROM idempotency_records), (SELECT count(*) FROM jobs WHERE kind = $1)`, consentsTable, jtisTable), kind).
		Scan(&c[0], &c[1], &c[2], &c[3])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConsentCreateRoundTrips holds POST /consents on PostgreSQL to one
// round trip for a fresh consent with its jti, idempotency record, expiry
// job and jti sweep job; a replay of the key (or a key reused with another
// body) to two, the second reading the stored answer; a refused jti to one;
// and GET of a consent to one query.
func TestConsentCreateRoundTrips(t *testing.T) {
	t.Parallel()
	db := postgresOnly(t)
	svc, req := consentService(t, db)
	bg := context.Background()
	create := func(key, jti string, r payments.ConsentRequest) (idempotency.Response, int64, error) {
		ctx, n := store.CountRoundTrips(bg)
		resp, err := svc.Create(ctx, payments.CreateInput{ApplicationID: "app1", Request: r, IdempotencyKey: key, JTI: jti})
		return resp, n.N(), err
	}
	warm := func(i int) {
		// A statement's first use on a connection (or its next use after
		// it failed) prepares it first.
		for j := range 2 {
			if _, _, err := create(fmt.Sprint("warm-", i, j), fmt.Sprint("warm-", i, j), req); err != nil {
				t.Fatal(err)
			}
			if _, _, err := create(fmt.Sprint("warm-", i, j), fmt.Sprint("warm-", i, j), req); err != nil {
				t.Fatal(err)
			}
		}
	}
	warm(0)
	before := counts(t, db, "payment_consents", "payment_consent_jtis", payments.JobExpire)

	first, trips, err := create("k1", "jti-1", req)
	if err != nil || first.Status != 201 || first.Replayed {
		t.Fatalf("create: %+v %v", first, err)
	}
	if trips != 1 {
		t.Errorf("fresh consent: %d round trips, want 1", trips)
	}
	if got := counts(t, db, "payment_consents", "payment_consent_jtis", payments.JobExpire); got != [4]int{before[0] + 1, before[1] + 1, before[2] + 1, before[3] + 1} {
		t.Errorf("after a create: consents, jtis, records, expiry jobs = %v, want one more of each than %v", got, before)
	}

	replay, trips, err := create("k1", "jti-2", req)
	if err != nil || !replay.Replayed || string(replay.Body) != string(first.Body) {
		t.Fatalf("replay: %+v %v", replay, err)
	}
	if trips != 2 {
		t.Errorf("replay: %d round trips, want 2", trips)
	}
	other := req
	other.Payment.Amount = "1.00"
	if _, trips, err := create("k1", "jti-3", other); !errors.Is(err, idempotency.ErrKeyReused) || trips != 2 {
		t.Errorf("key reused with another body: %v, %d round trips; want ErrKeyReused in 2", err, trips)
	}
	if _, trips, err := create("k2", "jti-1", req); !errors.Is(err, payments.ErrJTIReused) || trips != 1 {
		t.Errorf("jti reused: %v, %d round trips; want ErrJTIReused in 1", err, trips)
	}
	if got := counts(t, db, "payment_consents", "payment_consent_jtis", payments.JobExpire); got != [4]int{before[0] + 1, before[1] + 1, before[2] + 1, before[3] + 1} {
		t.Errorf("after the replay and the refusals: %v, want nothing more", got)
	}

	var c struct {
		Data struct{ ConsentID string } `json:"data"`
	}
	if err := json.Unmarshal(first.Body, &c); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Get(bg, "app1", c.Data.ConsentID); err != nil { // warm
		t.Fatal(err)
	}
	ctx, n := store.CountRoundTrips(bg)
	if got, err := svc.Get(ctx, "app1", c.Data.ConsentID); err != nil || got.Status != payments.StatusAwaitingAuthorisation {
		t.Fatalf("get: %+v %v", got, err)
	}
	if n.N() != 1 {
		t.Errorf("get: %d round trips, want 1", n.N())
	}
}

// TestConsentCreateConcurrent: 20 identical creates with one idempotency key
// at once make one consent (one jti record, one expiry job), and every
// caller gets the first answer.
func TestConsentCreateConcurrent(t *testing.T) {
	t.Parallel()
	db := postgresOnly(t)
	svc, req := consentService(t, db)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		bodies = map[string]int{}
		fresh  int
	)
	for i := range 20 {
		wg.Go(func() {
			resp, err := svc.Create(context.Background(), payments.CreateInput{ApplicationID: "app1", Request: req,
				IdempotencyKey: "same", JTI: fmt.Sprint("jti-", i)})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			bodies[string(resp.Body)]++
			if !resp.Replayed {
				fresh++
			}
		})
	}
	wg.Wait()
	if got := counts(t, db, "payment_consents", "payment_consent_jtis", payments.JobExpire); got != [4]int{1, 1, 1, 1} || fresh != 1 || len(bodies) != 1 {
		t.Errorf("consents, jtis, records, expiry jobs = %v; %d fresh answers, %d bodies; want one of each", got, fresh, len(bodies))
	}
}

// TestConsentJTI, on both engines: a jti used twice is refused with nothing
// written (the key stays free), and one past its window that no sweep
// removed yet may be used again.
func TestConsentJTI(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		svc, req := consentService(t, db)
		fake := svc.Clock.(*clock.Fake)
		bg := context.Background()
		in := payments.CreateInput{ApplicationID: "app1", Request: req, IdempotencyKey: "k1", JTI: "jti-1"}
		if _, err := svc.Create(bg, in); err != nil {
			t.Fatal(err)
		}
		in.IdempotencyKey = "k2"
		if _, err := svc.Create(bg, in); !errors.Is(err, payments.ErrJTIReused) {
			t.Fatalf("the same jti again: %v, want ErrJTIReused", err)
		}
		if got := counts(t, db, "payment_consents", "payment_consent_jtis", payments.JobExpire); got != [4]int{1, 1, 1, 1} {
			t.Errorf("after the refusal: consents, jtis, records, expiry jobs = %v, want one of each", got)
		}
		in.JTI = "jti-2"
		if resp, err := svc.Create(bg, in); err != nil || resp.Replayed {
			t.Fatalf("the refused key with a new jti: %+v %v", resp, err)
		}
		fake.Advance(payments.JTIWindow)
		req.Payment.Date = fake.Now().Add(-3 * time.Hour).Format(time.DateOnly) // today in Brasília
		in = payments.CreateInput{ApplicationID: "app1", Request: req, IdempotencyKey: "k3", JTI: "jti-1"}
		if resp, err := svc.Create(bg, in); err != nil || resp.Replayed {
			t.Fatalf("a jti past its window, not swept: %+v %v", resp, err)
		}
		if got := counts(t, db, "payment_consents", "payment_consent_jtis", payments.JobExpire); got != [4]int{3, 2, 3, 3} {
			t.Errorf("consents, jtis, records, expiry jobs = %v, want 3, 2, 3, 3", got)
		}
	})
}

// TestConsentCreateHTTPRoundTrips counts a whole POST /consents (and a GET)
// on PostgreSQL: one round trip for a fresh consent — the calling
// application (its keys and plain-JSON flag) is a cached read that the
// create's statement checks again — and one more, the stored answer's read,
// for a replay. A GET still reads the caller first (its answer is signed or
// not by the flag): two.
func TestConsentCreateHTTPRoundTrips(t *testing.T) {
	t.Parallel()
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	s := apptest.Start(t, apptest.Options{DatabaseURL: storetest.FreshSchema(t, base)})
	tok := s.Token(t, "payments")
	var last []byte
	do := func(method, path, key, body string, want int) int64 {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		for k, v := range headers(tok, key) {
			r.Header.Set(k, v)
		}
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		ctx, n := store.CountRoundTrips(r.Context())
		w := httptest.NewRecorder()
		s.App.Handler().ServeHTTP(w, r.WithContext(ctx))
		if w.Code != want {
			t.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
		}
		last = w.Body.Bytes()
		return n.N()
	}
	post := func(key string) int64 {
		return do(http.MethodPost, payments.ConsentsPath, key, happyBody, http.StatusCreated)
	}
	for _, key := range []string{"warm-1", "warm-1", "warm-2", "warm-2"} { // prepare the statements
		post(key)
	}
	if n := post("k1"); n != 1 {
		t.Errorf("POST /consents: %d round trips, want 1 (the create, checking the cached caller)", n)
	}
	if n := post("k1"); n != 2 {
		t.Errorf("POST /consents, a replay: %d round trips, want 2 (the create's statement, the stored answer)", n)
	}
	var c struct {
		Data struct{ ConsentID string } `json:"data"`
	}
	if err := json.Unmarshal(last, &c); err != nil {
		t.Fatal(err)
	}
	self := payments.ConsentsPath + "/" + c.Data.ConsentID
	do(http.MethodGet, self, "", "", http.StatusOK) // prepare
	if n := do(http.MethodGet, self, "", "", http.StatusOK); n > 2 {
		t.Errorf("GET of a consent: %d round trips, want at most 2 (the caller's application, the consent)", n)
	}
}

package itpflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// brickWith serves the Brick endpoints of h's flow, a retry waiting up to
// wait for the request that holds its key.
func (h *harness) brickWith(t *testing.T, wait time.Duration) *httptest.Server {
	t.Helper()
	return h.brickOn(t, h.flow, wait)
}

// brickOn serves the Brick endpoints of flow (another instance's, on h's
// database and brand).
func (h *harness) brickOn(t *testing.T, flow *itpflow.Flow, wait time.Duration) *httptest.Server {
	t.Helper()
	handler := &itpflow.BrickHandler{Flow: flow, Verifier: tokens{"tok-1": "app-1", "tok-2": "app-2"}, Logger: discard(),
		InFlightWait: wait,
		Redirects: func(_ context.Context, app string) ([]string, error) {
			if app == "app-1" {
				return registered, nil
			}
			return []string{"https://other.example/cb"}, nil
		}}
	mux := http.NewServeMux()
	handler.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type rawAnswer struct {
	status int
	header http.Header
	body   string
}

func (a rawAnswer) code() string {
	var out struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if json.Unmarshal([]byte(a.body), &out) != nil || len(out.Errors) == 0 {
		return ""
	}
	return out.Errors[0].Code
}

func postKey(t *testing.T, srv *httptest.Server, token, key, body string) rawAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/api/admin/payment-initiation/v1/consents", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return rawAnswer{}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("x-idempotency-key", key)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Error(err) // Error, not Fatal: called from goroutines too
		return rawAnswer{}
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return rawAnswer{status: res.StatusCode, header: res.Header, body: string(b)}
}

// effects counts what a Brick consent create causes: consents created at the
// brand, requests pushed there, and authorization requests Ponte recorded
// for app-1.
type effects struct{ consents, pushed, authorizations int }

func (h *harness) effects(t *testing.T) effects {
	t.Helper()
	h.brand.mu.Lock()
	e := effects{consents: len(h.brand.consents), pushed: len(h.brand.pushed)}
	h.brand.mu.Unlock()
	if err := h.db.Read().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM itp_authorizations WHERE application_id = 'app-1'`).
		Scan(&e.authorizations); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestBrickConsentIdempotencyKey: a retry with the same x-idempotency-key
// gets the first answer byte for byte with no second consent, PAR or
// authorization request; another body under the key is 422
// ERRO_IDEMPOTENCIA; keys are per application; an error answer is not kept.
func TestBrickConsentIdempotencyKey(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		srv := h.brickWith(t, 5*time.Second)
		body := consentBody(brandID, "")
		first := postKey(t, srv, "tok-1", "key-1", body)
		if first.status != http.StatusCreated || first.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("first: %d %s", first.status, first.body)
		}
		if got, want := h.effects(t), (effects{1, 1, 1}); got != want {
			t.Fatalf("after the first request: %+v, want %+v", got, want)
		}
		h.clock.Advance(time.Minute)
		steps := []struct {
			name, token, key, body string
			status                 int
			code                   string
			replay                 bool
			effects                effects
		}{
			{"the same request", "tok-1", "key-1", body, 201, "", true, effects{1, 1, 1}},
			{"the same request spaced otherwise", "tok-1", "key-1", strings.ReplaceAll(body, ",", " , "), 201, "", true, effects{1, 1, 1}},
			{"another body", "tok-1", "key-1", strings.Replace(body, `"1.00"`, `"2.00"`, 1), 422, "ERRO_IDEMPOTENCIA", false, effects{1, 1, 1}},
			{"another redirect URI", "tok-1", "key-1", consentBody(brandID, registered[1]), 422, "ERRO_IDEMPOTENCIA", false, effects{1, 1, 1}},
			{"another application", "tok-2", "key-1", body, 201, "", false, effects{2, 2, 1}},
			{"a key too long", "tok-1", strings.Repeat("k", 41), body, 400, "PARAMETRO_INVALIDO", false, effects{2, 2, 1}},
			{"a new key", "tok-1", "key-2", body, 201, "", false, effects{3, 3, 2}},
		}
		for _, st := range steps {
			got := postKey(t, srv, st.token, st.key, st.body)
			if got.status != st.status || got.code() != st.code {
				t.Errorf("%s: %d %s, want %d %s", st.name, got.status, got.body, st.status, st.code)
			}
			if st.replay && (got.body != first.body || got.header.Get("Idempotent-Replayed") != "true") {
				t.Errorf("%s: replayed %q\nwant %q", st.name, got.body, first.body)
			}
			if e := h.effects(t); e != st.effects {
				t.Errorf("%s: effects %+v, want %+v", st.name, e, st.effects)
			}
		}

		// The brand refuses: the refusal is not kept, a retry asks the brand again.
		h.brand.mu.Lock()
		h.brand.refuse = &refusal{status: 422, body: `{"errors":[{"code":"PARAMETRO_INVALIDO","title":"t","detail":"d"}],"meta":{}}`}
		h.brand.mu.Unlock()
		if got := postKey(t, srv, "tok-1", "key-3", body); got.status != 422 || got.code() != "PARAMETRO_INVALIDO" {
			t.Fatalf("refused: %d %s", got.status, got.body)
		}
		if got := postKey(t, srv, "tok-1", "key-3", body); got.status != 201 {
			t.Fatalf("retry after a refusal: %d %s", got.status, got.body)
		}
		if got, want := h.effects(t), (effects{5, 4, 3}); got != want {
			t.Errorf("after the refusal and its retry: %+v, want %+v", got, want)
		}
	})
}

// TestBrickConsentConcurrentRetries: 20 requests with the same key at once,
// split between two instances (two flows on one database), cause one
// consent, one PAR and one authorization request, and all get the same
// answer.
func TestBrickConsentConcurrentRetries(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		other := &itpflow.Flow{DB: db, Clock: h.clock, Brands: h.flow.Brands, Logger: discard()}
		instances := []*httptest.Server{h.brickWith(t, 30*time.Second), h.brickOn(t, other, 30*time.Second)}
		body := consentBody(brandID, "")
		answers := make([]rawAnswer, 20)
		var wg sync.WaitGroup
		for i := range answers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[i] = postKey(t, instances[i%2], "tok-1", "same", body)
			}()
		}
		wg.Wait()
		replays := 0
		for i, a := range answers {
			if a.status != http.StatusCreated || a.body != answers[0].body {
				t.Errorf("answer %d: %d %s\nwant %s", i, a.status, a.body, answers[0].body)
			}
			if a.header.Get("Idempotent-Replayed") == "true" {
				replays++
			}
		}
		if replays != len(answers)-1 {
			t.Errorf("%d replays, want %d", replays, len(answers)-1)
		}
		if got, want := h.effects(t), (effects{1, 1, 1}); got != want {
			t.Errorf("effects %+v, want %+v", got, want)
		}
	})
}

// TestBrickConsentKeyLease: a request that claimed its key and died leaves a
// claim; a retry within the lease gets 409 REQUISICAO_EM_ANDAMENTO (nothing
// sent to the brand), one after it takes the key over and completes; the
// dead request, should it come back, records nothing (ErrClaimLost).
func TestBrickConsentKeyLease(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		srv := h.brickWith(t, 300*time.Millisecond)
		body := consentBody(brandID, "")
		var in itpflow.BrickConsentRequest
		if err := json.Unmarshal([]byte(body), &in); err != nil {
			t.Fatal(err)
		}
		fp, err := itpflow.BrickFingerprint(&in, registered[0])
		if err != nil {
			t.Fatal(err)
		}
		dead, answer, err := h.flow.ClaimKey(t.Context(), "app-1", "k", fp)
		if err != nil || dead == nil || answer != nil {
			t.Fatalf("claim: %v %v %v", dead, answer, err)
		}
		busy := postKey(t, srv, "tok-1", "k", body)
		if busy.status != http.StatusConflict || busy.code() != "REQUISICAO_EM_ANDAMENTO" || busy.header.Get("Retry-After") == "" {
			t.Fatalf("within the lease: %d %s", busy.status, busy.body)
		}
		if other := postKey(t, srv, "tok-1", "k", strings.Replace(body, `"1.00"`, `"2.00"`, 1)); other.code() != "ERRO_IDEMPOTENCIA" {
			t.Errorf("another body within the lease: %d %s", other.status, other.body)
		}
		if got, want := h.effects(t), (effects{0, 0, 0}); got != want {
			t.Fatalf("effects within the lease: %+v, want %+v", got, want)
		}

		h.clock.Advance(itpflow.KeyLease)
		retry := postKey(t, srv, "tok-1", "k", body)
		if retry.status != http.StatusCreated {
			t.Fatalf("after the lease: %d %s", retry.status, retry.body)
		}
		if got, want := h.effects(t), (effects{1, 1, 1}); got != want {
			t.Fatalf("effects after the lease: %+v, want %+v", got, want)
		}

		// The first request comes back and finishes: its claim is lost, so
		// nothing of it is recorded, and the key keeps the retry's answer.
		_, _, err = h.flow.Start(t.Context(), itpflow.StartRequest{ApplicationID: "app-1", Kind: itpflow.KindPaymentInitiation,
			BrandID: brandID, Collection: itpflow.PaymentConsentsPath, Body: json.RawMessage(`{"data":` + string(in.Data) + `}`),
			APIScope: "payments", RedirectURI: registered[0], IdempotencyKey: "k", Device: *in.Device, Claim: dead,
			Answer: func(*itpflow.Authorization, *fapiclient.Consent) (int, []byte, error) {
				return 201, []byte(`{"late":true}`), nil
			}})
		if !errors.Is(err, itpflow.ErrClaimLost) {
			t.Fatalf("the late request: %v, want ErrClaimLost", err)
		}
		if err := dead.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := h.effects(t); got.authorizations != 1 {
			t.Errorf("the late request recorded an authorization: %+v", got)
		}
		if again := postKey(t, srv, "tok-1", "k", body); again.status != 201 || again.body != retry.body {
			t.Errorf("replay after the late request: %d %s\nwant %s", again.status, again.body, retry.body)
		}

		// After the TTL the key is free again, and the sweep removes it.
		h.clock.Advance(itpflow.KeyTTL)
		if c, answer, err := h.flow.ClaimKey(t.Context(), "app-1", "k", "another"); err != nil || c == nil || answer != nil {
			t.Errorf("after the TTL: %v %v %v", c, answer, err)
		}
		h.clock.Advance(itpflow.KeyTTL)
		if n, err := h.flow.SweepKeys(t.Context()); err != nil || n != 1 {
			t.Errorf("sweep: %d %v", n, err)
		}
	})
}

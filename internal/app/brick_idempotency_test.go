package app_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestBrickConsentIdempotentAtTheSandboxBrand: the Brick consent create
// retried with its x-idempotency-key, one by one and 20 at once, against the
// sandbox brand (Ponte's own holder side): every retry gets the first 201
// byte for byte, and the brand holds one consent and one pushed request per
// key, Ponte one authorization request; the key with another body is 422
// ERRO_IDEMPOTENCIA.
func TestBrickConsentIdempotentAtTheSandboxBrand(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), Clock: wallClock(t)})
			fintech, tok := brickFintech(t, s)
			body := brickConsentBody(s.Clock.Now(), s.App.SandboxBrandID)
			post := func(key, body string) *apptest.Response {
				h := map[string]string{"x-idempotency-key": key}
				for k, v := range tok {
					h[k] = v
				}
				return s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents", h, body)
			}
			count := func(query string, args ...any) int {
				t.Helper()
				var n int
				if err := s.App.DB.Read().QueryRowContext(t.Context(), query, args...).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			// What the creates caused: consents at the brand, requests pushed
			// there, authorization requests Ponte recorded.
			effects := func() [3]int {
				return [3]int{count(`SELECT COUNT(*) FROM payment_consents`), count(`SELECT COUNT(*) FROM oidc_authn_sessions`),
					count(`SELECT COUNT(*) FROM itp_authorizations WHERE application_id = $1`, fintech.ID)}
			}
			before := effects()
			first := post("brick-key-1", body)
			if first.Status != 201 {
				t.Fatalf("first: %d %s", first.Status, first.Body)
			}
			created := effects()
			if created != [3]int{before[0] + 1, before[1] + 1, before[2] + 1} {
				t.Fatalf("the first create caused %v from %v", created, before)
			}
			again := post("brick-key-1", body)
			if again.Status != 201 || string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("retry: %d %s\nwant %s", again.Status, again.Body, first.Body)
			}
			if other := post("brick-key-1", strings.Replace(body, `"amount":"1.15"`, `"amount":"2.15"`, 1)); other.Status != 422 ||
				!strings.Contains(string(other.Body), "ERRO_IDEMPOTENCIA") {
				t.Errorf("another body: %d %s", other.Status, other.Body)
			}
			if got := effects(); got != created {
				t.Errorf("the retries caused %v, want %v", got, created)
			}

			answers := make([]*apptest.Response, 20)
			var wg sync.WaitGroup
			for i := range answers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					answers[i] = post("brick-key-2", body)
				}()
			}
			wg.Wait()
			for i, a := range answers {
				if a.Status != 201 || string(a.Body) != string(answers[0].Body) {
					t.Errorf("concurrent %d: %d %s", i, a.Status, a.Body)
				}
			}
			if got, want := effects(), [3]int{created[0] + 1, created[1] + 1, created[2] + 1}; got != want {
				t.Errorf("20 concurrent requests with one key caused %v, want %v", got, want)
			}
		})
	}
}

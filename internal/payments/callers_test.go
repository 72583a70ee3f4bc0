package payments_test

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestConsentCreateSeesCallerChanges: on PostgreSQL a POST /consents
// decides on a cached caller, and its statement checks the application's
// row again; a key removed, the plain-JSON flag cleared or set, or the
// application disabled directly in the database (as another instance or the
// CLI would) is seen by the very next POST, with nothing written for a
// refusal.
func TestConsentCreateSeesCallerChanges(t *testing.T) {
	t.Parallel()
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	s := apptest.Start(t, apptest.Options{DatabaseURL: storetest.FreshSchema(t, base)})
	key, rogue := testKeys(t)
	p := newPartner(t, s, true)
	demo := s.Token(t, "payments")
	var demoID string
	if err := s.App.DB.Read().QueryRow(`SELECT id FROM applications WHERE sandbox_demo = 1`).Scan(&demoID); err != nil {
		t.Fatal(err)
	}
	set := func(id, assignment string, arg any) {
		t.Helper()
		err := s.App.DB.Write(context.Background(), func(tx *sql.Tx) error {
			_, err := tx.Exec(`UPDATE applications SET `+assignment+` = $1 WHERE id = $2`, arg, id)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	post := func(token, key, contentType, body string) (int, string) {
		r := httptest.NewRequest(http.MethodPost, payments.ConsentsPath, strings.NewReader(body))
		for k, v := range headers(token, key) {
			r.Header.Set(k, v)
		}
		r.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		s.App.Handler().ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	signed := func(k any, kid string) string { return sign(t, k, jose.PS256, kid, claimsFor(t, s, p)) }

	for i, step := range []struct {
		name        string
		change      func()
		token, ct   string
		body        func() string
		want        int
		consentMore int
	}{
		{"signed, warms the cache", nil, p.token, payments.MediaTypeJWT, func() string { return signed(key, partnerKID) }, 201, 1},
		{"signed, cached", nil, p.token, payments.MediaTypeJWT, func() string { return signed(key, partnerKID) }, 201, 1},
		{"keys replaced by another: the old key is refused", func() {
			set(p.app.ID, "jwks", string(publicJWKS(t, jose.JSONWebKey{Key: &rogue.PublicKey, KeyID: "rogue", Algorithm: "PS256", Use: "sig"})))
		}, p.token, payments.MediaTypeJWT, func() string { return signed(key, partnerKID) }, 400, 0},
		{"the new key is accepted", nil, p.token, payments.MediaTypeJWT, func() string { return signed(rogue, "rogue") }, 201, 1},
		{"keys removed", func() { set(p.app.ID, "jwks", "") }, p.token, payments.MediaTypeJWT,
			func() string { return signed(rogue, "rogue") }, 400, 0},
		{"plain JSON, demo, warms", nil, demo, payments.MediaTypeJSON, func() string { return happyBody }, 201, 1},
		{"plain JSON flag cleared", func() { set(demoID, "accept_plain_json", 0) }, demo, payments.MediaTypeJSON,
			func() string { return happyBody }, 415, 0},
		{"plain JSON flag set again", func() { set(demoID, "accept_plain_json", 1) }, demo, payments.MediaTypeJSON,
			func() string { return happyBody }, 201, 1},
		{"demo disabled", func() { set(demoID, "disabled", 1) }, demo, payments.MediaTypeJSON,
			func() string { return happyBody }, 401, 0},
	} {
		if step.change != nil {
			step.change()
		}
		before := consentCount(t, s, p.app.ID) + consentCount(t, s, demoID)
		status, body := post(step.token, "key-"+string(rune('a'+i)), step.ct, step.body())
		if status != step.want {
			t.Fatalf("%s: %d %s, want %d", step.name, status, body, step.want)
		}
		if got := consentCount(t, s, p.app.ID) + consentCount(t, s, demoID); got != before+step.consentMore {
			t.Errorf("%s: %d consents, want %d", step.name, got, before+step.consentMore)
		}
	}
}

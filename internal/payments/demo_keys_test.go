package payments_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
)

// TestDemoKeysSurviveRestart: keys an operator registers on the sandbox
// demo application (ponte apps set-keys) are still the ones that verify its
// signed bodies after a restart on the same data directory and database;
// the sandbox partner key is only registered while the demo has none.
func TestDemoKeysSurviveRestart(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		if len(s.App.Demo.JWKS) == 0 {
			t.Fatal("first start: the sandbox partner key is not registered on the demo application")
		}
		key, _ := testKeys(t)
		jwks := publicJWKS(t, jose.JSONWebKey{Key: &key.PublicKey, KeyID: partnerKID, Algorithm: "PS256", Use: "sig"})
		if _, err := s.App.Apps.SetJWKS(context.Background(), s.App.Demo.ClientID, jwks); err != nil {
			t.Fatal(err)
		}
		s = s.Restart(t)
		if !strings.Contains(s.Logs.String(), "do not include the sandbox partner key") {
			t.Errorf("no warning that the sandbox partner app's logins will be refused: %s", s.Logs.String())
		}
		demo, err := s.App.Apps.Get(context.Background(), s.App.Demo.ID)
		if err != nil {
			t.Fatal(err)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(demo.JWKS, &set); err != nil || len(set.Keys) != 1 || set.Keys[0].KeyID != partnerKID {
			t.Fatalf("demo keys after restart: %s (%v)", demo.JWKS, err)
		}
		p := partner{app: demo, token: s.TokenFor(t, demo.ClientID, s.App.DemoSecret, "payments")}
		resp := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "restart-1"), sign(t, key, jose.PS256, partnerKID, claimsFor(t, s, p)))
		if resp.Status != http.StatusCreated {
			t.Fatalf("signed consent after restart: %d %s", resp.Status, resp.Body)
		}
	})
}

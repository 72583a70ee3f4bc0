package app_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestInitiatorClientCredentials: an initiator gets an opaque token from the
// authorization server with client_credentials and private_key_jwt, and
// creates and reads its consents with it, as its partner application.
func TestInitiatorClientCredentials(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
			status, tok := in.ClientCredentials(t, oidctest.NoRedirects(), s.URL, "payments")
			access, _ := tok["access_token"].(string)
			if status != 200 || access == "" || strings.Count(access, ".") == 2 || tok["scope"] != "payments" {
				t.Fatalf("client_credentials: %d %v", status, tok)
			}
			hdr := func(token string) map[string]string {
				return map[string]string{"Authorization": "Bearer " + token, "x-fapi-interaction-id": uuid.NewString(), "x-idempotency-key": uuid.NewString()}
			}
			r := s.Do(t, "POST", payments.ConsentsPath, hdr(access), consentBody)
			if r.Status != 201 {
				t.Fatalf("consent with the initiator's token: %d %s", r.Status, r.Body)
			}
			var c struct {
				Data struct {
					ConsentID string `json:"consentId"`
				} `json:"data"`
			}
			r.JSON(t, &c)
			if got, err := s.App.Payments.Get(t.Context(), s.App.Demo.ID, c.Data.ConsentID); err != nil || got.ApplicationID != s.App.Demo.ID {
				t.Fatalf("consent owner: %+v %v", got, err)
			}
			if r := s.Do(t, "GET", payments.ConsentsPath+"/"+c.Data.ConsentID, hdr(access), ""); r.Status != 200 {
				t.Errorf("read with the initiator's token: %d %s", r.Status, r.Body)
			}

			// A client that is no partner application, a made-up token, a
			// token without the scope.
			stranger := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, "initiator-without-app")
			_, st := stranger.ClientCredentials(t, oidctest.NoRedirects(), s.URL, "payments")
			strangerTok, _ := st["access_token"].(string)
			for name, token := range map[string]string{"client without application": strangerTok, "made up": "opaque-token-nobody-issued"} {
				if r := s.Do(t, "POST", payments.ConsentsPath, hdr(token), consentBody); r.Status != 401 {
					t.Errorf("%s: %d %s", name, r.Status, r.Body)
				}
			}
			_, op := in.ClientCredentials(t, oidctest.NoRedirects(), s.URL, "openid")
			if token, _ := op["access_token"].(string); token != "" {
				if r := s.Do(t, "POST", payments.ConsentsPath, hdr(token), consentBody); r.Status != 403 {
					t.Errorf("token without the payments scope: %d %s", r.Status, r.Body)
				}
			}
		})
	}
}

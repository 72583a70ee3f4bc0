package app_test

import (
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestInteractionPathSlug: seed 002's /api/{client_name}/consents/v1/
// interactions/... names the holder partner by its slug, any ASCII letter
// case; an unknown name is the seed's 404 INTERACTION_NOT_FOUND and changes
// nothing; a renamed partner keeps its slug; the display name still works,
// deprecated, with a warning in the log; the WebView calls the API by slug.
func TestInteractionPathSlug(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			if got := s.App.Demo.Slug; got != "ponte-sandbox-demo" {
				t.Fatalf("demo partner's slug = %q, want ponte-sandbox-demo", got)
			}
			in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
			j, resp := startJourney(t, s, in, phoneUA, "")
			wv := j.enterWebView(t, location(t, resp), "47742663023")
			expectInPage(t, wv.body, `data-client="ponte-sandbox-demo"`)
			backend := map[string]string{"Authorization": "Bearer " + s.Token(t, consentflow.ScopeInteractionsWrite)}
			path := func(clientName, step string) string {
				return "/api/" + clientName + "/consents/v1/interactions/" + wv.interactionID + "/" + step
			}
			awaiting := func(when string) {
				t.Helper()
				c, err := s.App.Payments.Get(t.Context(), s.App.Demo.ID, j.consentID)
				if err != nil || c.Status != payments.StatusAwaitingAuthorisation {
					t.Fatalf("%s: consent %+v, %v; want it still awaiting authorisation", when, c, err)
				}
			}

			if r := s.Do(t, "POST", path("PONTE-Sandbox-DEMO", "login"), backend, loginBody(wv.loginToken)); r.Status != 200 {
				t.Fatalf("login by the slug in mixed case: %d %s", r.Status, r.Body)
			}
			for _, name := range []string{"unknown-partner", "ponte-sandbox", "ponte-sandbox-demo-2", "ponte%20sandbox%20demo", "ponte_sandbox_demo"} {
				r := s.Do(t, "POST", path(name, "consent"), backend, approveBody)
				if r.Status != 404 || !strings.Contains(string(r.Body), `"code":"INTERACTION_NOT_FOUND"`) {
					t.Errorf("client_name %q: %d %s, want 404 INTERACTION_NOT_FOUND", name, r.Status, r.Body)
				}
			}
			awaiting("after unknown client names")

			// Renamed: the slug stays, the old display name stops naming it.
			renamed, err := s.App.Apps.Rename(t.Context(), s.App.Demo.ID, "Banco Renomeado")
			if err != nil || renamed.Slug != "ponte-sandbox-demo" {
				t.Fatalf("rename: %+v, %v", renamed, err)
			}
			if r := s.Do(t, "POST", path("Ponte%20sandbox%20demo", "consent"), backend, approveBody); r.Status != 404 {
				t.Errorf("the old display name after the rename: %d %s, want 404", r.Status, r.Body)
			}
			awaiting("after the old display name")
			r := s.Do(t, "POST", path("ponte-sandbox-demo", "consent"), backend, approveBody)
			if r.Status != 200 || !strings.Contains(string(r.Body), `"status":"`+consentflow.InteractionApproved+`"`) {
				t.Fatalf("consent by the slug after the rename: %d %s", r.Status, r.Body)
			}
			if strings.Contains(s.Logs.String(), "deprecated, use its slug") {
				t.Error("a deprecation warning for requests that used the slug")
			}

			// The display name, exactly as before slugs: still served, deprecated.
			j2, resp := startJourney(t, s, in, phoneUA, "")
			wv2 := j2.enterWebView(t, location(t, resp), "47742663023")
			if r := s.Do(t, "POST", "/api/Banco%20Renomeado/consents/v1/interactions/"+wv2.interactionID+"/cancel", backend, `{"device":`+device+`}`); r.Status != 200 {
				t.Fatalf("cancel by the display name: %d %s", r.Status, r.Body)
			}
			if !strings.Contains(s.Logs.String(), "deprecated, use its slug") {
				t.Error("no deprecation warning in the log for a request naming the partner by its display name")
			}
		})
	}
}

package payments_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/payments"
)

// Organisation ids of two initiators at the Open Finance Directory.
const (
	itpOrg   = "8d3f6c1a-2b4e-4f5a-9c7d-0e1f2a3b4c5d"
	otherOrg = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5e"
)

// TestSignedMessagesNameOrganisations: a request JWT's iss must be the
// calling application's organisation id, and Ponte's signed answers carry
// Ponte's organisation id as iss and the caller's as aud (FAPI-BR message
// signing). An application without an organisation id keeps its client_id.
func TestSignedMessagesNameOrganisations(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		key, _ := testKeys(t)
		p := newPartner(t, s, true)
		var err error
		if p.app, err = s.App.Apps.SetOrganisationID(t.Context(), p.app.ID, itpOrg); err != nil {
			t.Fatal(err)
		}
		if s.App.Config.OrganisationID == "" || s.App.Config.OrganisationID == itpOrg {
			t.Fatalf("Ponte's organisation id %q", s.App.Config.OrganisationID)
		}
		claims := func(mutate func(m map[string]any)) string {
			m := claimsFor(t, s, p)
			if mutate != nil {
				mutate(m)
			}
			return sign(t, key, jose.PS256, partnerKID, m)
		}
		for i, tc := range []struct {
			name   string
			body   string
			status int
		}{
			{"iss the caller's organisation", claims(nil), http.StatusCreated},
			{"iss another organisation", claims(func(m map[string]any) { m["iss"] = otherOrg }), http.StatusForbidden},
			{"iss the client_id once an organisation is recorded", claims(func(m map[string]any) { m["iss"] = p.app.ClientID }), http.StatusForbidden},
			{"aud another organisation", claims(func(m map[string]any) { m["aud"] = otherOrg }), http.StatusForbidden},
			{"aud Ponte's organisation instead of the URL called", claims(func(m map[string]any) { m["aud"] = s.App.Config.OrganisationID }), http.StatusForbidden},
		} {
			before := consentCount(t, s, p.app.ID)
			resp := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "org-"+string(rune('a'+i))), tc.body)
			if resp.Status != tc.status {
				t.Fatalf("%s: %d %s", tc.name, resp.Status, resp.Body)
			}
			if tc.status != http.StatusCreated {
				checkError(t, s, resp, tc.status, payments.CodeInvalidClient)
				if n := consentCount(t, s, p.app.ID); n != before {
					t.Errorf("%s: %d consents, want %d", tc.name, n, before)
				}
				continue
			}
			claims := verifySigned(t, s, p, resp) // aud the caller's organisation, iss Ponte's
			var aud string
			_ = json.Unmarshal(claims["aud"], &aud)
			if aud != itpOrg {
				t.Errorf("%s: answer aud %q, want %s", tc.name, aud, itpOrg)
			}
		}

		// An application from before organisation ids: its client_id stands in.
		if p.app, err = s.App.Apps.SetOrganisationID(t.Context(), p.app.ID, ""); err != nil {
			t.Fatal(err)
		}
		resp := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "org-legacy"), claims(func(m map[string]any) { m["iss"] = p.app.ClientID }))
		if resp.Status != http.StatusCreated {
			t.Fatalf("legacy iss: %d %s", resp.Status, resp.Body)
		}
		verifySigned(t, s, p, resp) // aud the client_id
	})
}

// TestReadsSignedByDefault: a GET answer is application/jwt whatever Accept
// says, except for an application that opted into plain JSON (a Ponte
// extension), which gets JSON unless it asks for application/jwt.
func TestReadsSignedByDefault(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		key, _ := testKeys(t)
		p := newPartner(t, s, true)
		resp := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "read-1"), sign(t, key, jose.PS256, partnerKID, claimsFor(t, s, p)))
		if resp.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", resp.Status, resp.Body)
		}
		var c consentResp
		if err := json.Unmarshal(withoutClaims(t, verifySigned(t, s, p, resp)), &c); err != nil {
			t.Fatal(err)
		}
		path := consentsPath + "/" + c.Data.ConsentID
		for _, tc := range []struct {
			plainJSON bool
			accept    string
			signed    bool
		}{
			{false, "", true},
			{false, "application/json", true},
			{false, "application/jwt", true},
			{true, "", false},
			{true, "application/json", false},
			{true, "application/json, application/jwt;q=0.5", true},
		} {
			if _, err := s.App.Apps.SetAcceptPlainJSON(t.Context(), p.app.ID, tc.plainJSON); err != nil {
				t.Fatal(err)
			}
			h := headers(p.token, "")
			if tc.accept != "" {
				h["Accept"] = tc.accept
			}
			got := s.Do(t, "GET", path, h, "")
			if got.Status != http.StatusOK {
				t.Fatalf("plain JSON %t, Accept %q: %d %s", tc.plainJSON, tc.accept, got.Status, got.Body)
			}
			if tc.signed {
				validateSpec(t, s, "ResponsePaymentConsent", withoutClaims(t, verifySigned(t, s, p, got)))
				continue
			}
			if ct := got.Header.Get("Content-Type"); !strings.HasPrefix(ct, payments.MediaTypeJSON) {
				t.Errorf("plain JSON %t, Accept %q: Content-Type %q", tc.plainJSON, tc.accept, ct)
			}
			validateSpec(t, s, "ResponsePaymentConsent", got.Body)
		}
		// Errors the file declares application/json stay JSON for everyone.
		if _, err := s.App.Apps.SetAcceptPlainJSON(t.Context(), p.app.ID, false); err != nil {
			t.Fatal(err)
		}
		got := s.Do(t, "GET", consentsPath+"/urn:ponte:00000000-0000-4000-8000-000000000000", headers(p.token, ""), "")
		if got.Status != http.StatusNotFound || !strings.HasPrefix(got.Header.Get("Content-Type"), payments.MediaTypeJSON) {
			t.Errorf("unknown consent: %d %s", got.Status, got.Header.Get("Content-Type"))
		}
	})
}

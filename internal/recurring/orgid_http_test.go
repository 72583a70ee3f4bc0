package recurring_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/payments"
)

// TestRecurringOrganisationsAndSignedReads: a recurring consent's request
// JWT must name the caller's organisation as iss (403 INVALID_CLIENT for
// another), Ponte's answers are addressed to it, and every read is signed
// whatever Accept says unless the application opted into plain JSON.
func TestRecurringOrganisationsAndSignedReads(t *testing.T) {
	t.Parallel()
	const (
		itpOrg   = "8d3f6c1a-2b4e-4f5a-9c7d-0e1f2a3b4c5d"
		otherOrg = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5e"
	)
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		key, _ := testKeys()
		p := newPartner(t, s)
		var err error
		if p.app, err = s.App.Apps.SetOrganisationID(t.Context(), p.app.ID, itpOrg); err != nil {
			t.Fatal(err)
		}
		collection := s.URL + consentsPath
		for i, iss := range []string{otherOrg, p.app.ClientID} {
			cl := claims(t, s, p, collection, happyBody)
			cl["iss"] = iss
			r := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "org-"+string(rune('a'+i))), sign(t, key, partnerKID, cl))
			if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "INVALID_CLIENT") {
				t.Errorf("iss %s: %d %s", iss, r.Status, r.Body)
			}
		}
		r := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "org-ok"), sign(t, key, partnerKID, claims(t, s, p, collection, happyBody)))
		if r.Status != http.StatusCreated {
			t.Fatalf("iss the organisation: %d %s", r.Status, r.Body)
		}
		var c consentResp
		if err := json.Unmarshal(verifySigned(t, s, p, r), &c); err != nil { // aud the organisation, iss Ponte's
			t.Fatal(err)
		}
		path := consentsPath + "/" + c.Data.RecurringConsentID
		list := paymentsPath + "?recurringConsentId=" + c.Data.RecurringConsentID
		for _, tc := range []struct {
			plainJSON bool
			accept    string
			signed    bool
		}{
			{false, "", true}, {false, "application/json", true},
			{true, "", false}, {true, "application/jwt", true},
		} {
			if _, err := s.App.Apps.SetAcceptPlainJSON(t.Context(), p.app.ID, tc.plainJSON); err != nil {
				t.Fatal(err)
			}
			h := headers(p.token, "")
			if tc.accept != "" {
				h["Accept"] = tc.accept
			}
			for _, get := range []struct{ path string }{{path}, {list}} {
				g := s.Do(t, "GET", get.path, h, "")
				if g.Status != http.StatusOK {
					t.Fatalf("GET %s: %d %s", get.path, g.Status, g.Body)
				}
				if tc.signed {
					verifySigned(t, s, p, g)
					continue
				}
				if ct := g.Header.Get("Content-Type"); !strings.HasPrefix(ct, payments.MediaTypeJSON) {
					t.Errorf("plain JSON %t, Accept %q, %s: Content-Type %q", tc.plainJSON, tc.accept, get.path, ct)
				}
			}
		}
	})
}

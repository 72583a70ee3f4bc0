package fapiclient_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestOrganisationsInSignedMessages: Ponte as initiator signs its request
// bodies with its organisation id as iss, and refuses a brand's signed
// answer that another organisation issued (iss) or that is addressed to
// another organisation (aud), as it refuses a bad signature. The brand is
// Ponte's own holder side, over loopback HTTP.
func TestOrganisationsInSignedMessages(t *testing.T) {
	t.Parallel()
	const (
		itpOrg   = "8d3f6c1a-2b4e-4f5a-9c7d-0e1f2a3b4c5d"
		otherOrg = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5e"
	)
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), Clock: clock.NewFake(time.Now())})
			c := itp(t, s)
			ctx := t.Context()
			if _, err := s.App.Apps.SetOrganisationID(ctx, c.ClientID, itpOrg); err != nil {
				t.Fatal(err)
			}
			brandOrg := s.App.Config.OrganisationID
			token, err := c.Token(ctx, "payments")
			if err != nil {
				t.Fatal(err)
			}
			body := json.RawMessage(strings.Replace(consent, "2024-10-15", s.Clock.Now().In(time.FixedZone("BRT", -3*3600)).Format("2006-01-02"), 1))

			// Signed with the client_id as iss: the holder knows the
			// initiator's organisation now, and refuses it.
			legacy := c.WithRedirectURI(c.RedirectURI)
			legacy.OrganisationID = ""
			var apiErr *fapiclient.APIError
			if _, err := legacy.CreateConsent(ctx, token, payments.ConsentsPath, body, uuid.NewString()); !errors.As(err, &apiErr) ||
				apiErr.Status != 403 || len(apiErr.Errors) == 0 || apiErr.Errors[0].Code != payments.CodeInvalidClient {
				t.Fatalf("iss client_id: %v", err)
			}

			c.OrganisationID, c.BrandOrganisationID = itpOrg, brandOrg
			created, err := c.CreateConsent(ctx, token, payments.ConsentsPath, body, uuid.NewString())
			if err != nil {
				t.Fatalf("iss the organisation id: %v", err)
			}
			path := payments.ConsentsPath + "/" + created.ID
			if _, err := c.GetConsent(ctx, token, path); err != nil {
				t.Fatalf("read: %v", err)
			}
			for _, tc := range []struct {
				name          string
				ponte, brand  string
				wantRefusal   bool
				wantSubstring string
			}{
				{"answer issued by another organisation", itpOrg, otherOrg, true, "issued by"},
				{"answer addressed to another organisation", otherOrg, brandOrg, true, "addressed to"},
				{"brand without an organisation id: iss unchecked", itpOrg, "", false, ""},
			} {
				other := c.WithRedirectURI(c.RedirectURI)
				other.OrganisationID, other.BrandOrganisationID = tc.ponte, tc.brand
				_, err := other.GetConsent(ctx, token, path)
				switch {
				case tc.wantRefusal && (!errors.Is(err, fapiclient.ErrBrand) || !strings.Contains(err.Error(), tc.wantSubstring)):
					t.Errorf("%s: %v, want ErrBrand (%s)", tc.name, err, tc.wantSubstring)
				case !tc.wantRefusal && err != nil:
					t.Errorf("%s: %v", tc.name, err)
				}
			}
			// A refused answer fails the call as a bad signature does: a
			// consent created through it is not returned.
			other := c.WithRedirectURI(c.RedirectURI)
			other.BrandOrganisationID = otherOrg
			if got, err := other.CreateConsent(ctx, token, payments.ConsentsPath, body, uuid.NewString()); err == nil || got != nil {
				t.Errorf("create with the answer of another organisation: %+v %v", got, err)
			}
		})
	}
}

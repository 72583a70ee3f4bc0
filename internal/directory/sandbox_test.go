package directory

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/internal/validation"
)

func jwksJSON(t testing.TB, set jose.JSONWebKeySet) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSandboxIssue(t *testing.T) {
	t.Parallel()
	dirKey, appKey, appKey2 := newKey(t), newKey(t), newKey(t)
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			db := storetest.Open(t, e.URL(t))
			clk := clock.NewFake(epoch)
			sb, err := NewSandbox(db, clk, dirKey, "dir-1", "http://ponte.test/sandbox/directory/keystore/")
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			req := IssueRequest{OrgID: testOrg, OrgName: "Fintech Ltda", OrgNumber: "13353236000189", SoftwareID: testSoftware,
				Roles: []string{"PAGTO", "pagto", "DADOS"}, RedirectURIs: []string{"https://fintech.example/cb"},
				WebhookURIs: []string{"https://fintech.example/hooks"}, JWKS: jwksJSON(t, publicSet(appKey, "app-1"))}
			sw, ssa, err := sb.Issue(ctx, req)
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			if !slices.Equal(sw.Roles, []string{"PAGTO", "DADOS"}) || sw.ClientName != "Software 25556d5a" {
				t.Fatalf("software = %+v", sw)
			}

			// The statement verifies against the sandbox's keys and keystore.
			v := &Verifier{Keys: sb.Keys(), Issuer: sb.Issuer(), Keystore: sb.Keystore(), Clock: clk}
			st, err := v.Verify(ctx, ssa)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			wantURI := "http://ponte.test/sandbox/directory/keystore/" + testOrg + "/" + testSoftware + "/application.jwks"
			if st.SoftwareJWKSURI != wantURI || st.OrgID != testOrg || st.OrgNumber != "13353236000189" ||
				!slices.Equal(st.ActiveRoles(), []string{"PAGTO", "DADOS"}) ||
				!slices.Equal(st.SoftwareRedirectURIs, req.RedirectURIs) || !slices.Equal(st.SoftwareAPIWebhookURIs, req.WebhookURIs) {
				t.Fatalf("statement = %+v", st)
			}
			// Five minutes later it is too old.
			clk.Advance(5*time.Minute + time.Second)
			if _, err := v.Verify(ctx, ssa); !errors.Is(err, ErrInvalidStatement) {
				t.Fatalf("Verify of a stale statement = %v", err)
			}

			// The keystore serves the uploaded keys, in process too.
			set, err := sb.ApplicationJWKS(ctx, testOrg, testSoftware)
			if k := set.Key("app-1"); err != nil || len(k) != 1 || !k[0].IsPublic() {
				t.Fatalf("keystore key: %v %v", set, err)
			}
			if _, err := sb.ApplicationJWKS(ctx, testOrg, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown software: %v", err)
			}

			// Issuing again replaces keys and URIs, keeps the creation time.
			created := sw.CreatedAt
			clk.Advance(time.Hour)
			req.JWKS, req.RedirectURIs, req.Roles = jwksJSON(t, publicSet(appKey2, "app-2")), []string{"https://fintech.example/cb2"}, []string{"DADOS"}
			sw2, _, err := sb.Issue(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if !sw2.CreatedAt.Equal(created) || !sw2.UpdatedAt.Equal(clk.Now().Truncate(time.Millisecond)) || sw2.JWKS.Keys[0].KeyID != "app-2" ||
				!slices.Equal(sw2.RedirectURIs, []string{"https://fintech.example/cb2"}) || !slices.Equal(sw2.Roles, []string{"DADOS"}) {
				t.Fatalf("reissued = %+v (created %s)", sw2, created)
			}
			list, err := sb.List(ctx)
			if err != nil || len(list) != 1 {
				t.Fatalf("List = %v, %v", list, err)
			}

			// A new software without an id gets one.
			req.SoftwareID = ""
			sw3, _, err := sb.Issue(ctx, req)
			if err != nil || sw3.SoftwareID == "" || sw3.SoftwareID == testSoftware {
				t.Fatalf("new software: %+v %v", sw3, err)
			}
		})
	}
}

func TestSandboxIssueInvalid(t *testing.T) {
	t.Parallel()
	dirKey, appKey := newKey(t), newKey(t)
	db := storetest.Open(t, storetest.Engines()[0].URL(t))
	sb, err := NewSandbox(db, clock.NewFake(epoch), dirKey, "dir-1", "http://ponte.test/sandbox/directory/keystore")
	if err != nil {
		t.Fatal(err)
	}
	good := IssueRequest{OrgID: testOrg, Roles: []string{"PAGTO"}, RedirectURIs: []string{"https://fintech.example/cb"},
		JWKS: jwksJSON(t, publicSet(appKey, "app-1"))}
	private := jwksJSON(t, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: appKey, KeyID: "p"}}})
	noKid := jwksJSON(t, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &appKey.PublicKey}}})
	for _, tc := range []struct {
		name   string
		change func(r *IssueRequest)
		fields []string
	}{
		{"org_id not a UUID", func(r *IssueRequest) { r.OrgID = "acme" }, []string{"org_id"}},
		{"software_id not a UUID", func(r *IssueRequest) { r.SoftwareID = "x" }, []string{"software_id"}},
		{"org_number not a CNPJ", func(r *IssueRequest) { r.OrgNumber = "123" }, []string{"org_number"}},
		{"no roles", func(r *IssueRequest) { r.Roles = nil }, []string{"roles"}},
		{"unknown role", func(r *IssueRequest) { r.Roles = []string{"ADMIN"} }, []string{"roles"}},
		{"no redirect", func(r *IssueRequest) { r.RedirectURIs = nil }, []string{"redirect_uris"}},
		{"relative redirect", func(r *IssueRequest) { r.RedirectURIs = []string{"/cb"} }, []string{"redirect_uris"}},
		{"webhook with a trailing slash", func(r *IssueRequest) { r.WebhookURIs = []string{"https://h.example/"} }, []string{"webhook_uris"}},
		{"webhook with a query", func(r *IssueRequest) { r.WebhookURIs = []string{"https://h.example/a?b=c"} }, []string{"webhook_uris"}},
		{"no jwks", func(r *IssueRequest) { r.JWKS = nil }, []string{"jwks"}},
		{"jwks not a set", func(r *IssueRequest) { r.JWKS = json.RawMessage(`{"keys":"x"}`) }, []string{"jwks"}},
		{"jwks empty", func(r *IssueRequest) { r.JWKS = json.RawMessage(`{"keys":[]}`) }, []string{"jwks"}},
		{"private key", func(r *IssueRequest) { r.JWKS = private }, []string{"jwks"}},
		{"key without kid", func(r *IssueRequest) { r.JWKS = noKid }, []string{"jwks"}},
		{"everything at once", func(r *IssueRequest) { *r = IssueRequest{} }, []string{"org_id", "roles", "redirect_uris", "jwks"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := good
			tc.change(&req)
			_, ssa, err := sb.Issue(context.Background(), req)
			var verr *validation.Error
			if !errors.As(err, &verr) || ssa != "" {
				t.Fatalf("Issue = %q, %v; want a validation error", ssa, err)
			}
			var got []string
			for _, f := range verr.Fields {
				if !slices.Contains(got, f.Field) {
					got = append(got, f.Field)
				}
			}
			if !slices.Equal(got, tc.fields) {
				t.Fatalf("fields %v (%v), want %v", got, verr, tc.fields)
			}
			if list, err := sb.List(context.Background()); err != nil || len(list) != 0 {
				t.Fatalf("something was stored: %v %v", list, err)
			}
		})
	}
	if _, err := sb.Software(context.Background(), testOrg, testSoftware); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Software of nothing = %v", err)
	}
	if !strings.HasPrefix(SandboxIssuer, "Ponte") {
		t.Fatal("the sandbox issuer must not pass for the real Directory's")
	}
}

// FuzzIssueRequest feeds the admin API's body, as decoded, to the request
// checks: never a panic, and what passes is a software the keystore can
// serve (known roles, absolute redirect URLs, public keys with kids).
func FuzzIssueRequest(f *testing.F) {
	key := newKey(f)
	jwks, _ := json.Marshal(publicSet(key, "k1"))
	f.Add([]byte(`{"org_id":"` + testOrg + `","roles":["PAGTO"],"redirect_uris":["https://a.example/cb"],"jwks":` + string(jwks) + `}`))
	f.Add([]byte(`{"org_id":"` + testOrg + `","software_id":"x","roles":["pagto","DADOS"],"redirect_uris":["/cb"],"webhook_uris":["https://h.example/"],"jwks":{"keys":[{}]}}`))
	f.Add([]byte(`{"jwks":{"keys":"x"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var in struct {
			OrgID        string          `json:"org_id"`
			OrgNumber    string          `json:"org_number"`
			SoftwareID   string          `json:"software_id"`
			Roles        []string        `json:"roles"`
			RedirectURIs []string        `json:"redirect_uris"`
			WebhookURIs  []string        `json:"webhook_uris"`
			JWKS         json.RawMessage `json:"jwks"`
		}
		if json.Unmarshal(body, &in) != nil {
			return
		}
		sw, err := IssueRequest{OrgID: in.OrgID, OrgNumber: in.OrgNumber, SoftwareID: in.SoftwareID, Roles: in.Roles,
			RedirectURIs: in.RedirectURIs, WebhookURIs: in.WebhookURIs, JWKS: in.JWKS}.validate()
		if err != nil {
			var verr *validation.Error
			if !errors.As(err, &verr) || len(verr.Fields) == 0 {
				t.Fatalf("error %v lists no field", err)
			}
			return
		}
		if len(sw.Roles) == 0 || len(ScopesForRoles(sw.Roles)) == 0 || len(sw.RedirectURIs) == 0 || len(sw.JWKS.Keys) == 0 {
			t.Fatalf("accepted %s as %+v", body, sw)
		}
		for _, k := range sw.JWKS.Keys {
			if !k.IsPublic() || k.KeyID == "" {
				t.Fatalf("accepted key %+v", k)
			}
		}
	})
}

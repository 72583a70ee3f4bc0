package app_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/directory"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

const (
	fintechOrg      = "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
	fintechSoftware = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
)

// fintechJWKS is a participant's public JWKS with one key, kid "fintech-1".
func fintechJWKS(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "fintech-1", Algorithm: "PS256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSandboxDirectory: the sandbox Directory through the real app, on each
// database: its keys, the admin API issuing a statement that the verifier
// DCR uses accepts, the keystore serving the uploaded keys (over HTTP and in
// process), the participants list; every answer checked against
// api/openapi.yaml by the test client.
func TestSandboxDirectory(t *testing.T) {
	t.Parallel()
	jwks := fintechJWKS(t)
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			ctx := context.Background()
			admin := map[string]string{"Authorization": "Bearer " + s.App.PCM.AdminToken}

			// The Directory's keys.
			r := s.Do(t, "GET", directory.PathJWKS, nil, "")
			var dirKeys jose.JSONWebKeySet
			if r.Status != 200 || json.Unmarshal(r.Body, &dirKeys) != nil || len(dirKeys.Keys) != 1 || !dirKeys.Keys[0].IsPublic() ||
				r.Header.Get("Cache-Control") == "" {
				t.Fatalf("openbanking.jwks: %d %s %v", r.Status, r.Body, r.Header)
			}

			body := `{"org_id":"` + fintechOrg + `","org_name":"Fintech Ltda","org_number":"13353236000189","software_id":"` + fintechSoftware +
				`","client_name":"Fintech App","roles":["PAGTO"],"redirect_uris":["https://fintech.example/cb"],` +
				`"webhook_uris":["https://fintech.example/hooks"],"jwks":` + jwks + `}`
			// Without or with a wrong admin token: 401, nothing issued.
			for _, h := range []map[string]string{nil, {"Authorization": "Bearer nope"}, {"Authorization": "Basic " + "YWRtaW46bm9wZQ=="}} {
				if r := s.Do(t, "POST", directory.PathIssue, h, body); r.Status != 401 || !strings.Contains(string(r.Body), `"UNAUTHORIZED"`) {
					t.Fatalf("issue with %v: %d %s", h, r.Status, r.Body)
				}
			}
			// A bad request names every field and stores nothing.
			r = s.Do(t, "POST", directory.PathIssue, admin, `{"org_id":"acme","roles":["ADMIN"],"redirect_uris":["/cb"],"jwks":{"keys":[]}}`)
			if r.Status != 400 {
				t.Fatalf("bad issue: %d %s", r.Status, r.Body)
			}
			for _, field := range []string{`"org_id"`, `"roles"`, `"redirect_uris"`, `"jwks"`} {
				if !strings.Contains(string(r.Body), `"propertyName":`+field) {
					t.Errorf("bad issue's answer does not name %s: %s", field, r.Body)
				}
			}
			if r := s.Do(t, "POST", directory.PathIssue, admin, `{"org_id":`); r.Status != 400 {
				t.Fatalf("malformed JSON: %d %s", r.Status, r.Body)
			}
			var list struct {
				Data []directory.SoftwareJSON `json:"data"`
			}
			if r := s.Do(t, "GET", directory.PathIssue, admin, ""); r.Status != 200 || json.Unmarshal(r.Body, &list) != nil || len(list.Data) != 0 {
				t.Fatalf("list after refusals: %d %s", r.Status, r.Body)
			}

			// Issue.
			r = s.Do(t, "POST", directory.PathIssue, admin, body)
			var issued struct {
				SoftwareStatement string `json:"software_statement"`
				directory.SoftwareJSON
			}
			if r.Status != 201 || json.Unmarshal(r.Body, &issued) != nil {
				t.Fatalf("issue: %d %s", r.Status, r.Body)
			}
			wantURI := s.URL + "/sandbox/directory/keystore/" + fintechOrg + "/" + fintechSoftware + "/application.jwks"
			if issued.SoftwareJWKSURI != wantURI || strings.Join(issued.Scopes, " ") != "openid payments recurring-payments" {
				t.Fatalf("issued = %+v", issued.SoftwareJSON)
			}
			st, err := s.App.Directory.Verifier.Verify(ctx, issued.SoftwareStatement)
			if err != nil {
				t.Fatalf("Verify the issued statement: %v", err)
			}
			if st.OrgID != fintechOrg || st.SoftwareID != fintechSoftware || st.SoftwareJWKSURI != wantURI ||
				strings.Join(st.ActiveRoles(), ",") != "PAGTO" || st.SoftwareAPIWebhookURIs[0] != "https://fintech.example/hooks" {
				t.Fatalf("statement = %+v", st)
			}

			// The keystore: over HTTP, through the cache, and in process.
			path := strings.TrimPrefix(wantURI, s.URL)
			r = s.Do(t, "GET", path, nil, "")
			var published jose.JSONWebKeySet
			if r.Status != 200 || json.Unmarshal(r.Body, &published) != nil || len(published.Key("fintech-1")) != 1 {
				t.Fatalf("keystore: %d %s", r.Status, r.Body)
			}
			if k, err := s.App.Directory.Keys.Key(ctx, wantURI, "fintech-1"); err != nil || !k.IsPublic() {
				t.Fatalf("keystore through the cache: %v", err)
			}
			if set, err := s.App.Directory.ClientJWKS(ctx, wantURI); err != nil || len(set.Key("fintech-1")) != 1 || len(set.Key("other")) != 0 {
				t.Fatalf("keystore in process: %v %v", set, err)
			}
			unknown := "/sandbox/directory/keystore/" + fintechOrg + "/" + fintechOrg + "/application.jwks"
			if r := s.Do(t, "GET", unknown, nil, ""); r.Status != 404 || !strings.Contains(string(r.Body), `"NOT_FOUND"`) {
				t.Fatalf("unknown software: %d %s", r.Status, r.Body)
			}

			// The participants list: Ponte first, then the fintech with its role.
			r = s.Do(t, "GET", directory.PathParticipants, nil, "")
			var participants []struct {
				OrganisationID       string `json:"OrganisationId"`
				RegistrationNumber   string
				AuthorisationServers []struct {
					OpenIDDiscoveryDocument   string
					AutoRegistrationSupported bool
				}
				OrgDomainRoleClaims []struct{ Role, Status string }
			}
			if r.Status != 200 || json.Unmarshal(r.Body, &participants) != nil || len(participants) != 2 {
				t.Fatalf("participants: %d %s", r.Status, r.Body)
			}
			if p := participants[0]; p.OrganisationID != s.App.Config.OrganisationID || len(p.AuthorisationServers) != 1 ||
				p.AuthorisationServers[0].OpenIDDiscoveryDocument != s.URL+"/.well-known/openid-configuration" {
				t.Errorf("Ponte's entry = %+v", p)
			}
			if p := participants[1]; p.OrganisationID != fintechOrg || p.RegistrationNumber != "13353236000189" ||
				len(p.OrgDomainRoleClaims) != 1 || p.OrgDomainRoleClaims[0].Role != "PAGTO" || len(p.AuthorisationServers) != 0 {
				t.Errorf("fintech's entry = %+v", p)
			}
			if r := s.Do(t, "GET", directory.PathIssue, admin, ""); r.Status != 200 || json.Unmarshal(r.Body, &list) != nil ||
				len(list.Data) != 1 || list.Data[0].SoftwareID != fintechSoftware || list.Data[0].Keys != 1 {
				t.Fatalf("list: %d %s", r.Status, r.Body)
			}

			// Five minutes on, the statement is too old for registration.
			s.Clock.Advance(5*time.Minute + time.Second)
			if _, err := s.App.Directory.Verifier.Verify(ctx, issued.SoftwareStatement); !errors.Is(err, directory.ErrInvalidStatement) {
				t.Fatalf("Verify a stale statement: %v", err)
			}
		})
	}
}

// TestDirectoryOutsideSandbox: in production there is no sandbox Directory
// and statements are checked against the real Directory's issuer and
// keystore unless configured otherwise.
func TestDirectoryOutsideSandbox(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{Mode: config.Production})
	for _, path := range []string{directory.PathJWKS, directory.PathParticipants,
		"/sandbox/directory/keystore/" + fintechOrg + "/" + fintechSoftware + "/application.jwks"} {
		if r := s.Do(t, "GET", path, nil, ""); r.Status != 404 {
			t.Errorf("GET %s in production: %d", path, r.Status)
		}
	}
	if r := s.Do(t, "POST", directory.PathIssue, nil, `{}`); r.Status != 404 && r.Status != 405 {
		t.Errorf("issue in production: %d %s", r.Status, r.Body)
	}
	d := s.App.Directory
	if d.Sandbox != nil || d.Verifier.Issuer != directory.ProductionIssuer || d.Keystore != directory.ProductionKeystore {
		t.Fatalf("directory = %+v, verifier %+v", d, d.Verifier)
	}
}

package auth_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/store"
)

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
	Error       string `json:"error"`
}

func form(v url.Values) string { return v.Encode() }

func formHeader(extra ...string) map[string]string {
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	id, secret := s.App.Demo.ClientID, s.App.DemoSecret
	cc := url.Values{"grant_type": {"client_credentials"}}
	all := strings.Join(s.App.Demo.Scopes, " ")
	tests := []struct {
		name    string
		header  map[string]string
		body    string
		status  int
		errCode string
		scope   string
	}{
		{"basic", formHeader("Authorization", basic(id, secret)), form(cc), 200, "", all},
		{"post", formHeader(), form(url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}), 200, "", all},
		{"narrowed scope", formHeader("Authorization", basic(id, secret)), form(url.Values{"grant_type": {"client_credentials"}, "scope": {"openfinance.ticket.write"}}), 200, "", "openfinance.ticket.write"},
		{"scope not granted", formHeader("Authorization", basic(id, secret)), form(url.Values{"grant_type": {"client_credentials"}, "scope": {"openfinance.ticket.write not.a.scope"}}), 400, "invalid_scope", ""},
		{"empty scope", formHeader("Authorization", basic(id, secret)), form(url.Values{"grant_type": {"client_credentials"}, "scope": {" "}}), 400, "invalid_scope", ""},
		{"wrong secret", formHeader("Authorization", basic(id, secret+"x")), form(cc), 401, "invalid_client", ""},
		{"unknown client", formHeader("Authorization", basic("nobody", secret)), form(cc), 401, "invalid_client", ""},
		{"no credentials", formHeader(), form(cc), 401, "invalid_client", ""},
		{"bearer instead of client auth", formHeader("Authorization", "Bearer x"), form(cc), 401, "invalid_client", ""},
		{"two methods", formHeader("Authorization", basic(id, secret)), form(url.Values{"grant_type": {"client_credentials"}, "client_secret": {secret}}), 400, "invalid_request", ""},
		{"grant missing", formHeader("Authorization", basic(id, secret)), "", 400, "invalid_request", ""},
		{"grant unsupported", formHeader("Authorization", basic(id, secret)), form(url.Values{"grant_type": {"password"}}), 400, "unsupported_grant_type", ""},
		{"repeated parameter", formHeader("Authorization", basic(id, secret)), "grant_type=client_credentials&grant_type=client_credentials", 400, "invalid_request", ""},
		{"JSON body", map[string]string{"Content-Type": "application/json", "Authorization": basic(id, secret)}, `{"grant_type":"client_credentials"}`, 400, "invalid_request", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.Do(t, "POST", "/oauth/token", tt.header, tt.body)
			var tr tokenResponse
			r.JSON(t, &tr)
			if r.Status != tt.status || tr.Error != tt.errCode {
				t.Fatalf("got %d %s, want %d %q", r.Status, r.Body, tt.status, tt.errCode)
			}
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", r.Header.Get("Cache-Control"))
			}
			if tt.status == 401 && r.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tt.status != 200 {
				if strings.Contains(string(r.Body), secret) {
					t.Error("response echoes the secret")
				}
				return
			}
			if tr.TokenType != "Bearer" || tr.ExpiresIn != 300 || tr.Scope != tt.scope {
				t.Errorf("token response %+v", tr)
			}
			checkClaims(t, s, tr.AccessToken, id, tt.scope)
		})
	}
	t.Run("failures look alike", func(t *testing.T) {
		a := s.Do(t, "POST", "/oauth/token", formHeader("Authorization", basic(id, "wrong")), form(cc))
		b := s.Do(t, "POST", "/oauth/token", formHeader("Authorization", basic("unknown-client", "wrong")), form(cc))
		if string(a.Body) != string(b.Body) {
			t.Errorf("wrong secret and unknown client answer differently: %s vs %s", a.Body, b.Body)
		}
	})
	if strings.Contains(s.Logs.String(), secret) {
		t.Error("the client secret reached the log")
	}
}

// checkClaims verifies the token with the published JWKS, as a partner's
// resource server would, and checks every documented claim.
func checkClaims(t *testing.T, s *apptest.Server, raw, clientID, scope string) {
	t.Helper()
	var set jose.JSONWebKeySet
	jr := s.Do(t, "GET", "/.well-known/jwks.json", nil, "")
	jr.JSON(t, &set)
	if len(set.Keys) != 1 || set.Keys[0].KeyID == "" || set.Keys[0].Algorithm != "PS256" || !set.Keys[0].IsPublic() {
		t.Fatalf("JWKS %s", jr.Body)
	}
	if strings.Contains(string(jr.Body), `"d"`) {
		t.Fatal("JWKS leaks private key material")
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.PS256})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Headers[0].KeyID != set.Keys[0].KeyID {
		t.Errorf("kid %q not in JWKS", tok.Headers[0].KeyID)
	}
	var c jwt.Claims
	var extra struct {
		AZP   string `json:"azp"`
		Scope string `json:"scope"`
	}
	if err := tok.Claims(set.Keys[0].Key, &c, &extra); err != nil {
		t.Fatalf("signature does not verify with the JWKS: %v", err)
	}
	if c.Issuer != s.URL || c.Subject != clientID || extra.AZP != clientID || extra.Scope != scope || c.ID == "" {
		t.Errorf("claims %+v %+v", c, extra)
	}
	if !c.IssuedAt.Time().Equal(s.Clock.Now()) || c.Expiry.Time().Sub(c.IssuedAt.Time()) != 300*time.Second {
		t.Errorf("iat %v exp %v", c.IssuedAt.Time(), c.Expiry.Time())
	}
}

func TestSigningKeyPersists(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := apptest.Start(t, apptest.Options{DataDir: dir})
	tok := s.Token(t, "")
	fi, err := os.Stat(filepath.Join(dir, "signing-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("signing key mode %v, want 0600", fi.Mode().Perm())
	}
	if fi, err := os.Stat(filepath.Join(dir, "sandbox-demo-client.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("demo credentials file: %v %v", fi, err)
	}
	s = s.Restart(t)
	// A token issued before the restart still verifies: same key, same kid.
	r := s.Do(t, "GET", "/openfinance/consent-flow/ticket/0123456789abcdef0123456789abcdef", map[string]string{"Authorization": "Bearer " + tok}, "")
	if r.Status != http.StatusNotFound {
		t.Errorf("pre-restart token: %d %s, want 404 (authenticated, no such ticket)", r.Status, r.Body)
	}
}

func TestDemoSecretRecoveredWhenFileLost(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := apptest.Start(t, apptest.Options{DataDir: dir})
	id := s.App.Demo.ClientID
	s.Stop()
	if err := os.Remove(filepath.Join(dir, "sandbox-demo-client.json")); err != nil {
		t.Fatal(err)
	}
	s2 := apptest.Start(t, apptest.Options{DataDir: dir})
	if s2.App.Demo.ClientID != id {
		t.Errorf("demo application recreated: %s vs %s", s2.App.Demo.ClientID, id)
	}
	s2.Token(t, "") // the rotated secret works
	var n int
	if err := s2.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM applications WHERE sandbox_demo = 1`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d demo applications (%v), want 1", n, err)
	}
}

func TestApplicationLifecycle(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	ctx := t.Context()
	_, _, err := s.App.Apps.Create(ctx, auth.NewApplication{Name: "", CompanyKey: strings.Repeat("K", 37), Scopes: []string{"nope"},
		RedirectURLs: []string{"/relative", "https://user:pw@example.com/cb"}})
	if err == nil {
		t.Fatal("invalid application accepted")
	}
	for _, want := range []string{"name is required", "companyKey", `unknown scope "nope"`, "must be absolute", "userinfo"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	a, secret, err := s.App.Apps.Create(ctx, auth.NewApplication{Name: "Acesso", CompanyKey: "ACESSO",
		Scopes: []string{"openfinance.ticket.write"}, RedirectURLs: []string{"https://partner.example/cb"}, DeepLinkURL: "acesso://openfinance"})
	if err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := s.App.DB.Read().QueryRow(`SELECT secret_hash FROM applications WHERE id = $1`, a.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored == secret || strings.Contains(stored, secret) {
		t.Error("client secret stored in clear")
	}
	old := s.TokenFor(t, a.ClientID, secret, "")
	_, newSecret, err := s.App.Apps.RotateSecret(ctx, a.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Do(t, "POST", "/oauth/token", formHeader("Authorization", basic(a.ClientID, secret)), "grant_type=client_credentials"); r.Status != 401 {
		t.Errorf("old secret after rotation: %d", r.Status)
	}
	s.TokenFor(t, a.ClientID, newSecret, "")
	if _, err := s.App.Apps.Disable(ctx, a.ClientID); err != nil {
		t.Fatal(err)
	}
	if r := s.Do(t, "POST", "/oauth/token", formHeader("Authorization", basic(a.ClientID, newSecret)), "grant_type=client_credentials"); r.Status != 401 {
		t.Errorf("disabled application got a token: %d", r.Status)
	}
	body, _ := json.Marshal(map[string]string{"requestUri": "r", "clientId": "c", "documentNumber": "47742663023"})
	if r := s.Do(t, "POST", "/openfinance/consent-flow/ticket", map[string]string{"Authorization": "Bearer " + old}, string(body)); r.Status != 401 {
		t.Errorf("disabled application's earlier token accepted: %d", r.Status)
	}
}

// TestDisableByAnotherProcess: a disable written by another process (the
// CLI, another instance) is seen within two seconds; one made through this
// process's service at once (TestApplicationLifecycle).
func TestDisableByAnotherProcess(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	a, secret, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "P", CompanyKey: "P", Scopes: []string{"openfinance.ticket.read"}})
	if err != nil {
		t.Fatal(err)
	}
	tok := s.TokenFor(t, a.ClientID, secret, "")
	get := func() int {
		return s.Do(t, "GET", "/openfinance/consent-flow/ticket/0123456789abcdef0123456789abcdef", map[string]string{"Authorization": "Bearer " + tok}, "").Status
	}
	if st := get(); st != 404 {
		t.Fatalf("before: %d", st)
	}
	// Another process disables it: straight in the database.
	other := storeOpen(t, s)
	if _, err := auth.NewApplications(other, s.Clock).Disable(t.Context(), a.ClientID); err != nil {
		t.Fatal(err)
	}
	s.Clock.Advance(2 * time.Second)
	if st := get(); st != 401 {
		t.Errorf("2 s after another process disabled the application: %d, want 401", st)
	}
}

func storeOpen(t *testing.T, s *apptest.Server) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), store.Options{URL: s.Options.DatabaseURL, DataDir: s.Options.DataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

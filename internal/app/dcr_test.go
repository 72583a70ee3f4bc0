package app_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/directory"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// dcrSoftware is an initiator's software at the sandbox Directory: its
// organisation, key pair (published in the keystore) and the URIs its
// statements allow.
type dcrSoftware struct {
	orgID, softwareID string
	key               *rsa.PrivateKey
	kid               string
	redirectURI       string
	webhookURI        string
	roles             []string
	// encKey, when set, is published too, as an ID token encryption key.
	encKey *rsa.PrivateKey
}

func newDCRSoftware(t *testing.T, roles ...string) *dcrSoftware {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &dcrSoftware{orgID: uuid.NewString(), key: key, kid: "sig-" + uuid.NewString()[:8],
		redirectURI: "https://itp.example/cb", webhookURI: "https://itp.example/hooks", roles: roles}
}

// issue asks the sandbox Directory for a statement of the software (the
// first time creating it there) and returns it.
func (sw *dcrSoftware) issue(t *testing.T, sb *directory.Sandbox) string {
	t.Helper()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &sw.key.PublicKey, KeyID: sw.kid, Algorithm: "PS256", Use: "sig"}}}
	if sw.encKey != nil {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &sw.encKey.PublicKey, KeyID: sw.kid + "-enc", Algorithm: "RSA-OAEP", Use: "enc"})
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	got, ssa, err := sb.Issue(t.Context(), directory.IssueRequest{OrgID: sw.orgID, SoftwareID: sw.softwareID,
		OrgName: "ITP Exemplo", ClientName: "ITP Exemplo App", Roles: sw.roles, RedirectURIs: []string{sw.redirectURI},
		WebhookURIs: []string{sw.webhookURI}, JWKS: jwks})
	if err != nil {
		t.Fatalf("issue statement: %v", err)
	}
	sw.softwareID = got.SoftwareID
	return ssa
}

func (sw *dcrSoftware) jwksURI(sb *directory.Sandbox) string {
	return directory.KeystoreJWKSURI(sb.Keystore(), sw.orgID, sw.softwareID)
}

// request is a registration request as an initiator sends it; change edits it.
func (sw *dcrSoftware) request(sb *directory.Sandbox, ssa string, change func(map[string]any)) string {
	req := map[string]any{
		"software_statement":         ssa,
		"redirect_uris":              []string{sw.redirectURI},
		"jwks_uri":                   sw.jwksURI(sb),
		"token_endpoint_auth_method": "private_key_jwt",
		"grant_types":                []string{"authorization_code", "implicit", "refresh_token", "client_credentials"},
		"response_types":             []string{"code id_token"},
		"webhook_uris":               []string{sw.webhookURI},
	}
	if change != nil {
		change(req)
	}
	b, _ := json.Marshal(req)
	return string(b)
}

// initiator is the registered client as oidctest drives it.
func (sw *dcrSoftware) initiator(s *apptest.Server, clientID string) *oidctest.Initiator {
	return &oidctest.Initiator{ClientID: clientID, RedirectURI: sw.redirectURI, Key: sw.key, KeyID: sw.kid, Issuer: s.URL}
}

type registered struct {
	ClientID                string   `json:"client_id"`
	RegistrationAccessToken string   `json:"registration_access_token"`
	RegistrationClientURI   string   `json:"registration_client_uri"`
	Scope                   string   `json:"scope"`
	JWKSURI                 string   `json:"jwks_uri"`
	OrgID                   string   `json:"org_id"`
	SoftwareID              string   `json:"software_id"`
	SoftwareStatement       string   `json:"software_statement"`
	WebhookURIs             []string `json:"webhook_uris"`
	ClientName              string   `json:"client_name"`
	Error                   string   `json:"error"`
	ErrorDescription        string   `json:"error_description"`
}

func registration(t *testing.T, s *apptest.Server, method, path, token, body string) (*apptest.Response, registered) {
	t.Helper()
	hdr := map[string]string{}
	if token != "" {
		hdr["Authorization"] = "Bearer " + token
	}
	r := s.Do(t, method, path, hdr, body)
	var out registered
	if len(r.Body) > 0 {
		r.JSON(t, &out)
	}
	return r, out
}

// counts are the rows registration writes: clients and applications.
func registrationRows(t *testing.T, s *apptest.Server) [2]int {
	t.Helper()
	var n [2]int
	for i, table := range []string{"oidc_clients", "applications"} {
		if err := s.App.DB.Read().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM `+table).Scan(&n[i]); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// signedConsent creates a payment consent as the registered client: a
// body signed with its key (iss its organisation), the client_credentials
// token of the authorization server. It returns the consent id.
func signedConsent(t *testing.T, s *apptest.Server, sw *dcrSoftware, token string) string {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal([]byte(consentBody), &body); err != nil {
		t.Fatal(err)
	}
	now := s.Clock.Now()
	body["aud"], body["iss"], body["iat"], body["jti"] = s.URL+payments.ConsentsPath, sw.orgID, now.Unix(), uuid.NewString()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: sw.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", sw.kid))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(body).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	r := s.Do(t, "POST", payments.ConsentsPath, map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/jwt",
		"x-fapi-interaction-id": uuid.NewString(), "x-idempotency-key": uuid.NewString()}, raw)
	if r.Status != 201 {
		t.Fatalf("signed consent: %d %s", r.Status, r.Body)
	}
	var c struct {
		Data struct {
			ConsentID string `json:"consentId"`
		} `json:"data"`
	}
	jwtPayload(t, r.Body, &c)
	return c.Data.ConsentID
}

// jwtPayload decodes a signed response's claims (its signature is the
// payments tests' concern).
func jwtPayload(t *testing.T, body []byte, v any) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(string(body), []jose.SignatureAlgorithm{jose.PS256})
	if err != nil {
		t.Fatalf("not a signed response (%v): %s", err, body)
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), v); err != nil {
		t.Fatal(err)
	}
}

// TestDynamicClientRegistration: an initiator registers with a statement of
// the sandbox Directory, runs a payment-consent journey end to end like a
// hand-registered one (client_credentials, signed consent, PAR, authorize,
// token, consent GET), reads and updates its registration (the token
// rotates) and deletes it: its tokens and its registration token stop
// working. The registration access token is stored hashed.
func TestDynamicClientRegistration(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			sb := s.App.Directory.Sandbox
			sw := newDCRSoftware(t, directory.RolePayments)
			r, reg := registration(t, s, "POST", oidc.PathRegister, "", sw.request(sb, sw.issue(t, sb), nil))
			if r.Status != 201 || reg.ClientID == "" || reg.RegistrationAccessToken == "" {
				t.Fatalf("register: %d %s", r.Status, r.Body)
			}
			if !strings.Contains(r.Header.Get("Cache-Control"), "no-store") {
				t.Errorf("Cache-Control = %q, want no-store", r.Header.Get("Cache-Control"))
			}
			want := registered{ClientID: reg.ClientID, RegistrationAccessToken: reg.RegistrationAccessToken,
				RegistrationClientURI: s.URL + oidc.PathRegister + "/" + reg.ClientID,
				Scope:                 "consent openid payments recurring-consent recurring-payments", JWKSURI: sw.jwksURI(sb),
				OrgID: sw.orgID, SoftwareID: sw.softwareID, SoftwareStatement: reg.SoftwareStatement,
				WebhookURIs: []string{sw.webhookURI}, ClientName: "ITP Exemplo App"}
			if reg.SoftwareStatement == "" || !equalJSON(reg, want) {
				t.Errorf("registration = %+v\nwant %+v", reg, want)
			}
			var data string
			if err := s.App.DB.Read().QueryRowContext(t.Context(), `SELECT data FROM oidc_clients WHERE id = $1`, reg.ClientID).Scan(&data); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(data, reg.RegistrationAccessToken) || !strings.Contains(data, `"registration_token":"sha256:`) {
				t.Errorf("the stored client keeps the registration token in clear: %s", data)
			}
			var disc map[string]any
			s.Do(t, "GET", oidc.PathDiscovery, nil, "").JSON(t, &disc)
			if disc["registration_endpoint"] != s.URL+oidc.PathRegister {
				t.Errorf("discovery registration_endpoint = %v", disc["registration_endpoint"])
			}
			app, err := s.App.Apps.Get(t.Context(), reg.ClientID)
			if err != nil || app.OrganisationID != sw.orgID || app.KeyCount() != 1 || app.Disabled || app.AcceptPlainJSON {
				t.Fatalf("partner application = %+v, %v", app, err)
			}

			// The whole journey, as a hand-registered initiator runs it.
			in := sw.initiator(s, reg.ClientID)
			status, cc := in.ClientCredentials(t, oidctest.NoRedirects(), s.URL, "payments")
			ccToken, _ := cc["access_token"].(string)
			if status != 200 || ccToken == "" {
				t.Fatalf("client_credentials: %d %v", status, cc)
			}
			consentID := signedConsent(t, s, sw, ccToken)
			req := oidctest.NewRequest(consentID)
			back := apptest.NewSandboxUser("47742663023", "1234567").Decide(t, s, authorizeURL(s, in, pushPAR(t, s, in, req, paymentScope(consentID))), true)
			frag, _ := url.ParseQuery(back.Fragment)
			if got := back.Scheme + "://" + back.Host + back.Path; got != sw.redirectURI || frag.Get("code") == "" || frag.Get("state") != req.State {
				t.Fatalf("callback = %s", back)
			}
			status, tok := in.ExchangeCode(t, oidctest.NoRedirects(), s.URL, frag.Get("code"), req)
			userToken, _ := tok["access_token"].(string)
			if status != 200 || userToken == "" || !strings.Contains(tok["scope"].(string), "consent:"+consentID) {
				t.Fatalf("code exchange: %d %v", status, tok)
			}
			readConsent := func(token string) (int, string) {
				r := s.Do(t, "GET", payments.ConsentsPath+"/"+consentID, map[string]string{"Authorization": "Bearer " + token,
					"x-fapi-interaction-id": uuid.NewString()}, "")
				if r.Status != 200 {
					return r.Status, ""
				}
				var c struct {
					Data struct {
						Status string `json:"status"`
					} `json:"data"`
				}
				jwtPayload(t, r.Body, &c)
				return r.Status, c.Data.Status
			}
			if status, st := readConsent(ccToken); status != 200 || st != "AUTHORISED" {
				t.Fatalf("consent GET: %d %s, want 200 AUTHORISED", status, st)
			}

			// One client per software.
			before := registrationRows(t, s)
			r, again := registration(t, s, "POST", oidc.PathRegister, "", sw.request(sb, sw.issue(t, sb), nil))
			if r.Status != 400 || again.Error != "invalid_software_statement" || !strings.Contains(again.ErrorDescription, reg.ClientID) {
				t.Errorf("second registration: %d %s", r.Status, r.Body)
			}
			if after := registrationRows(t, s); after != before {
				t.Errorf("a refused registration wrote rows: %v → %v", before, after)
			}

			// Management: read with the token; a wrong or missing token is refused.
			self := oidc.PathRegister + "/" + reg.ClientID
			if r, got := registration(t, s, "GET", self, reg.RegistrationAccessToken, ""); r.Status != 200 || got.ClientID != reg.ClientID {
				t.Errorf("GET registration: %d %s", r.Status, r.Body)
			}
			var stored struct {
				RegistrationToken string `json:"registration_token"`
			}
			if err := json.Unmarshal([]byte(data), &stored); err != nil {
				t.Fatal(err)
			}
			for name, token := range map[string]string{"no token": "", "made up": "not-the-token", "the stored hash": stored.RegistrationToken} {
				if r, got := registration(t, s, "GET", self, token, ""); r.Status != 401 || got.Error != "invalid_token" ||
					r.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
					t.Errorf("GET with %s: %d %s", name, r.Status, r.Body)
				}
			}

			// Update with a fresh statement: a new registration token, the old one refused.
			r, upd := registration(t, s, "PUT", self, reg.RegistrationAccessToken, sw.request(sb, sw.issue(t, sb), func(m map[string]any) {
				m["scope"] = "openid payments"
				delete(m, "webhook_uris")
			}))
			if r.Status != 200 || upd.RegistrationAccessToken == "" || upd.RegistrationAccessToken == reg.RegistrationAccessToken ||
				upd.Scope != "consent openid payments" || len(upd.WebhookURIs) != 0 {
				t.Fatalf("PUT registration: %d %s", r.Status, r.Body)
			}
			if r, _ := registration(t, s, "GET", self, reg.RegistrationAccessToken, ""); r.Status != 401 {
				t.Errorf("the replaced registration token still reads: %d %s", r.Status, r.Body)
			}
			// An update breaking the rules is refused with its own error and changes nothing.
			r, bad := registration(t, s, "PUT", self, upd.RegistrationAccessToken, sw.request(sb, sw.issue(t, sb), func(m map[string]any) {
				m["redirect_uris"] = []string{"https://evil.example/cb"}
			}))
			if r.Status != 400 || bad.Error != "invalid_redirect_uri" {
				t.Errorf("PUT with a foreign redirect URI: %d %s", r.Status, r.Body)
			}
			if r, got := registration(t, s, "GET", self, upd.RegistrationAccessToken, ""); r.Status != 200 || got.Scope != "consent openid payments" {
				t.Errorf("after a refused update: %d %s", r.Status, r.Body)
			}

			// Delete: the tokens and the registration token stop working.
			if r, _ := registration(t, s, "DELETE", self, upd.RegistrationAccessToken, ""); r.Status != 204 {
				t.Fatalf("DELETE registration: %d %s", r.Status, r.Body)
			}
			for name, token := range map[string]string{"client_credentials": ccToken, "authorization_code": userToken} {
				if status, _ := readConsent(token); status != 401 {
					t.Errorf("consent GET with the deleted client's %s token: %d, want 401", name, status)
				}
			}
			if status, out := in.ClientCredentials(t, oidctest.NoRedirects(), s.URL, "payments"); status != 401 {
				t.Errorf("client_credentials after delete: %d %v", status, out)
			}
			// The deleted client and a client that never existed answer alike.
			for _, path := range []string{self, oidc.PathRegister + "/dc-never-registered"} {
				if r, got := registration(t, s, "GET", path, upd.RegistrationAccessToken, ""); r.Status != 401 || got.Error != "invalid_token" {
					t.Errorf("GET %s after delete: %d %s", path, r.Status, r.Body)
				}
			}
			if app, err := s.App.Apps.Get(t.Context(), reg.ClientID); err != nil || !app.Disabled {
				t.Errorf("application after delete: %+v, %v", app, err)
			}
		})
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestDynamicClientRegistrationRefusals: every rule of the profile refuses
// with its RFC 7591 error and a description, and writes nothing.
func TestDynamicClientRegistrationRefusals(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			sb := s.App.Directory.Sandbox
			forger, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				name  string
				roles []string
				// body builds the request from a fresh statement.
				body      func(sw *dcrSoftware, ssa string) string
				wantError string
				wantIn    string // in error_description
			}{
				{"no statement", []string{directory.RolePayments}, func(sw *dcrSoftware, ssa string) string {
					return sw.request(sb, ssa, func(m map[string]any) { delete(m, "software_statement") })
				}, "invalid_software_statement", "software_statement is required"},
				{"forged signature", []string{directory.RolePayments}, func(sw *dcrSoftware, ssa string) string {
					return sw.request(sb, resign(t, ssa, forger), nil)
				}, "invalid_software_statement", "signature"},
				{"not a JWS", []string{directory.RolePayments}, func(sw *dcrSoftware, ssa string) string {
					return sw.request(sb, "not.a.statement", nil)
				}, "invalid_software_statement", ""},
				{"scope beyond the roles", []string{directory.RoleData}, func(sw *dcrSoftware, ssa string) string {
					return sw.request(sb, ssa, func(m map[string]any) { m["scope"] = "openid payments"; delete(m, "webhook_uris") })
				}, "invalid_client_metadata", `scope "payments" is not allowed`},
				{"role without scopes here", []string{directory.RoleAccount}, func(sw *dcrSoftware, ssa string) string {
					return sw.request(sb, ssa, nil)
				}, "unapproved_software_statement", "PAGTO"},
				{"foreign redirect URI", []string{directory.RolePayments}, func(sw *dcrSoftware, ssa string) string {
					return sw.request(sb, ssa, func(m map[string]any) { m["redirect_uris"] = []string{"https://evil.example/cb"} })
				}, "invalid_redirect_uri", "software_redirect_uris"},
				{"no redirect URI", []string{directory.RolePayments}, func(sw *dcrSoftware, ssa string) string {
					return sw.request(sb, ssa, func(m map[string]any) { delete(m, "redirect_uris") })
				}, "invalid_redirect_uri", "redirect_uris is required"},
				{"foreign jwks_uri", []string{directory.RolePayments}, func(sw *dcrSoftware, ssa string) string {
					return sw.request(sb, ssa, func(m map[string]any) { m["jwks_uri"] = "https://evil.example/jwks" })
				}, "invalid_client_metadata", "software_jwks_uri"},
				{"jwks by value", []string{directory.RolePayments}, func(sw *dcrSoftware, ssa string) string {
					return sw.request(sb, ssa, func(m map[string]any) {
						m["jwks"] = jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &sw.key.PublicKey, KeyID: sw.kid, Algorithm: "PS256", Use: "sig"}}}
					})
				}, "invalid_client_metadata", "jwks by value"},
				{"foreign webhook URI", []string{directory.RolePayments}, func(sw *dcrSoftware, ssa string) string {
					return sw.request(sb, ssa, func(m map[string]any) { m["webhook_uris"] = []string{"https://evil.example/hooks"} })
				}, "invalid_webhook_uris", "software_api_webhook_uris"},
				{"webhook URI with a trailing slash", []string{directory.RolePayments}, func(sw *dcrSoftware, ssa string) string {
					return sw.request(sb, ssa, func(m map[string]any) { m["webhook_uris"] = []string{sw.webhookURI + "/"} })
				}, "invalid_webhook_uris", "trailing slash"},
				{"client secret authentication", []string{directory.RolePayments}, func(sw *dcrSoftware, ssa string) string {
					return sw.request(sb, ssa, func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_basic" })
				}, "invalid_client_metadata", ""},
				{"another response type", []string{directory.RolePayments}, func(sw *dcrSoftware, ssa string) string {
					return sw.request(sb, ssa, func(m map[string]any) { m["response_types"] = []string{"code"} })
				}, "invalid_client_metadata", ""},
				{"encryption asked without an encryption key", []string{directory.RolePayments}, func(sw *dcrSoftware, ssa string) string {
					return sw.request(sb, ssa, func(m map[string]any) {
						m["id_token_encrypted_response_alg"], m["id_token_encrypted_response_enc"] = "RSA-OAEP", "A256GCM"
					})
				}, "invalid_client_metadata", "needs an RSA encryption key"},
				{"body not JSON", []string{directory.RolePayments}, func(sw *dcrSoftware, ssa string) string {
					return `{"software_statement":`
				}, "invalid_request", ""},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					sw := newDCRSoftware(t, tt.roles...)
					body := tt.body(sw, sw.issue(t, sb))
					before := registrationRows(t, s)
					r, got := registration(t, s, "POST", oidc.PathRegister, "", body)
					if r.Status != 400 || got.Error != tt.wantError || !strings.Contains(got.ErrorDescription, tt.wantIn) {
						t.Errorf("%d %s, want 400 %s mentioning %q", r.Status, r.Body, tt.wantError, tt.wantIn)
					}
					if after := registrationRows(t, s); after != before {
						t.Errorf("a refused registration wrote rows: %v → %v", before, after)
					}
				})
			}

			// A software that published an encryption key gets encrypted ID
			// tokens (RSA-OAEP, A256GCM) without asking, as a hand-registered one.
			enc := newDCRSoftware(t, directory.RolePayments)
			if enc.encKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				t.Fatal(err)
			}
			r, encReg := registration(t, s, "POST", oidc.PathRegister, "", enc.request(sb, enc.issue(t, sb), nil))
			var encMeta struct {
				Alg string `json:"id_token_encrypted_response_alg"`
				Enc string `json:"id_token_encrypted_response_enc"`
			}
			r.JSON(t, &encMeta)
			if r.Status != 201 || encReg.ClientID == "" || encMeta.Alg != "RSA-OAEP" || encMeta.Enc != "A256GCM" {
				t.Errorf("registration with an encryption key: %d %s", r.Status, r.Body)
			}

			// A statement older than five minutes (the Directory's clock is Ponte's here).
			sw := newDCRSoftware(t, directory.RolePayments)
			ssa := sw.issue(t, sb)
			s.Clock.Advance(5*time.Minute + time.Second)
			before := registrationRows(t, s)
			r, got := registration(t, s, "POST", oidc.PathRegister, "", sw.request(sb, ssa, nil))
			if r.Status != 400 || got.Error != "invalid_software_statement" || !strings.Contains(got.ErrorDescription, "more than 5m0s ago") {
				t.Errorf("expired statement: %d %s", r.Status, r.Body)
			}
			if after := registrationRows(t, s); after != before {
				t.Errorf("a refused registration wrote rows: %v → %v", before, after)
			}
		})
	}
}

// resign signs ssa's claims again with key under the same kid: a statement
// the Directory never signed.
func resign(t *testing.T, ssa string, key *rsa.PrivateKey) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(ssa, []jose.SignatureAlgorithm{jose.PS256})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", jws.Signatures[0].Header.KeyID))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(jws.UnsafePayloadWithoutVerification())
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDynamicClientRegistrationMutualTLS: under mutual TLS registration
// needs a client certificate, whose UID and organizationIdentifier must be
// the statement's software and organisation; discovery lists the
// registration endpoint among the mTLS aliases; the registered client gets
// a token with private_key_jwt, go-oidc reading its keys from the sandbox
// keystore in process.
func TestDynamicClientRegistrationMutualTLS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	s := serve(t, "", config.Config{TLSCertFile: pki.serverCert, TLSKeyFile: pki.serverKey, ClientCAFile: pki.caFile})
	sb := s.app.Directory.Sandbox
	sw := newDCRSoftware(t, directory.RolePayments)
	ssa := sw.issue(t, sb)
	certFor := func(uid, orgIdentifier string) *tls.Certificate {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		cert := issue(t, pki.ca, pki.caKey, &x509.Certificate{Subject: pkix.Name{CommonName: "itp.example", ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}, Value: uid},
			{Type: asn1.ObjectIdentifier{2, 5, 4, 97}, Value: orgIdentifier},
		}}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, &key.PublicKey)
		return &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	}
	good := tlsClient(pki.roots, certFor(sw.softwareID, "OFBBR-"+sw.orgID))

	disc := send(t, good, "GET", s.url+oidc.PathDiscovery, nil, "")
	var d struct {
		Registration string `json:"registration_endpoint"`
		Aliases      struct {
			Registration string `json:"registration_endpoint"`
		} `json:"mtls_endpoint_aliases"`
	}
	if err := json.Unmarshal(disc.body, &d); err != nil || d.Registration != s.url+oidc.PathRegister || d.Aliases.Registration != s.url+oidc.PathRegister {
		t.Errorf("discovery: %+v %v", d, err)
	}
	body := sw.request(sb, ssa, nil)
	hdr := map[string]string{"Content-Type": "application/json"}
	for name, tt := range map[string]struct {
		c      *http.Client
		status int
		code   string
	}{
		"no certificate":       {tlsClient(pki.roots, nil), 401, "invalid_client"},
		"another software":     {tlsClient(pki.roots, certFor(uuid.NewString(), "OFBBR-"+sw.orgID)), 400, "unapproved_software_statement"},
		"another organisation": {tlsClient(pki.roots, certFor(sw.softwareID, "OFBBR-"+uuid.NewString())), 400, "unapproved_software_statement"},
	} {
		r := send(t, tt.c, "POST", s.url+oidc.PathRegister, hdr, body)
		var e registered
		_ = json.Unmarshal(r.body, &e)
		if r.status != tt.status || e.Error != tt.code {
			t.Errorf("%s: %d %s, want %d %s", name, r.status, r.body, tt.status, tt.code)
		}
	}
	r := send(t, good, "POST", s.url+oidc.PathRegister, hdr, body)
	var reg registered
	if err := json.Unmarshal(r.body, &reg); err != nil || r.status != 201 || reg.ClientID == "" {
		t.Fatalf("register with the software's certificate: %d %s", r.status, r.body)
	}
	in := &oidctest.Initiator{ClientID: reg.ClientID, RedirectURI: sw.redirectURI, Key: sw.key, KeyID: sw.kid, Issuer: s.url}
	if status, tok := in.ClientCredentials(t, good, s.url, "payments"); status != 200 || tok["access_token"] == nil {
		t.Errorf("client_credentials over mutual TLS: %d %v", status, tok)
	}

	// tls_client_auth: the subject DN as DCR-BR writes it (UID by
	// descriptor, organizationIdentifier as an OID with its DER in hex).
	tsw := newDCRSoftware(t, directory.RolePayments)
	tssa := tsw.issue(t, sb)
	orgIdentifier := "OFBBR-" + tsw.orgID
	tcert := certFor(tsw.softwareID, orgIdentifier)
	tc := tlsClient(pki.roots, tcert)
	der, err := asn1.MarshalWithParams(orgIdentifier, "printable")
	if err != nil {
		t.Fatal(err)
	}
	dn := fmt.Sprintf("2.5.4.97=#%x,UID=%s,CN=itp.example", der, tsw.softwareID)
	tlsAuth := func(subjectDN string) string {
		return tsw.request(sb, tssa, func(m map[string]any) {
			m["token_endpoint_auth_method"] = "tls_client_auth"
			m["tls_client_auth_subject_dn"] = subjectDN
		})
	}
	r = send(t, tc, "POST", s.url+oidc.PathRegister, hdr, tlsAuth("UID="+tsw.softwareID+",CN=someone-else.example,2.5.4.97="+orgIdentifier))
	if !strings.Contains(string(r.body), "invalid_client_metadata") || r.status != 400 {
		t.Errorf("tls_client_auth with another subject: %d %s", r.status, r.body)
	}
	r = send(t, tc, "POST", s.url+oidc.PathRegister, hdr, tlsAuth(dn))
	var treg registered
	if err := json.Unmarshal(r.body, &treg); err != nil || r.status != 201 {
		t.Fatalf("register with tls_client_auth: %d %s", r.status, r.body)
	}
	token := func(c *http.Client) reply {
		return send(t, c, "POST", s.url+oidc.PathToken, map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			url.Values{"grant_type": {"client_credentials"}, "client_id": {treg.ClientID}, "scope": {"payments"}}.Encode())
	}
	if r := token(tc); r.status != 200 || !strings.Contains(string(r.body), "access_token") {
		t.Errorf("client_credentials with tls_client_auth: %d %s", r.status, r.body)
	}
	for name, c := range map[string]*http.Client{"another certificate": good, "no certificate": tlsClient(pki.roots, nil)} {
		if r := token(c); r.status != 401 {
			t.Errorf("tls_client_auth token with %s: %d %s", name, r.status, r.body)
		}
	}
}

// TestDynamicClientRegistrationRace: two registrations of one software at
// the same moment make one client; the other is refused and writes nothing.
func TestDynamicClientRegistrationRace(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			sb := s.App.Directory.Sandbox
			sw := newDCRSoftware(t, directory.RolePayments)
			bodies := []string{sw.request(sb, sw.issue(t, sb), nil), sw.request(sb, sw.issue(t, sb), nil)}
			before := registrationRows(t, s)
			statuses := make(chan int, len(bodies))
			var wg sync.WaitGroup
			for _, body := range bodies {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := http.Post(s.URL+oidc.PathRegister, "application/json", strings.NewReader(body))
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					statuses <- resp.StatusCode
				}()
			}
			wg.Wait()
			close(statuses)
			var got []int
			for st := range statuses {
				got = append(got, st)
			}
			slices.Sort(got)
			if !slices.Equal(got, []int{201, 400}) {
				t.Errorf("statuses = %v, want one 201 and one 400", got)
			}
			if after := registrationRows(t, s); after != [2]int{before[0] + 1, before[1] + 1} {
				t.Errorf("rows %v → %v, want one client and one application more", before, after)
			}
		})
	}
}

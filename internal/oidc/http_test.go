package oidc_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

const consentID = "urn:ponte:5d9b3c2e-0c6f-4b0a-9d8e-2f4b8a1c7e10"

// These tests talk to the server with a plain http.Client: the authorization
// server's responses are go-oidc's, not part of api/openapi.yaml's contract check.

func start(t *testing.T, dbURL string) (*apptest.Server, *oidctest.Initiator) {
	t.Helper()
	s := apptest.Start(t, apptest.Options{DatabaseURL: dbURL})
	in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, "initiator-a")
	return s, in
}

func decode(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	s, _ := start(t, "")
	resp, err := http.Get(s.URL + oidc.PathDiscovery)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("discovery: %d", resp.StatusCode)
	}
	var d map[string]any
	decode(t, resp, &d)
	want := map[string]any{
		"issuer":                                s.URL,
		"pushed_authorization_request_endpoint": s.URL + oidc.PathPAR,
		"authorization_endpoint":                s.URL + oidc.PathAuthorize,
		"token_endpoint":                        s.URL + oidc.PathToken,
		"jwks_uri":                              s.URL + oidc.PathJWKS,
		"require_pushed_authorization_requests": true,
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s = %v, want %v", k, d[k], v)
		}
	}
	for k, v := range map[string]string{
		"response_types_supported":                         "code id_token",
		"token_endpoint_auth_methods_supported":            "private_key_jwt",
		"code_challenge_methods_supported":                 "S256",
		"id_token_signing_alg_values_supported":            "PS256",
		"request_object_signing_alg_values_supported":      "PS256",
		"token_endpoint_auth_signing_alg_values_supported": "PS256",
	} {
		list, _ := d[k].([]any)
		found := false
		for _, x := range list {
			found = found || x == v
		}
		if !found {
			t.Errorf("%s = %v, want it to contain %q", k, d[k], v)
		}
	}

	// The provider's JWKS is Ponte's signing key, public part only.
	resp, err = http.Get(s.URL + oidc.PathJWKS)
	if err != nil {
		t.Fatal(err)
	}
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	decode(t, resp, &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0]["alg"] != "PS256" || jwks.Keys[0]["kid"] == "" || jwks.Keys[0]["d"] != nil {
		t.Fatalf("jwks = %v", jwks.Keys)
	}
	resp, err = http.Get(s.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var partnerJWKS struct {
		Keys []map[string]any `json:"keys"`
	}
	decode(t, resp, &partnerJWKS)
	if len(partnerJWKS.Keys) != 1 || partnerJWKS.Keys[0]["kid"] != jwks.Keys[0]["kid"] {
		t.Fatalf("partner jwks %v differs from %v", partnerJWKS.Keys, jwks.Keys)
	}
}

func TestPARAndAuthorize(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s, in := start(t, e.URL(t))
			c := oidctest.NoRedirects()
			req := oidctest.NewRequest(consentID)
			resp := in.PAR(t, c, s.URL, req)
			if resp.StatusCode != http.StatusCreated {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("par: %d %s", resp.StatusCode, b)
			}
			var par struct {
				RequestURI string `json:"request_uri"`
				ExpiresIn  int    `json:"expires_in"`
			}
			decode(t, resp, &par)
			if !strings.HasPrefix(par.RequestURI, "urn:ietf:params:oauth:request_uri:") || par.ExpiresIn != oidc.RequestURILifetime {
				t.Fatalf("par response = %+v", par)
			}

			q := url.Values{"client_id": {in.ClientID}, "request_uri": {par.RequestURI}}
			resp, err := c.Get(s.URL + oidc.PathAuthorize + "?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("authorize: %d", resp.StatusCode)
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			// The consent does not exist: the holder's journey refuses it and
			// the user goes back to the initiator with access_denied and state
			// (the journey itself is tested in internal/app).
			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != in.RedirectURI {
				t.Fatalf("authorize redirected to %s, want the initiator's redirect_uri", loc)
			}
			frag, _ := url.ParseQuery(loc.Fragment)
			if frag.Get("error") != "access_denied" || frag.Get("state") != req.State {
				t.Fatalf("authorize for an unknown consent: %v", frag)
			}
		})
	}
}

func TestPARRefusals(t *testing.T) {
	t.Parallel()
	s, in := start(t, "")
	c := oidctest.NoRedirects()

	// Without a request object (JAR is required).
	form := url.Values{
		"client_id": {in.ClientID}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion": {in.ClientAssertion(t)}, "response_type": {"code id_token"}, "scope": {"openid payments"},
		"redirect_uri": {in.RedirectURI},
	}
	resp, err := c.Post(s.URL+oidc.PathPAR, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("par without request object: %d", resp.StatusCode)
	}

	// A request object signed by another client's key.
	other := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, "initiator-b")
	other.ClientID = in.ClientID
	if resp := other.PAR(t, c, s.URL, oidctest.NewRequest(consentID)); resp.StatusCode < 400 {
		t.Errorf("par signed with a foreign key: %d", resp.StatusCode)
	}

	// A scope that is not consent-bound to a Ponte consent id is not offered.
	bad := oidctest.NewRequest("not-a-ponte-consent")
	if resp := in.PAR(t, c, s.URL, bad); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("par with a foreign consent scope: %d", resp.StatusCode)
	}

	// Authorization requests must be pushed.
	resp, err = c.Get(s.URL + oidc.PathAuthorize + "?" + url.Values{
		"client_id": {in.ClientID}, "request": {in.RequestObject(t, oidctest.NewRequest(consentID))},
	}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Reaching the holder's journey would answer access_denied (the consent
	// does not exist); go-oidc must refuse the request before that.
	if strings.Contains(resp.Header.Get("Location"), "access_denied") || resp.StatusCode < 300 {
		t.Errorf("authorize without PAR reached the journey: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestAuthorizeRefusesUnknownAndExpiredRequestURI(t *testing.T) {
	t.Parallel()
	s, in := start(t, "")
	c := oidctest.NoRedirects()
	authorize := func(requestURI string) *http.Response {
		t.Helper()
		resp, err := c.Get(s.URL + oidc.PathAuthorize + "?" + url.Values{"client_id": {in.ClientID}, "request_uri": {requestURI}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := authorize("urn:ietf:params:oauth:request_uri:unknown"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown request_uri: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	push := func() string {
		t.Helper()
		var par struct {
			RequestURI string `json:"request_uri"`
		}
		decode(t, in.PAR(t, c, s.URL, oidctest.NewRequest(consentID)), &par)
		return par.RequestURI
	}
	first, second := push(), push()
	// go-oidc reads the wall clock; Ponte's storage measures the 60 s lifetime
	// on Ponte's (here fake) clock, so advancing it expires the request_uri.
	s.Clock.Advance(59 * time.Second)
	if resp := authorize(first); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("request_uri at 59 s: %d", resp.StatusCode)
	}
	s.Clock.Advance(2 * time.Second)
	if resp := authorize(second); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("request_uri at 61 s: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestTokenEndpointDispatch(t *testing.T) {
	t.Parallel()
	s, in := start(t, "")
	c := oidctest.NoRedirects()

	// client_credentials still reaches Ponte's partner token endpoint.
	if tok := s.Token(t, "payments"); tok == "" {
		t.Fatal("no partner access token")
	}
	resp, err := c.Post(s.URL+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=password"))
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error string `json:"error"`
	}
	decode(t, resp, &e)
	if resp.StatusCode != http.StatusUnauthorized || e.Error != "invalid_client" {
		t.Errorf("unknown grant type without credentials: %d %s (the partner handler answers)", resp.StatusCode, e.Error)
	}

	// authorization_code goes to the authorization server, which authenticates
	// the initiator (private_key_jwt) and refuses the unknown code.
	form := url.Values{
		"grant_type": {"authorization_code"}, "code": {"no-such-code"}, "redirect_uri": {in.RedirectURI},
		"code_verifier": {strings.Repeat("v", 43)}, "client_id": {in.ClientID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {in.ClientAssertion(t)},
	}
	resp, err = c.Post(s.URL+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	decode(t, resp, &e)
	if resp.StatusCode != http.StatusBadRequest || e.Error != "invalid_grant" {
		t.Errorf("unknown code: %d %s", resp.StatusCode, e.Error)
	}
	// The same request with a bad assertion fails client authentication there.
	form.Set("client_assertion", "not-a-jwt")
	resp, err = c.Post(s.URL+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	decode(t, resp, &e)
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest || e.Error != "invalid_client" {
		t.Errorf("bad client assertion: %d %s", resp.StatusCode, e.Error)
	}
}

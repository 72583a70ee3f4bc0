package app_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// Negative FAPI-BR cases (issue 16 §7) against the real authorization
// server over loopback HTTP, on SQLite and PostgreSQL: each refusal names
// the error the profile and go-oidc give, and leaves nothing behind — no
// pushed request, no interaction, no grant.

// fapiInitiator is an initiator whose registered key set also holds an EC
// P-256 key, so a request object signed with a registered key but another
// algorithm than PS256 is told apart from one signed with an unknown key.
type fapiInitiator struct {
	*oidctest.Initiator
	ec *ecdsa.PrivateKey
}

const fapiECKeyID = "ec-key"

// newFAPIInitiator registers the demo partner's client_id (the consents'
// creator) as the initiator with an RSA (PS256) and an EC key.
func newFAPIInitiator(t *testing.T, s *apptest.Server) *fapiInitiator {
	t.Helper()
	base := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &base.Key.PublicKey, KeyID: base.KeyID, Algorithm: string(jose.PS256), Use: "sig"},
		{Key: &ec.PublicKey, KeyID: fapiECKeyID, Use: "sig"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.AuthServer.Storage().RegisterInitiator(t.Context(), oidc.Initiator{
		ClientID: base.ClientID, Name: "Test initiator " + base.ClientID, JWKS: jwks, RedirectURIs: []string{base.RedirectURI},
	}); err != nil {
		t.Fatal(err)
	}
	return &fapiInitiator{Initiator: base, ec: ec}
}

// claims are a valid request object's claims for req, as oidctest signs
// them: the cases change one thing each.
func (f *fapiInitiator) claims(req oidctest.Request) map[string]any {
	now := time.Now() // go-oidc checks request objects on the wall clock
	sum := sha256.Sum256([]byte(req.Verifier))
	return map[string]any{
		"iss": f.ClientID, "aud": f.Issuer, "jti": uuid.NewString(),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"client_id": f.ClientID, "response_type": "code id_token", "redirect_uri": f.RedirectURI,
		"scope": "openid payments consent:" + req.ConsentID, "state": req.State, "nonce": req.Nonce,
		"code_challenge": base64.RawURLEncoding.EncodeToString(sum[:]), "code_challenge_method": "S256",
	}
}

// signWith signs claims as a compact JWS with alg, key and kid.
func signWith(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// unsigned is claims as an unsecured JWT (alg none, empty signature).
func unsigned(t *testing.T, kid string, claims map[string]any) string {
	t.Helper()
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": kid})
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
}

// ps256 signs claims as the initiator does: PS256 with its registered key.
func (f *fapiInitiator) ps256(t *testing.T, claims map[string]any) string {
	return signWith(t, jose.PS256, f.Key, f.KeyID, claims)
}

// par pushes requestObject to /oauth/par, authenticated with the
// initiator's private_key_jwt, and returns the status and JSON body.
func (f *fapiInitiator) par(t *testing.T, s *apptest.Server, requestObject string) (int, map[string]any) {
	t.Helper()
	return f.parAs(t, s, f.ClientAssertion(t), requestObject)
}

// parAs pushes requestObject with the given client assertion.
func (f *fapiInitiator) parAs(t *testing.T, s *apptest.Server, assertion, requestObject string) (int, map[string]any) {
	t.Helper()
	form := url.Values{
		"client_id":             {f.ClientID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
		"request":               {requestObject},
	}
	resp, err := oidctest.NoRedirects().Post(s.URL+oidc.PathPAR, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	return decodeOAuth(t, resp)
}

func decodeOAuth(t *testing.T, resp *http.Response) (int, map[string]any) {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%d, not JSON: %s", resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// countRows counts a table's rows (a constant of this file, never input).
func countRows(t *testing.T, s *apptest.Server, table string) int {
	t.Helper()
	var n int
	if err := s.App.DB.Read().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// stored is what an authorization request leaves behind: pushed requests
// and authorization sessions, interactions, grants.
type stored struct{ sessions, interactions, grants int }

func storedNow(t *testing.T, s *apptest.Server) stored {
	t.Helper()
	return stored{countRows(t, s, "oidc_authn_sessions"), countRows(t, s, "holder_interactions"), countRows(t, s, "oidc_grant_sessions")}
}

// wantOAuthError checks an OAuth error answer: status and error code.
func wantOAuthError(t *testing.T, what string, status int, body map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus || body["error"] != wantCode {
		t.Errorf("%s: %d %v, want %d %s", what, status, body, wantStatus, wantCode)
	}
}

// TestFAPIRequestObjectRefusals: /oauth/par refuses a request object signed
// with another algorithm than PS256 or not signed, without exp or nbf, with
// a lifetime over 60 minutes, not yet valid or expired, addressed to another
// audience, issued or naming another client, with a redirect_uri that is
// not exactly a registered one, or without PKCE — and stores nothing.
func TestFAPIRequestObjectRefusals(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			in := newFAPIInitiator(t, s)
			consentID := createConsent(t, s, s.Token(t, "payments"), consentBody)
			req := oidctest.NewRequest(consentID)
			now := time.Now()
			at := func(d time.Duration) int64 { return now.Add(d).Unix() }
			with := func(changes map[string]any) map[string]any {
				c := in.claims(req)
				for k, v := range changes {
					if v == nil {
						delete(c, k)
					} else {
						c[k] = v
					}
				}
				return c
			}
			cases := []struct {
				name    string
				request func() string
				code    string
			}{
				{"RS256 with the registered RSA key", func() string { return signWith(t, jose.RS256, in.Key, in.KeyID, in.claims(req)) }, "invalid_request_object"},
				{"ES256 with the registered EC key", func() string { return signWith(t, jose.ES256, in.ec, fapiECKeyID, in.claims(req)) }, "invalid_request_object"},
				{"HS256", func() string {
					return signWith(t, jose.HS256, []byte(strings.Repeat("k", 32)), in.KeyID, in.claims(req))
				}, "invalid_request_object"},
				{"alg none", func() string { return unsigned(t, in.KeyID, in.claims(req)) }, "invalid_request_object"},
				{"PS256 with an unregistered key", func() string { return signWith(t, jose.PS256, otherRSAKey(t), in.KeyID, in.claims(req)) }, "invalid_request_object"},
				{"no exp", func() string { return in.ps256(t, with(map[string]any{"exp": nil})) }, "invalid_request_object"},
				{"no nbf", func() string { return in.ps256(t, with(map[string]any{"nbf": nil})) }, "invalid_request_object"},
				{"lifetime 61 minutes", func() string {
					return in.ps256(t, with(map[string]any{"nbf": at(-30 * time.Minute), "exp": at(31 * time.Minute)}))
				}, "invalid_request_object"},
				{"lifetime 100 minutes", func() string {
					return in.ps256(t, with(map[string]any{"nbf": at(-50 * time.Minute), "exp": at(50 * time.Minute)}))
				}, "invalid_request_object"},
				{"exp more than an hour ahead", func() string {
					return in.ps256(t, with(map[string]any{"exp": at(61 * time.Minute)}))
				}, "invalid_request_object"},
				{"nbf in the future", func() string {
					return in.ps256(t, with(map[string]any{"nbf": at(10 * time.Minute), "exp": at(20 * time.Minute)}))
				}, "invalid_request_object"},
				{"exp in the past", func() string {
					return in.ps256(t, with(map[string]any{"nbf": at(-20 * time.Minute), "exp": at(-10 * time.Minute)}))
				}, "invalid_request_object"},
				{"nbf more than an hour ago", func() string {
					return in.ps256(t, with(map[string]any{"nbf": at(-61 * time.Minute), "exp": at(-2 * time.Minute)}))
				}, "invalid_request_object"},
				{"aud another server", func() string { return in.ps256(t, with(map[string]any{"aud": "https://other-bank.example"})) }, "invalid_request_object"},
				{"aud Ponte's token endpoint", func() string { return in.ps256(t, with(map[string]any{"aud": s.URL + oidc.PathToken})) }, "invalid_request_object"},
				{"no aud", func() string { return in.ps256(t, with(map[string]any{"aud": nil})) }, "invalid_request_object"},
				{"iss another client", func() string { return in.ps256(t, with(map[string]any{"iss": "initiator-b"})) }, "invalid_request_object"},
				{"no iss", func() string { return in.ps256(t, with(map[string]any{"iss": nil})) }, "invalid_request_object"},
				{"client_id another client", func() string { return in.ps256(t, with(map[string]any{"client_id": "initiator-b"})) }, "invalid_request_object"},
				{"redirect_uri with a trailing slash", func() string {
					return in.ps256(t, with(map[string]any{"redirect_uri": in.RedirectURI + "/"}))
				}, "invalid_request"},
				{"redirect_uri with a query", func() string {
					return in.ps256(t, with(map[string]any{"redirect_uri": in.RedirectURI + "?next=x"}))
				}, "invalid_request"},
				{"redirect_uri of another host", func() string {
					return in.ps256(t, with(map[string]any{"redirect_uri": "https://evil.example/callback"}))
				}, "invalid_request"},
				{"no code_challenge", func() string {
					return in.ps256(t, with(map[string]any{"code_challenge": nil, "code_challenge_method": nil}))
				}, "invalid_request"},
				{"code_challenge_method plain", func() string {
					return in.ps256(t, with(map[string]any{"code_challenge": req.Verifier, "code_challenge_method": "plain"}))
				}, "invalid_request"},
			}
			before := storedNow(t, s)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					status, body := in.par(t, s, tc.request())
					wantOAuthError(t, "par", status, body, http.StatusBadRequest, tc.code)
					if body["request_uri"] != nil {
						t.Errorf("a refused push got a request_uri: %v", body)
					}
					if got := storedNow(t, s); got != before {
						t.Errorf("stored %+v after the refusal, %+v before", got, before)
					}
				})
			}
			// The same initiator's valid request object is accepted, so each
			// refusal above is its one change's.
			status, body := in.par(t, s, in.ps256(t, in.claims(req)))
			if status != http.StatusCreated || body["request_uri"] == nil {
				t.Fatalf("valid request object: %d %v", status, body)
			}
			if got := storedNow(t, s); got.sessions != before.sessions+1 {
				t.Errorf("valid push stored %+v, before %+v", got, before)
			}
			// Exactly 60 minutes between nbf and exp is allowed.
			status, body = in.par(t, s, in.ps256(t, with(map[string]any{"nbf": at(-30 * time.Minute), "exp": at(30 * time.Minute)})))
			if status != http.StatusCreated {
				t.Errorf("lifetime of exactly 60 minutes: %d %v", status, body)
			}
		})
	}
}

// TestFAPIClientAssertionRefusals: the private_key_jwt assertion that
// authenticates a push must be the client's own — iss and sub its
// client_id, aud the issuer, PS256 with its key, unexpired — else
// invalid_client (401) and nothing is stored.
func TestFAPIClientAssertionRefusals(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			in := newFAPIInitiator(t, s)
			consentID := createConsent(t, s, s.Token(t, "payments"), consentBody)
			request := in.ps256(t, in.claims(oidctest.NewRequest(consentID)))
			assertion := func(changes map[string]any) map[string]any {
				now := time.Now()
				c := map[string]any{"iss": in.ClientID, "sub": in.ClientID, "aud": in.Issuer, "jti": uuid.NewString(),
					"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
				for k, v := range changes {
					if v == nil {
						delete(c, k)
					} else {
						c[k] = v
					}
				}
				return c
			}
			cases := []struct {
				name      string
				assertion string
			}{
				{"iss another client", in.ps256(t, assertion(map[string]any{"iss": "initiator-b"}))},
				{"sub another client", in.ps256(t, assertion(map[string]any{"sub": "initiator-b"}))},
				{"aud another server", in.ps256(t, assertion(map[string]any{"aud": "https://other-bank.example"}))},
				{"expired", in.ps256(t, assertion(map[string]any{"iat": time.Now().Add(-10 * time.Minute).Unix(), "exp": time.Now().Add(-5 * time.Minute).Unix()}))},
				{"RS256", signWith(t, jose.RS256, in.Key, in.KeyID, assertion(nil))},
				{"an unregistered key", signWith(t, jose.PS256, otherRSAKey(t), in.KeyID, assertion(nil))},
				{"alg none", unsigned(t, in.KeyID, assertion(nil))},
			}
			before := storedNow(t, s)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					status, body := in.parAs(t, s, tc.assertion, request)
					wantOAuthError(t, "par", status, body, http.StatusUnauthorized, "invalid_client")
					if got := storedNow(t, s); got != before {
						t.Errorf("stored %+v after the refusal, %+v before", got, before)
					}
				})
			}
			if status, body := in.parAs(t, s, in.ps256(t, assertion(nil)), request); status != http.StatusCreated {
				t.Errorf("the client's own assertion: %d %v", status, body)
			}
		})
	}
}

func otherRSAKey(t *testing.T) any {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestFAPIRequestURIOneUse: a pushed request's request_uri opens one
// authorization: a second /oauth/authorize with it is refused, whether the
// first is still with the user or finished, and so is an expired one; the
// refusals open no interaction.
func TestFAPIRequestURIOneUse(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)

			// While the user is at the holder.
			j, resp := startJourney(t, s, in, phoneUA, "")
			deepLink := location(t, resp)
			requestURI := deepLink.Query().Get("request_uri")
			if requestURI == "" {
				t.Fatalf("authorize sent the phone to %s", deepLink)
			}
			before := storedNow(t, s)
			status, body := decodeOAuth(t, j.get(t, authorizeURL(s, in, requestURI)))
			wantOAuthError(t, "request_uri again while the journey is open", status, body, http.StatusBadRequest, "invalid_request")
			if got := storedNow(t, s); got != before {
				t.Errorf("stored %+v after the refused reuse, %+v before", got, before)
			}
			// The first authorization carries on and completes.
			id, token := j.openWebView(t, deepLink, "47742663023")
			code := approveAndReturn(t, j, id, token)
			if code == "" {
				t.Fatal("no code")
			}

			// After it finished.
			before = storedNow(t, s)
			status, body = decodeOAuth(t, j.get(t, authorizeURL(s, in, requestURI)))
			wantOAuthError(t, "request_uri again after the journey", status, body, http.StatusBadRequest, "invalid_request")
			if got := storedNow(t, s); got != before {
				t.Errorf("stored %+v after the refused reuse, %+v before", got, before)
			}

			// Expired: 60 seconds after the push, on Ponte's clock.
			consentID := createConsent(t, s, s.Token(t, "payments"), consentBody)
			late := pushPAR(t, s, in, oidctest.NewRequest(consentID), paymentScope(consentID))
			s.Clock.Advance(oidc.RequestURILifetime * time.Second)
			before = storedNow(t, s)
			status, body = decodeOAuth(t, newJourney(s, in).get(t, authorizeURL(s, in, late)))
			wantOAuthError(t, "expired request_uri", status, body, http.StatusBadRequest, "invalid_request")
			if got := storedNow(t, s); got.interactions != before.interactions || got.grants != before.grants {
				t.Errorf("stored %+v after the expired request_uri, %+v before", got, before)
			}
			// A person's browser gets the page instead of JSON.
			page := newJourney(s, in)
			req, _ := http.NewRequest(http.MethodGet, authorizeURL(s, in, late), nil)
			req.Header.Set("Accept", "text/html")
			r, err := page.browser.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "Pedido de autorização inválido") {
				t.Errorf("expired request_uri in a browser: %d %s", r.StatusCode, b)
			}
		})
	}
}

// approveAndReturn logs the user in and approves in the WebView, follows
// the redirect back to the initiator and returns the code.
func approveAndReturn(t *testing.T, j *journey, interactionID, loginToken string) string {
	t.Helper()
	if r := j.step(t, interactionID, "login", loginBody(loginToken)); r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	r := j.step(t, interactionID, "consent", approveBody)
	if r.Status != 200 {
		t.Fatalf("approve: %d %s", r.Status, r.Body)
	}
	var approved consentflow.InteractionJSON
	r.JSON(t, &approved)
	cb := location(t, j.get(t, approved.RedirectURI))
	frag, _ := url.ParseQuery(cb.Fragment)
	if frag.Get("code") == "" || frag.Get("state") != j.req.State {
		t.Fatalf("callback = %v", frag)
	}
	return frag.Get("code")
}

// codeFor runs a payment journey to its authorization code.
func codeFor(t *testing.T, s *apptest.Server, in *oidctest.Initiator) (*journey, string) {
	t.Helper()
	j, resp := startJourney(t, s, in, phoneUA, "")
	id, token := j.openWebView(t, location(t, resp), "47742663023")
	return j, approveAndReturn(t, j, id, token)
}

// TestFAPICodeOneUse: an authorization code is redeemed once. The second
// redemption is invalid_grant, and — as RFC 6749 §4.1.2 recommends and
// go-oidc does — it revokes what the first one issued: the access token
// stops being active, the payment consent API refuses it, and the refresh
// token stops working.
func TestFAPICodeOneUse(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
			j, code := codeFor(t, s, in)
			status, tok := in.ExchangeCode(t, oidctest.NoRedirects(), s.URL, code, j.req)
			access, _ := tok["access_token"].(string)
			refresh, _ := tok["refresh_token"].(string)
			if status != 200 || access == "" || refresh == "" {
				t.Fatalf("first redemption: %d %v", status, tok)
			}
			if info, err := s.App.AuthServer.TokenInfo(t.Context(), access); err != nil || !info.IsActive {
				t.Fatalf("the access token before the replay: %+v, %v", info, err)
			}
			getConsent := func() int {
				return s.Do(t, "GET", payments.ConsentsPath+"/"+j.consentID, map[string]string{
					"Authorization": "Bearer " + access, "x-fapi-interaction-id": uuid.NewString()}, "").Status
			}
			if got := getConsent(); got != 200 {
				t.Fatalf("GET the consent with the first access token: %d", got)
			}
			grants := countRows(t, s, "oidc_grant_sessions")

			status, again := in.ExchangeCode(t, oidctest.NoRedirects(), s.URL, code, j.req)
			wantOAuthError(t, "second redemption", status, again, http.StatusBadRequest, "invalid_grant")
			if again["access_token"] != nil {
				t.Errorf("the second redemption issued a token: %v", again)
			}
			if info, err := s.App.AuthServer.TokenInfo(t.Context(), access); err == nil && info.IsActive {
				t.Errorf("the first access token is still active after the code was replayed: %+v", info)
			}
			if got := getConsent(); got != 401 {
				t.Errorf("GET the consent with the revoked access token: %d, want 401", got)
			}
			// Refused. RFC 6749 §5.2 would name it invalid_grant; go-oidc
			// v0.13.0 answers an unknown refresh token invalid_request (see
			// internal/oidc/refresh.go), and the revoked one is unknown now.
			status, refreshed := in.Refresh(t, oidctest.NoRedirects(), s.URL, refresh)
			wantOAuthError(t, "refresh after the replay", status, refreshed, http.StatusBadRequest, "invalid_request")
			if refreshed["access_token"] != nil {
				t.Errorf("the revoked refresh token got a token: %v", refreshed)
			}
			if got := countRows(t, s, "oidc_grant_sessions"); got != grants-1 {
				t.Errorf("grant sessions %d after the replay, want %d (the first redemption's revoked)", got, grants-1)
			}
		})
	}
}

// TestFAPITokenRequestRefusals: the code exchange refuses a wrong or
// missing PKCE verifier and a redirect_uri other than the request's, issues
// nothing, and the code is spent: the right request then fails too.
func TestFAPITokenRequestRefusals(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
			cases := []struct {
				name string
				form url.Values
				code string
			}{
				{"wrong verifier", url.Values{"code_verifier": {strings.Repeat("w", 64)}}, "invalid_grant"},
				{"no verifier", url.Values{"code_verifier": nil}, "invalid_grant"},
				{"redirect_uri with a trailing slash", url.Values{"redirect_uri": {in.RedirectURI + "/"}}, "invalid_grant"},
				{"another registered-looking redirect_uri", url.Values{"redirect_uri": {"https://initiator.example/other/callback"}}, "invalid_grant"},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					j, code := codeFor(t, s, in)
					form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {in.RedirectURI},
						"code_verifier": {j.req.Verifier}}
					for k, v := range tc.form {
						if v == nil {
							form.Del(k)
						} else {
							form[k] = v
						}
					}
					grants := countRows(t, s, "oidc_grant_sessions")
					status, body := tokenRequest(t, s, in, form)
					wantOAuthError(t, "token", status, body, http.StatusBadRequest, tc.code)
					if body["access_token"] != nil || countRows(t, s, "oidc_grant_sessions") != grants {
						t.Errorf("a refused exchange issued something: %v", body)
					}
					status, body = in.ExchangeCode(t, oidctest.NoRedirects(), s.URL, code, j.req)
					wantOAuthError(t, "the right exchange after a refused one", status, body, http.StatusBadRequest, "invalid_grant")
				})
			}
		})
	}
}

// tokenRequest posts form to /oauth/token with the initiator's
// private_key_jwt authentication.
func tokenRequest(t *testing.T, s *apptest.Server, in *oidctest.Initiator, form url.Values) (int, map[string]any) {
	t.Helper()
	form.Set("client_id", in.ClientID)
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", in.ClientAssertion(t))
	resp, err := oidctest.NoRedirects().Post(s.URL+oidc.PathToken, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	return decodeOAuth(t, resp)
}

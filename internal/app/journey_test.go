package app_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

const (
	phoneUA   = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	desktopUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
)

// journey is one authorization journey under test: a consent, its pushed
// request, and a browser (cookie jar, no automatic redirects).
type journey struct {
	s         *apptest.Server
	in        *oidctest.Initiator
	req       oidctest.Request
	consentID string
	browser   *http.Client
	ua        string
}

func newJourney(s *apptest.Server, in *oidctest.Initiator) *journey {
	jar, _ := cookiejar.New(nil)
	return &journey{s: s, in: in, ua: phoneUA, browser: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func newBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// createConsent creates the consent with the given partner token (plain JSON).
func createConsent(t *testing.T, s *apptest.Server, token, body string) string {
	t.Helper()
	r := s.Do(t, "POST", payments.ConsentsPath, map[string]string{
		"Authorization": "Bearer " + token, "x-fapi-interaction-id": uuid.NewString(), "x-idempotency-key": uuid.NewString()}, body)
	if r.Status != 201 {
		t.Fatalf("consent: %d %s", r.Status, r.Body)
	}
	var c struct {
		Data struct {
			ConsentID string `json:"consentId"`
		} `json:"data"`
	}
	r.JSON(t, &c)
	return c.Data.ConsentID
}

// startJourney creates a consent with the demo partner, pushes the request
// and calls /oauth/authorize from a browser with user agent ua.
func startJourney(t *testing.T, s *apptest.Server, in *oidctest.Initiator, ua, responseMode string) (*journey, *http.Response) {
	t.Helper()
	j := &journey{s: s, in: in, browser: newBrowser(t), ua: ua}
	j.consentID = createConsent(t, s, s.Token(t, "payments"), consentBody)
	j.req = oidctest.NewRequest(j.consentID)
	j.req.ResponseMode = responseMode
	return j, j.get(t, authorizeURL(s, in, pushPAR(t, s, in, j.req, paymentScope(j.consentID))))
}

func (j *journey) get(t *testing.T, u string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("User-Agent", j.ua)
	resp, err := j.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (j *journey) postForm(t *testing.T, u string, form url.Values) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("User-Agent", j.ua)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := j.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// sessionCookie is the WebView session cookie the browser holds.
func (j *journey) sessionCookie(t *testing.T) string {
	t.Helper()
	u, _ := url.Parse(j.s.URL)
	for _, c := range j.browser.Jar.Cookies(u) {
		if c.Name == consentflow.SessionCookie {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatal("no WebView session cookie")
	return ""
}

// step calls the interaction API as the WebView does (contract-checked).
func (j *journey) step(t *testing.T, interactionID, step, body string) *apptest.Response {
	t.Helper()
	return j.s.Do(t, "POST", "/api/"+url.PathEscape("Ponte sandbox demo")+"/consents/v1/interactions/"+interactionID+"/"+step,
		map[string]string{"Cookie": j.sessionCookie(t), "Origin": j.s.URL, "Sec-Fetch-Site": "same-origin"}, body)
}

func location(t *testing.T, resp *http.Response) *url.URL {
	t.Helper()
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want a redirect", resp.StatusCode)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// openWebView follows the deep link into the sandbox partner app (whose
// page must load), logs the demo user in there and opens the WebView, which
// must show the payment; it returns the interaction id and the login token
// the partner app handed over in the fragment.
func (j *journey) openWebView(t *testing.T, deepLink *url.URL, document string) (string, string) {
	t.Helper()
	if deepLink.Path != "/sandbox/partner-app" {
		t.Fatalf("authorize sent the phone to %s, want the demo partner's deep link", deepLink)
	}
	page := j.get(t, deepLink.String())
	page.Body.Close() // an unclosed body holds its connection's goroutines until the client's timeout
	if page.StatusCode != 200 {
		t.Fatalf("partner app page: %d", page.StatusCode)
	}
	wv := j.enterWebView(t, deepLink, document)
	expectInPage(t, wv.body, "R$ 100,00", "Marco Antonio de Brito", "Test initiator "+j.in.ClientID, "Pagamento único em 15/10/2024", "Pix por chave Pix")
	return wv.interactionID, wv.loginToken
}

const device = `{"platform":"APP","os":"IOS","osVersion":"17.5"}`

func loginBody(token string) string {
	return `{"accessToken":"` + token + `","device":` + device + `}`
}

const approveBody = `{"partialApproval":false,"debtorAccount":{"ispb":"37241230","issuer":"0001","number":"1234567","accountType":"CACC"},"device":` + device + `}`

// TestJourneyApproveAndCancel runs the redirect journey over HTTP on both
// databases: authorize → deep link → partner app → ticket → WebView → login
// → approve → code + id_token at the initiator, and a cancel.
func TestJourneyApproveAndCancel(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)

			j, resp := startJourney(t, s, in, phoneUA, "")
			id, token := j.openWebView(t, location(t, resp), "47742663023")

			// Consent before login: out of order, nothing changes.
			if r := j.step(t, id, "consent", approveBody); r.Status != 409 || !strings.Contains(string(r.Body), "LOGIN_REQUIRED") {
				t.Fatalf("consent before login: %d %s", r.Status, r.Body)
			}
			r := j.step(t, id, "login", loginBody(token))
			if r.Status != 200 {
				t.Fatalf("login: %d %s", r.Status, r.Body)
			}
			var logged consentflow.InteractionJSON
			r.JSON(t, &logged)
			if logged.Status != consentflow.InteractionAuthenticated || len(logged.Accounts) == 0 || logged.Accounts[0].Number != "1234567" {
				t.Fatalf("login = %+v", logged)
			}
			// Someone else's account (João's): 422, the consent stays awaiting.
			foreign := strings.Replace(approveBody, "1234567", "7654321", 1)
			if r := j.step(t, id, "consent", foreign); r.Status != 422 || !strings.Contains(string(r.Body), "DEBTOR_ACCOUNT_NOT_FOUND") {
				t.Fatalf("foreign account: %d %s", r.Status, r.Body)
			}
			if c, _ := s.App.Payments.Get(t.Context(), s.App.Demo.ID, j.consentID); c.Status != payments.StatusAwaitingAuthorisation {
				t.Fatalf("consent after a refused approval: %s", c.Status)
			}
			r = j.step(t, id, "consent", approveBody)
			if r.Status != 200 {
				t.Fatalf("approve: %d %s", r.Status, r.Body)
			}
			var approved consentflow.InteractionJSON
			r.JSON(t, &approved)
			if approved.Status != consentflow.InteractionApproved || approved.RedirectURI == "" {
				t.Fatalf("approve = %+v", approved)
			}
			// A finished interaction refuses replays.
			if r := j.step(t, id, "cancel", `{"device":`+device+`}`); r.Status != 409 || !strings.Contains(string(r.Body), "INTERACTION_FINISHED") {
				t.Fatalf("cancel after approval: %d %s", r.Status, r.Body)
			}
			c, err := s.App.Payments.Get(t.Context(), s.App.Demo.ID, j.consentID)
			if err != nil || c.Status != payments.StatusAuthorised || c.DebtorAccount == nil || c.DebtorAccount.Number != "1234567" {
				t.Fatalf("consent after approval: %+v %v", c, err)
			}
			steps, err := s.App.Interactions.Steps(t.Context(), id)
			if err != nil || len(steps) != 2 || steps[0].Step != consentflow.StepLogin || steps[1].Step != consentflow.StepConsent ||
				steps[1].Device != (consentflow.Device{Platform: "APP", OS: "IOS", OSVersion: "17.5"}) {
				t.Fatalf("steps = %+v, %v", steps, err)
			}

			// Back to the initiator with code, id_token and state.
			cb := location(t, j.get(t, approved.RedirectURI))
			if got := cb.Scheme + "://" + cb.Host + cb.Path; got != in.RedirectURI {
				t.Fatalf("redirected to %s, want %s", got, in.RedirectURI)
			}
			frag, _ := url.ParseQuery(cb.Fragment)
			code, idToken := frag.Get("code"), frag.Get("id_token")
			if code == "" || idToken == "" || frag.Get("state") != j.req.State {
				t.Fatalf("callback fragment = %v", frag)
			}
			claims := verifyIDToken(t, s, idToken)
			if claims["nonce"] != j.req.Nonce || claims["aud"] != in.ClientID || claims["iss"] != s.URL {
				t.Errorf("id_token claims = %v", claims)
			}
			if claims["c_hash"] != halfHash(code) || claims["s_hash"] != halfHash(j.req.State) {
				t.Errorf("c_hash/s_hash = %v/%v, want %s/%s", claims["c_hash"], claims["s_hash"], halfHash(code), halfHash(j.req.State))
			}
			if sub, _ := claims["sub"].(string); sub == "" || strings.Contains(sub, "47742663023") {
				t.Errorf("id_token sub = %q: must be the customer's id, never the CPF", sub)
			}
			status, tok := in.ExchangeCode(t, oidctest.NoRedirects(), s.URL, code, j.req)
			if status != 200 || tok["access_token"] == nil || !strings.Contains(tok["scope"].(string), "consent:"+j.consentID) {
				t.Fatalf("code exchange: %d %v", status, tok)
			}
			if status, _ := in.ExchangeCode(t, oidctest.NoRedirects(), s.URL, code, j.req); status == 200 {
				t.Error("an authorization code was redeemed twice")
			}

			// A second journey, cancelled: access_denied with the state.
			j2, resp := startJourney(t, s, in, phoneUA, "")
			id2, token2 := j2.openWebView(t, location(t, resp), "47742663023")
			if r := j2.step(t, id2, "login", loginBody(token2)); r.Status != 200 {
				t.Fatalf("login 2: %d %s", r.Status, r.Body)
			}
			r = j2.step(t, id2, "cancel", `{"device":`+device+`}`)
			if r.Status != 200 {
				t.Fatalf("cancel: %d %s", r.Status, r.Body)
			}
			var cancelled consentflow.InteractionJSON
			r.JSON(t, &cancelled)
			cb = location(t, j2.get(t, cancelled.RedirectURI))
			frag, _ = url.ParseQuery(cb.Fragment)
			if frag.Get("error") != "access_denied" || frag.Get("state") != j2.req.State || frag.Get("code") != "" {
				t.Fatalf("cancel callback = %v", frag)
			}
			c, _ = s.App.Payments.Get(t.Context(), s.App.Demo.ID, j2.consentID)
			if c.Status != payments.StatusRejected || c.Rejection == nil || c.Rejection.Code != payments.RejectRejeitadoUsuario {
				t.Fatalf("cancelled consent = %+v", c)
			}
		})
	}
}

// TestJourneyJARM: a client asking for response_mode=jwt gets the
// authorization response as a JWT signed by Ponte.
func TestJourneyJARM(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
	j, resp := startJourney(t, s, in, phoneUA, "fragment.jwt")
	id, token := j.openWebView(t, location(t, resp), "47742663023")
	if r := j.step(t, id, "login", loginBody(token)); r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	r := j.step(t, id, "consent", approveBody)
	var approved consentflow.InteractionJSON
	r.JSON(t, &approved)
	cb := location(t, j.get(t, approved.RedirectURI))
	frag, _ := url.ParseQuery(cb.Fragment)
	response := frag.Get("response")
	if response == "" || frag.Get("code") != "" {
		t.Fatalf("JARM callback = %v", frag)
	}
	claims := verifyIDToken(t, s, response) // signed with the same key
	if claims["code"] == nil || claims["state"] != j.req.State || claims["aud"] != in.ClientID {
		t.Fatalf("JARM claims = %v", claims)
	}
}

// TestJourneyRefusals: tenant isolation, the user's identity, devices, and
// a partner's backend driving the interaction with its bearer token.
func TestJourneyRefusals(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
	j, resp := startJourney(t, s, in, phoneUA, "")
	id, token := j.openWebView(t, location(t, resp), "47742663023")
	api := "/api/" + url.PathEscape("Ponte sandbox demo") + "/consents/v1/interactions/" + id + "/"

	// Another initiator cannot take the user through someone else's consent.
	thief := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, "initiator-b")
	stolen := oidctest.NewRequest(j.consentID)
	cb := location(t, newJourney(s, thief).get(t, authorizeURL(s, thief, pushPAR(t, s, thief, stolen, paymentScope(j.consentID)))))
	if frag, _ := url.ParseQuery(cb.Fragment); !strings.HasPrefix(cb.String(), thief.RedirectURI) || frag.Get("error") != "access_denied" {
		t.Fatalf("authorize for another client's consent: %s", cb)
	}

	// Another partner's backend cannot see the interaction.
	other, secret, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Other partner", CompanyKey: "OTHER",
		Scopes: []string{consentflow.ScopeInteractionsWrite}})
	if err != nil {
		t.Fatal(err)
	}
	otherTok := s.TokenFor(t, other.ClientID, secret, "")
	if r := s.Do(t, "POST", api+"login", map[string]string{"Authorization": "Bearer " + otherTok}, loginBody(token)); r.Status != 404 {
		t.Errorf("foreign partner: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "POST", "/api/Other%20partner/consents/v1/interactions/"+id+"/login", map[string]string{"Authorization": "Bearer " + otherTok}, loginBody(token)); r.Status != 404 {
		t.Errorf("foreign partner under its own name: %d %s", r.Status, r.Body)
	}
	// No credentials at all; a cross-site request with the cookie.
	if r := s.Do(t, "POST", api+"login", nil, loginBody(token)); r.Status != 401 {
		t.Errorf("anonymous: %d", r.Status)
	}
	if r := s.Do(t, "POST", api+"login", map[string]string{"Cookie": j.sessionCookie(t), "Origin": "https://evil.example"}, loginBody(token)); r.Status != 403 {
		t.Errorf("cross-origin: %d", r.Status)
	}
	// Wrong client_name for the session.
	if r := s.Do(t, "POST", "/api/Other%20partner/consents/v1/interactions/"+id+"/login", map[string]string{"Cookie": j.sessionCookie(t)}, loginBody(token)); r.Status != 404 {
		t.Errorf("wrong client_name: %d", r.Status)
	}
	// Invalid device and token shapes: 400 naming every field.
	r := j.step(t, id, "login", `{"accessToken":"x","device":{"platform":"TV","os":"BEOS","osVersion":""}}`)
	for _, f := range []string{"accessToken", "device.platform", "device.os", "device.osVersion"} {
		if r.Status != 400 || !strings.Contains(string(r.Body), `"detail":"`+f+` `) {
			t.Errorf("bad body: %d %s lacks %s", r.Status, r.Body, f)
		}
	}
	// A login token for another user (João), and one signed by a stranger.
	other2, _ := s.App.SandboxApp.LoginToken("12345678909")
	if r := j.step(t, id, "login", loginBody(other2)); r.Status != 403 {
		t.Errorf("another user's token: %d %s", r.Status, r.Body)
	}
	if r := j.step(t, id, "login", loginBody(foreignToken(t, s.App.Demo.ClientID, s.URL, "47742663023"))); r.Status != 401 {
		t.Errorf("token signed by an unknown key: %d %s", r.Status, r.Body)
	}
	// The partner's backend logs the user in with its bearer token.
	demoTok := s.Token(t, consentflow.ScopeInteractionsWrite)
	if r := s.Do(t, "POST", api+"login", map[string]string{"Authorization": "Bearer " + demoTok}, loginBody(token)); r.Status != 200 {
		t.Fatalf("partner backend login: %d %s", r.Status, r.Body)
	}
	// A blocked account is refused; the expiry of the consent ends the interaction.
	s.Clock.Advance(payments.AuthorisationWindow)
	if r := j.step(t, id, "consent", approveBody); r.Status != 410 {
		t.Errorf("approve after the consent expired: %d %s", r.Status, r.Body)
	}
}

// TestJourneyWithoutDeepLinkOpensWebViewInBrowser: a partner without an app
// gets the WebView directly in the user's browser; the page reports BROWSER.
func TestJourneyWithoutDeepLinkOpensWebViewInBrowser(t *testing.T) {
	s := apptest.Start(t, apptest.Options{Mode: config.Production})
	partner, secret, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Banco Web", CompanyKey: "WEB",
		Scopes: []string{"payments"}, AcceptPlainJSON: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.Customers.CreateCustomer(t.Context(), partner.ID, "47742663023", "Maria da Silva"); err != nil {
		t.Fatal(err)
	}
	in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, partner.ClientID)
	// Outside the sandbox the consent API takes the authorization server's
	// token (private_key_jwt), not the client-secret one.
	if r := s.Do(t, "POST", payments.ConsentsPath, map[string]string{"Authorization": "Bearer " + s.TokenFor(t, partner.ClientID, secret, "payments"),
		"x-fapi-interaction-id": uuid.NewString(), "x-idempotency-key": uuid.NewString()}, consentBody); r.Status != 401 {
		t.Fatalf("consent with a client-secret token: %d %s", r.Status, r.Body)
	}
	status, tok := in.ClientCredentials(t, oidctest.NoRedirects(), s.URL, "payments")
	if status != 200 {
		t.Fatalf("client_credentials: %d %v", status, tok)
	}
	consentID := createConsent(t, s, tok["access_token"].(string), consentBody)
	requestURI := pushPAR(t, s, in, oidctest.NewRequest(consentID), paymentScope(consentID))
	j := &journey{s: s, in: in, browser: newBrowser(t), ua: desktopUA}
	wv := location(t, j.get(t, authorizeURL(s, in, requestURI)))
	if wv.Path != "/openfinance/consent-flow/webview" || wv.Query().Get("ticket") == "" {
		t.Fatalf("authorize sent the browser to %s, want the WebView", wv)
	}
	page := j.get(t, wv.String())
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || !strings.Contains(string(body), `data-platform="BROWSER"`) || !strings.Contains(string(body), "Banco Web") {
		t.Fatalf("webview: %d %s", page.StatusCode, body)
	}
	if strings.Contains(string(body), "sandbox-login") {
		t.Error("a production partner's WebView offers the sandbox login form")
	}
}

// TestJourneyDesktopHandOff: a desktop browser meeting an app-only partner
// gets the QR hand-off page, which follows the phone's progress.
func TestJourneyDesktopHandOff(t *testing.T) {
	s := apptest.Start(t, apptest.Options{})
	in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
	desk, resp := startJourney(t, s, in, desktopUA, "")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `src="data:image/png;base64,`) || !strings.Contains(string(body), "/sandbox/partner-app?") {
		t.Fatalf("hand-off page: %d %s", resp.StatusCode, body)
	}
	page := string(body)
	const marker = `data-callback="`
	rest := page[strings.Index(page, marker)+len(marker):]
	callback := rest[:strings.IndexByte(rest, '"')]
	status := func() map[string]string {
		r := s.Do(t, "GET", "/openfinance/consent-flow/handoff/"+callback, nil, "")
		var out map[string]string
		r.JSON(t, &out)
		return out
	}
	if st := status(); st["status"] != "PENDING" || st["redirectUri"] != "" {
		t.Fatalf("status before the phone = %v", st)
	}
	// The phone scans the deep link.
	rest = page[strings.Index(page, `id="deep-link" href="`)+len(`id="deep-link" href="`):]
	link, _ := url.Parse(strings.ReplaceAll(rest[:strings.IndexByte(rest, '"')], "&amp;", "&"))
	phone := &journey{s: s, in: in, browser: newBrowser(t), ua: phoneUA, consentID: desk.consentID}
	id, token := phone.openWebView(t, link, "47742663023")
	if r := phone.step(t, id, "login", loginBody(token)); r.Status != 200 {
		t.Fatalf("login: %d", r.Status)
	}
	r := phone.step(t, id, "consent", approveBody)
	var approved consentflow.InteractionJSON
	r.JSON(t, &approved)
	if !approved.Handoff {
		t.Error("the phone was not told the journey continues on the desktop")
	}
	st := status()
	if st["status"] != "APPROVED" || st["redirectUri"] == "" {
		t.Fatalf("status after the phone = %v", st)
	}
	cb := location(t, desk.get(t, st["redirectUri"]))
	frag, _ := url.ParseQuery(cb.Fragment)
	if frag.Get("code") == "" || frag.Get("state") != desk.req.State {
		t.Fatalf("desktop callback = %v", frag)
	}
}

// verifyIDToken checks a JWT against the authorization server's JWKS and
// returns its claims.
func verifyIDToken(t *testing.T, s *apptest.Server, raw string) map[string]any {
	t.Helper()
	resp, err := http.Get(s.URL + oidc.PathJWKS)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.PS256})
	if err != nil {
		t.Fatalf("parse %s: %v", raw, err)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS", tok.Headers[0].KeyID)
	}
	var claims map[string]any
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("signature: %v", err)
	}
	return claims
}

// halfHash is the OIDC hash of a value for PS256: the left half of its SHA-256, base64url.
func halfHash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// foreignToken is a well-formed login token signed by a key nobody registered.
func foreignToken(t *testing.T, iss, aud, sub string) string {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	now := time.Now()
	raw, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: iss, Subject: sub, Audience: jwt.Audience{aud},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestJourneyProductionPartnerApp: outside the sandbox, a partner with its
// own app and keys. The deep link carries request_uri and client_id; the
// partner's backend asks for the ticket (checked against the live pushed
// request) and logs its user in with a token it signs; only the user's
// active account the initiator fixed can be approved.
func TestJourneyProductionPartnerApp(t *testing.T) {
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), Mode: config.Production})
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "banco-1", Algorithm: "PS256", Use: "sig"}}})
			partner, secret, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Banco App", CompanyKey: "BANCO",
				Scopes:          []string{"payments", "openfinance.ticket.write", consentflow.ScopeInteractionsWrite},
				DeepLinkURL:     "https://app.banco.example/openfinance?from=ponte",
				AcceptPlainJSON: true, JWKS: jwks})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.App.Customers.CreateCustomer(t.Context(), partner.ID, "47742663023", "Maria da Silva"); err != nil {
				t.Fatal(err)
			}
			for number, status := range map[string]string{"1111111": "ACTIVE", "2222222": "BLOCKED", "3333333": "ACTIVE"} {
				if _, err := s.App.Customers.AddAccount(t.Context(), partner.ID, "47742663023", customers.Account{
					ISPB: "37241230", Issuer: "0001", Number: number, AccountType: "CACC", Status: status}); err != nil {
					t.Fatal(err)
				}
			}
			tok := s.TokenFor(t, partner.ClientID, secret, "")
			in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, partner.ClientID)
			fixed := strings.Replace(consentBody, `"payment":`, `"debtorAccount":{"ispb":"37241230","issuer":"0001","number":"3333333","accountType":"CACC"},"payment":`, 1)
			// Outside the sandbox the Open Finance routes take only the
			// authorization server's tokens (private_key_jwt), not the
			// partner's client-secret token.
			status, ccTok := in.ClientCredentials(t, oidctest.NoRedirects(), s.URL, "payments")
			if status != 200 {
				t.Fatalf("client_credentials: %d %v", status, ccTok)
			}
			if r := s.Do(t, "POST", "/open-banking/payments/v4/consents", map[string]string{"Authorization": "Bearer " + tok,
				"x-fapi-interaction-id": "d78fc4e5-37ca-4da3-adf2-9c1f4ed5e0c1", "x-idempotency-key": "partner-secret"}, fixed); r.Status != 401 {
				t.Fatalf("consent with the partner's client-secret token: %d %s", r.Status, r.Body)
			}
			consentID := createConsent(t, s, ccTok["access_token"].(string), fixed)
			req := oidctest.NewRequest(consentID)
			requestURI := pushPAR(t, s, in, req, paymentScope(consentID))
			j := &journey{s: s, in: in, browser: newBrowser(t), ua: phoneUA, consentID: consentID, req: req}
			link := location(t, j.get(t, authorizeURL(s, in, requestURI)))
			if link.Host != "app.banco.example" || link.Query().Get("from") != "ponte" ||
				link.Query().Get("request_uri") != requestURI || link.Query().Get("client_id") != in.ClientID {
				t.Fatalf("deep link = %s", link)
			}
			// The partner's backend: a ticket for the id part of the request_uri.
			idPart := strings.TrimPrefix(requestURI, "urn:ietf:params:oauth:request_uri:")
			r := s.Do(t, "POST", "/openfinance/consent-flow/ticket", map[string]string{"Authorization": "Bearer " + tok},
				`{"requestUri":"`+idPart+`","clientId":"`+in.ClientID+`","documentNumber":"47742663023"}`)
			if r.Status != 201 {
				t.Fatalf("ticket: %d %s", r.Status, r.Body)
			}
			var tk consentflow.TicketJSON
			r.JSON(t, &tk)
			page := j.get(t, s.URL+"/openfinance/consent-flow/webview?ticket="+tk.TicketID)
			body, _ := io.ReadAll(page.Body)
			page.Body.Close()
			if page.StatusCode != 200 || !strings.Contains(string(body), `data-platform="APP"`) || strings.Contains(string(body), "sandbox-login") {
				t.Fatalf("webview: %d %s", page.StatusCode, body)
			}
			const marker = `data-interaction="`
			rest := string(body)[strings.Index(string(body), marker)+len(marker):]
			id := rest[:strings.IndexByte(rest, '"')]
			api := "/api/" + url.PathEscape("Banco App") + "/consents/v1/interactions/" + id + "/"
			bearer := map[string]string{"Authorization": "Bearer " + tok}

			sign := func(claims jwt.Claims) string {
				signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "banco-1"))
				raw, err := jwt.Signed(signer).Claims(claims).Serialize()
				if err != nil {
					t.Fatal(err)
				}
				return raw
			}
			now := s.Clock.Now()
			good := jwt.Claims{Issuer: partner.ClientID, Subject: "47742663023", Audience: jwt.Audience{s.URL},
				IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute))}
			for name, c := range map[string]jwt.Claims{
				"wrong aud":  {Issuer: good.Issuer, Subject: good.Subject, Audience: jwt.Audience{"https://other.example"}, IssuedAt: good.IssuedAt, Expiry: good.Expiry},
				"wrong iss":  {Issuer: "someone-else", Subject: good.Subject, Audience: good.Audience, IssuedAt: good.IssuedAt, Expiry: good.Expiry},
				"expired":    {Issuer: good.Issuer, Subject: good.Subject, Audience: good.Audience, IssuedAt: jwt.NewNumericDate(now.Add(-3 * time.Minute)), Expiry: jwt.NewNumericDate(now.Add(-2 * time.Minute))},
				"long-lived": {Issuer: good.Issuer, Subject: good.Subject, Audience: good.Audience, IssuedAt: good.IssuedAt, Expiry: jwt.NewNumericDate(now.Add(time.Hour))},
			} {
				if r := s.Do(t, "POST", api+"login", bearer, loginBody(sign(c))); r.Status != 401 {
					t.Errorf("login token %s: %d %s", name, r.Status, r.Body)
				}
			}
			if r := s.Do(t, "POST", api+"login", bearer, loginBody(sign(good))); r.Status != 200 {
				t.Fatalf("login: %d %s", r.Status, r.Body)
			}
			pick := func(number string) *apptest.Response {
				return s.Do(t, "POST", api+"consent", bearer, strings.Replace(approveBody, "1234567", number, 1))
			}
			if r := pick("2222222"); r.Status != 422 || !strings.Contains(string(r.Body), "DEBTOR_ACCOUNT_BLOCKED") {
				t.Errorf("blocked account: %d %s", r.Status, r.Body)
			}
			if r := pick("1111111"); r.Status != 422 || !strings.Contains(string(r.Body), "DEBTOR_ACCOUNT_NOT_ALLOWED") {
				t.Errorf("an account other than the one the initiator fixed: %d %s", r.Status, r.Body)
			}
			if r := s.Do(t, "POST", api+"consent", bearer, strings.Replace(approveBody, "false", "true", 1)); r.Status != 422 {
				t.Errorf("partial approval: %d %s", r.Status, r.Body)
			}
			if c, _ := s.App.Payments.Get(t.Context(), partner.ID, consentID); c.Status != payments.StatusAwaitingAuthorisation {
				t.Fatalf("refused approvals changed the consent: %s", c.Status)
			}
			if r := pick("3333333"); r.Status != 200 {
				t.Fatalf("approve: %d %s", r.Status, r.Body)
			}
			if c, _ := s.App.Payments.Get(t.Context(), partner.ID, consentID); c.Status != payments.StatusAuthorised || c.DebtorAccount.Number != "3333333" {
				t.Fatalf("consent = %+v", c)
			}
		})
	}
}

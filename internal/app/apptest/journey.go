package apptest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/consentflow"
)

// PhoneUA is an iPhone's User-Agent: the holder sends phones to the
// partner's app (deep link) rather than to the desktop QR hand-off.
const PhoneUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"

// SandboxUser plays an end user of the sandbox demo partner on a phone,
// over plain HTTP: from the holder's /oauth/authorize through the sandbox
// partner app and the WebView to a decision, as the Chromium test does with
// a real browser.
type SandboxUser struct {
	Document string // the demo customer's CPF
	Password string // "" → the sandbox password
	// Account is the debtor account number to approve with (the demo
	// customer's own, e.g. 1234567).
	Account string
	Browser *http.Client
}

// NewSandboxUser returns a user with a fresh cookie jar that never follows
// redirects on its own.
func NewSandboxUser(document, account string) *SandboxUser {
	jar, _ := cookiejar.New(nil)
	return &SandboxUser{Document: document, Account: account, Browser: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (u *SandboxUser) do(t testing.TB, method, target, contentType, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", PhoneUA)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := u.Browser.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func redirect(t testing.TB, resp *http.Response, body []byte) *url.URL {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Fatalf("%s %s: status %d, want a redirect: %.300s", resp.Request.Method, resp.Request.URL, resp.StatusCode, body)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// Decide goes from the holder's authorize URL to the decision: approve with
// the user's account, or cancel. It returns the URL the holder finally sends
// the browser to (the initiator's redirect_uri with code, id_token and state
// in the fragment, or error=access_denied), without following it.
func (u *SandboxUser) Decide(t testing.TB, s *Server, authorizeURL string, approve bool) *url.URL {
	t.Helper()
	resp, body := u.do(t, http.MethodGet, authorizeURL, "", "", nil)
	deepLink := redirect(t, resp, body)
	if deepLink.Path != "/sandbox/partner-app" {
		t.Fatalf("authorize sent the phone to %s, want the sandbox partner app", deepLink)
	}
	password := u.Password
	if password == "" {
		password = "sandbox"
	}
	form := url.Values{"request_uri": {deepLink.Query().Get("request_uri")}, "client_id": {deepLink.Query().Get("client_id")},
		"document": {u.Document}, "password": {password}}
	resp, body = u.do(t, http.MethodPost, s.URL+"/sandbox/partner-app", "application/x-www-form-urlencoded", form.Encode(), nil)
	webview := redirect(t, resp, body)
	login, _ := url.ParseQuery(webview.Fragment)
	webview.Fragment = ""
	resp, body = u.do(t, http.MethodGet, webview.String(), "", "", nil)
	const marker = `data-interaction="`
	i := strings.Index(string(body), marker)
	if resp.StatusCode != http.StatusOK || i < 0 {
		t.Fatalf("webview: %d %.500s", resp.StatusCode, body)
	}
	rest := string(body)[i+len(marker):]
	id := rest[:strings.IndexByte(rest, '"')]
	rest = string(body)[strings.Index(string(body), `data-client="`)+len(`data-client="`):]
	client := rest[:strings.IndexByte(rest, '"')]
	api := s.URL + "/api/" + url.PathEscape(client) + "/consents/v1/interactions/" + id + "/"
	hdr := map[string]string{"Origin": s.URL}
	const device = `{"platform":"APP","os":"IOS","osVersion":"17.5"}`
	resp, body = u.do(t, http.MethodPost, api+"login", "application/json", `{"accessToken":"`+login.Get("accessToken")+`","device":`+device+`}`, hdr)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	step, stepBody := "cancel", `{"device":`+device+`}`
	if approve {
		step = "consent"
		stepBody = `{"partialApproval":false,"debtorAccount":{"ispb":"37241230","issuer":"0001","number":"` + u.Account +
			`","accountType":"CACC"},"device":` + device + `}`
	}
	resp, body = u.do(t, http.MethodPost, api+step, "application/json", stepBody, hdr)
	var out consentflow.InteractionJSON
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil || out.RedirectURI == "" {
		t.Fatalf("%s: %d %s", step, resp.StatusCode, body)
	}
	resp, body = u.do(t, http.MethodGet, out.RedirectURI, "", "", nil)
	return redirect(t, resp, body)
}

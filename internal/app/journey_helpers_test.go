package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
)

// Shared steps of the payment, sweeping and data-sharing journeys: the
// initiator's pushed request, and the phone's way from /oauth/authorize
// through the sandbox partner app into the WebView (over HTTP and in
// Chromium). What each journey's pages must show stays with its caller.

// pushPAR pushes req, asking for scope, to /oauth/par as in (private_key_jwt)
// and returns the request_uri: the one push every journey's tests share.
func pushPAR(t *testing.T, s *apptest.Server, in *oidctest.Initiator, req oidctest.Request, scope string) string {
	t.Helper()
	req.Scope = scope
	resp := in.PAR(t, oidctest.NoRedirects(), s.URL, req)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var par struct {
		RequestURI string `json:"request_uri"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &par) != nil || par.RequestURI == "" {
		t.Fatalf("par: %d %s", resp.StatusCode, b)
	}
	return par.RequestURI
}

// paymentScope is what a payment initiator pushes for consentID (the scope
// oidctest's request object carries).
func paymentScope(consentID string) string {
	return "openid payments consent:" + consentID
}

// authorizeURL is where the initiator sends the user for a pushed request.
func authorizeURL(s *apptest.Server, in *oidctest.Initiator, requestURI string) string {
	return s.URL + oidc.PathAuthorize + "?" + url.Values{"client_id": {in.ClientID}, "request_uri": {requestURI}}.Encode()
}

// webView is the journey page the sandbox partner app opened.
type webView struct {
	body          string // the page's HTML
	interactionID string // main#journey's data-interaction
	loginToken    string // the partner app's accessToken, from the fragment
}

// enterWebView follows the deep link as the sandbox partner app does: it
// logs the user (document, the sandbox password) in there, opens the WebView
// the app redirects to, without the fragment, and checks it is the journey
// page. Callers check what the page must show for their consent.
func (j *journey) enterWebView(t *testing.T, deepLink *url.URL, document string) webView {
	t.Helper()
	if deepLink.Path != "/sandbox/partner-app" {
		t.Fatalf("authorize sent the phone to %s", deepLink)
	}
	form := url.Values{"request_uri": {deepLink.Query().Get("request_uri")}, "client_id": {deepLink.Query().Get("client_id")},
		"document": {document}, "password": {"sandbox"}}
	wv := location(t, j.postForm(t, j.s.URL+"/sandbox/partner-app", form))
	login, _ := url.ParseQuery(wv.Fragment)
	if wv.Path != "/openfinance/consent-flow/webview" || login.Get("accessToken") == "" {
		t.Fatalf("partner app opened %s", wv)
	}
	wv.Fragment = ""
	page := j.get(t, wv.String())
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	body := string(b)
	if page.StatusCode != 200 {
		t.Fatalf("webview: %d %s", page.StatusCode, body)
	}
	const marker = `data-interaction="`
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("webview is not the journey page: %s", body)
	}
	rest := body[i+len(marker):]
	return webView{body: body, interactionID: rest[:strings.IndexByte(rest, '"')], loginToken: login.Get("accessToken")}
}

// openPhoneJourney starts a phone's journey for consentID at the authorize
// URL and follows the demo partner's deep link into the WebView as the
// demo customer.
func openPhoneJourney(t *testing.T, s *apptest.Server, in *oidctest.Initiator, consentID string, req oidctest.Request, authorize string) (*journey, webView) {
	t.Helper()
	j := &journey{s: s, in: in, browser: newBrowser(t), ua: phoneUA, consentID: consentID, req: req}
	return j, j.enterWebView(t, location(t, j.get(t, authorize)), "47742663023")
}

// expectInPage reports each of want the WebView page lacks.
func expectInPage(t *testing.T, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("webview lacks %q", w)
		}
	}
}

// authorizeInChromium opens the authorize URL on the phone, which must land
// on the sandbox partner app, and logs in there (loginAtPartnerApp).
func (p *phone) authorizeInChromium(t *testing.T, authorize string) {
	t.Helper()
	resp, err := chromedp.Run(p.ctx, chromedp.NavigateResponse(authorize))
	if err != nil {
		t.Fatalf("open %s: %v", authorize, err)
	}
	if u, _ := url.Parse(resp.URL); resp.Status != 200 || u == nil || u.Path != "/sandbox/partner-app" {
		t.Fatalf("authorize led the phone to %s (%d), want the sandbox partner app", resp.URL, resp.Status)
	}
	p.loginAtPartnerApp(t)
}

// loginAtPartnerApp logs the demo customer in on the sandbox partner app
// page the phone shows, which opens the WebView, and waits until the WebView
// has logged in by itself with the app's token and lets the user approve.
func (p *phone) loginAtPartnerApp(t *testing.T) {
	t.Helper()
	p.checkPhonePage(t, "partner app")
	if err := chromedp.Do(p.ctx,
		chromedp.WaitVisible(chromedp.ID("document")),
		chromedp.SendKeys(chromedp.ID("document"), "47742663023"),
		chromedp.SendKeys(chromedp.ID("password"), "sandbox"),
	); err != nil {
		t.Fatalf("fill the partner app's login: %v", err)
	}
	resp, err := chromedp.RunResponse(p.ctx, chromedp.Tap(chromedp.ID("enter")))
	if err != nil {
		t.Fatalf("partner app login: %v", err)
	}
	if u, _ := url.Parse(resp.URL); resp.Status != 200 || u == nil || u.Path != "/openfinance/consent-flow/webview" {
		t.Fatalf("the partner app opened %s (%d), want the WebView", resp.URL, resp.Status)
	}
	if err := chromedp.Do(p.ctx,
		chromedp.WaitVisible(chromedp.CSS("main#journey")),
		chromedp.WaitVisible(chromedp.ID("accounts")),
		chromedp.WaitEnabled(chromedp.ID("approve")),
	); err != nil {
		t.Fatalf("the WebView did not log in: %v (message %q)", err, jsValue[string](t, p.ctx, `(document.getElementById("message")||{}).textContent||""`))
	}
}

// startChromium starts headless Chromium with the flags every browser test
// uses, runs the start actions (device emulation, say) as the first call,
// installs the CSP probe and collects console errors, exceptions and CSP
// violations in the returned phone. It returns the function that closes the
// tab, for callers with work to stop first. Its cleanups close the tab, stop
// Chromium and wait for it to exit, then cancel the timeout; on failure they
// log the end of Chromium's output and the problems collected.
func startChromium(t *testing.T, chromium string, timeout time.Duration, start ...chromedp.Action[chromedp.Void]) (*phone, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	var chromeOut lockedBuffer
	actx, acancel := chromedp.NewExecAllocator(ctx, apptest.ChromiumOptions(chromium, t.TempDir(), &chromeOut)...)
	bctx, bcancel := chromedp.NewContext(actx)
	p := &phone{ctx: bctx}
	t.Cleanup(cancel)
	t.Cleanup(acancel)
	t.Cleanup(bcancel)
	t.Cleanup(func() {
		if t.Failed() {
			out := chromeOut.String()
			t.Logf("chromium output (end):\n%s", out[max(0, len(out)-4000):])
			p.mu.Lock()
			if len(p.problems) > 0 {
				t.Logf("browser console errors so far:\n%s", strings.Join(p.problems, "\n"))
			}
			p.mu.Unlock()
		}
	})
	if err := chromedp.Do(bctx, start...); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(bctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe}); err != nil {
		t.Fatalf("install the CSP probe: %v", err)
	}
	if err := chromedp.Listen(bctx, p.collect); err != nil {
		t.Fatal(err)
	}
	return p, bcancel
}

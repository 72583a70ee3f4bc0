package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	chromedevice "github.com/chromedp/chromedp/device"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/payments"
)

// TestJourneyInChromium is the end-to-end journey in a real browser:
// a test initiator creates a consent and pushes its request; an emulated
// iPhone follows /oauth/authorize → the sandbox partner app (login) → ticket
// → WebView → automatic login → approve, and lands on the initiator's
// redirect URI with code, id_token and state in the fragment. The initiator
// verifies the id_token (signature, nonce, c_hash, s_hash) and redeems the
// code. A second journey cancels and gets access_denied. Every page must be
// free of console errors and CSP violations, and fit the phone's width. It
// runs when chromium is on PATH (CI installs it).
func TestJourneyInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not on PATH")
	}
	s := apptest.Start(t, apptest.Options{})
	in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID) // the consent creator is the initiator
	ph := startPhone(t, chromium, in.RedirectURI)

	// Approve.
	consentID, req, interactionID := ph.openJourney(t, s, in)
	cb := ph.decide(t, "approve", in.RedirectURI)
	frag, err := url.ParseQuery(cb.Fragment)
	if err != nil {
		t.Fatalf("callback fragment %q: %v", cb.Fragment, err)
	}
	code, idToken := frag.Get("code"), frag.Get("id_token")
	if code == "" || idToken == "" || frag.Get("state") != req.State || frag.Get("error") != "" {
		t.Fatalf("callback fragment = %v", frag)
	}
	if cb.RawQuery != "" {
		t.Errorf("the hybrid flow's response leaked into the query: %q", cb.RawQuery)
	}
	claims := verifyIDToken(t, s, idToken)
	if claims["nonce"] != req.Nonce || claims["aud"] != in.ClientID || claims["iss"] != s.URL {
		t.Errorf("id_token claims = %v", claims)
	}
	if claims["c_hash"] != halfHash(code) || claims["s_hash"] != halfHash(req.State) {
		t.Errorf("c_hash/s_hash = %v/%v, want %s/%s", claims["c_hash"], claims["s_hash"], halfHash(code), halfHash(req.State))
	}
	if sub, _ := claims["sub"].(string); sub == "" || strings.Contains(sub, "47742663023") {
		t.Errorf("id_token sub = %q: must be the customer's id, never the CPF", sub)
	}
	status, tok := in.ExchangeCode(t, oidctest.NoRedirects(), s.URL, code, req)
	if scope, _ := tok["scope"].(string); status != 200 || tok["access_token"] == nil || !strings.Contains(scope, "consent:"+consentID) {
		t.Fatalf("code exchange: %d %v", status, tok)
	}
	c, err := s.App.Payments.Get(t.Context(), s.App.Demo.ID, consentID)
	if err != nil || c.Status != payments.StatusAuthorised || c.DebtorAccount == nil || c.DebtorAccount.Number != "1234567" {
		t.Fatalf("consent after approval: %+v %v", c, err)
	}
	// The WebView reported the emulated iPhone: an app on iOS 15.0.
	iphone := consentflow.Device{Platform: "APP", OS: "IOS", OSVersion: "15.0"}
	steps, err := s.App.Interactions.Steps(t.Context(), interactionID)
	if err != nil || len(steps) != 2 || steps[0].Step != consentflow.StepLogin || steps[1].Step != consentflow.StepConsent ||
		steps[0].Device != iphone || steps[1].Device != iphone {
		t.Fatalf("steps = %+v, %v; want LOGIN and CONSENT from %+v", steps, err, iphone)
	}

	// Cancel, in the same tab: access_denied with the state, no code.
	consentID2, req2, interactionID2 := ph.openJourney(t, s, in)
	if interactionID2 == interactionID {
		t.Fatal("the second journey reused the first interaction")
	}
	cb = ph.decide(t, "cancel", in.RedirectURI)
	frag, err = url.ParseQuery(cb.Fragment)
	if err != nil || frag.Get("error") != "access_denied" || frag.Get("state") != req2.State || frag.Get("code") != "" || frag.Get("id_token") != "" {
		t.Fatalf("cancel callback fragment = %v (%v)", frag, err)
	}
	c, err = s.App.Payments.Get(t.Context(), s.App.Demo.ID, consentID2)
	if err != nil || c.Status != payments.StatusRejected || c.Rejection == nil || c.Rejection.Code != payments.RejectRejeitadoUsuario {
		t.Fatalf("cancelled consent = %+v, %v", c, err)
	}
	steps, err = s.App.Interactions.Steps(t.Context(), interactionID2)
	if err != nil || len(steps) != 2 || steps[0].Step != consentflow.StepLogin || steps[1].Step != consentflow.StepCancel || steps[1].Device != iphone {
		t.Fatalf("cancel steps = %+v, %v", steps, err)
	}

	// The initiator's server saw exactly the two callbacks, and the fragment
	// never travelled to it.
	if hits := ph.initiatorHits(); len(hits) != 2 || hits[0] != in.RedirectURI || hits[1] != in.RedirectURI {
		t.Errorf("requests to the initiator = %q, want the redirect URI twice", hits)
	}
	ph.checkNoProblems(t)
}

// phone is a headless Chromium emulating an iPhone 13. Requests to the
// initiator's host never leave the browser: the Fetch domain answers them
// with a small page, so the fragment stays readable in window.location.
type phone struct {
	ctx context.Context

	mu       sync.Mutex
	problems []string // console errors, exceptions, CSP violations
	hits     []string // URLs the initiator's host was asked for
}

// initiatorPage is what the unreachable initiator "serves" at its redirect URI.
const initiatorPage = `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
	`<link rel="icon" href="data:,"><title>Initiator</title></head><body><p id="initiator-callback">Initiator callback</p></body></html>`

// cspProbe reports CSP violations to the console, where the test collects them.
const cspProbe = `document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " on " + e.documentURI);
});`

// startPhone starts Chromium as an emulated iPhone whose requests to the
// initiator's host (redirectURI's) are recorded and answered with
// initiatorPage.
func startPhone(t *testing.T, chromium, redirectURI string) *phone {
	t.Helper()
	return startIntercepting(t, chromium, redirectURI, chromedp.Emulate(chromedevice.IPhone13))
}

// startIntercepting starts Chromium with the emulation given (a phone, a
// laptop's viewport) whose requests to the initiator's host (redirectURI's)
// are recorded and answered with initiatorPage.
func startIntercepting(t *testing.T, chromium, redirectURI string, emulate chromedp.Action[chromedp.Void]) *phone {
	t.Helper()
	p, closeTab := startChromium(t, chromium, 90*time.Second, emulate)
	bctx := p.ctx
	fulfilled := make(chan struct{})
	// Cleanups run last in, first out: stop the Fetch loop and close the
	// tab before startChromium's cleanups stop Chromium.
	t.Cleanup(func() {
		closeTab()
		<-fulfilled
	})

	u, err := url.Parse(redirectURI)
	if err != nil {
		close(fulfilled)
		t.Fatal(err)
	}
	paused := chromedp.Events(bctx, fetch.RequestPaused)
	if _, err := chromedp.Call(bctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: u.Scheme + "://" + u.Host + "/*"}}}); err != nil {
		close(fulfilled)
		t.Fatalf("intercept the initiator: %v", err)
	}
	go func() {
		defer close(fulfilled)
		for ev, err := range paused {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.hits = append(p.hits, ev.Request.URL)
			p.mu.Unlock()
			_, err := chromedp.Call(bctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
				RequestID: ev.RequestID, ResponseCode: http.StatusOK,
				ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "text/html; charset=utf-8"}, {Name: "Cache-Control", Value: "no-store"}},
				Body:            []byte(initiatorPage),
			})
			if err != nil && bctx.Err() == nil {
				p.problem("fulfil %s: %v", ev.Request.URL, err)
			}
		}
	}()
	return p
}

// collect runs on chromedp's reader goroutine: record, never call back.
func (p *phone) collect(ev any) {
	switch e := ev.(type) {
	case *log.EventEntryAdded:
		if e.Entry.Level == log.EntryLevelError {
			p.problem("%s: %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL)
		}
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		p.problem("exception: %s at %s:%d", text, d.URL, d.LineNumber)
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range e.Args {
				if a.Value != nil {
					var s string
					if json.Unmarshal(a.Value, &s) == nil {
						args = append(args, s)
						continue
					}
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			p.problem("console.%s: %s", e.Type, strings.Join(args, " "))
		}
	}
}

func (p *phone) problem(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

func (p *phone) checkNoProblems(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.problems) > 0 {
		t.Errorf("console errors, exceptions or CSP violations:\n%s", strings.Join(p.problems, "\n"))
	}
}

func (p *phone) initiatorHits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.hits...)
}

// pushRequest creates a consent with the demo partner and pushes the
// initiator's request; it returns the consent, the request and the
// authorization URL the initiator sends the user to.
func pushRequest(t *testing.T, s *apptest.Server, in *oidctest.Initiator) (string, oidctest.Request, string) {
	t.Helper()
	consentID := createConsent(t, s, s.Token(t, "payments"), consentBody)
	req := oidctest.NewRequest(consentID)
	return consentID, req, authorizeURL(s, in, pushPAR(t, s, in, req, paymentScope(consentID)))
}

// openJourney runs one journey up to the decision: authorize → the sandbox
// partner app, where the user logs in → the WebView, which logs in with the
// app's token and shows the account. It checks the pages on the way and
// returns the consent, the pushed request and the interaction id.
func (p *phone) openJourney(t *testing.T, s *apptest.Server, in *oidctest.Initiator) (string, oidctest.Request, string) {
	t.Helper()
	consentID, req, authorize := pushRequest(t, s, in)
	// journey.js logs in from #accessToken; then the account shows, chosen.
	p.authorizeInChromium(t, authorize)
	if !jsValue[bool](t, p.ctx, `document.querySelector('#account-list input[name="debtor"]:checked') !== null`) {
		t.Fatal("no debtor account is chosen after login")
	}
	if got := jsValue[string](t, p.ctx, `document.querySelector('#account-list input[name="debtor"]:checked').dataset.account`); !strings.Contains(got, `"number":"1234567"`) {
		t.Errorf("chosen account = %s, want 1234567", got)
	}
	if got := jsValue[string](t, p.ctx, `location.href`); strings.Contains(got, "accessToken") {
		t.Errorf("the login token stayed in the address bar: %s", got)
	}
	for id, want := range map[string]string{"amount": "R$ 100,00", "initiator": "Test initiator " + in.ClientID} {
		if got := jsValue[string](t, p.ctx, `document.getElementById("`+id+`").textContent.trim()`); got != want {
			t.Errorf("#%s shows %q, want %q", id, got, want)
		}
	}
	if got := jsValue[string](t, p.ctx, `document.getElementById("journey").dataset.platform`); got != "APP" {
		t.Errorf("WebView platform = %q, want APP", got)
	}
	p.checkPhonePage(t, "journey")
	p.screenshot(t, "journey-"+consentID+".png")
	interactionID := jsValue[string](t, p.ctx, `document.getElementById("journey").dataset.interaction`)
	if interactionID == "" {
		t.Fatal("main#journey has no data-interaction")
	}
	return consentID, req, interactionID
}

// decide taps #approve or #cancel and returns the URL, fragment included,
// the browser ends up at under the initiator's redirect URI.
func (p *phone) decide(t *testing.T, button, redirectURI string) *url.URL {
	t.Helper()
	nav, err := chromedp.Run(p.ctx, chromedp.WaitEvent(page.FrameNavigated, func(e page.EventFrameNavigated) bool {
		return e.Frame.ParentID == "" && strings.HasPrefix(e.Frame.URL, redirectURI)
	}, chromedp.Tap(chromedp.ID(button))))
	if err != nil {
		t.Fatalf("%s: no navigation to the initiator: %v", button, err)
	}
	if err := chromedp.Do(p.ctx, chromedp.WaitReady(chromedp.ID("initiator-callback"))); err != nil {
		t.Fatalf("%s: the initiator's page did not load: %v", button, err)
	}
	href := jsValue[string](t, p.ctx, `window.location.href`)
	if want := nav.Frame.URL + nav.Frame.URLFragment; href != want {
		t.Errorf("window.location.href = %s, the frame navigated to %s", href, want)
	}
	u, err := url.Parse(href)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != redirectURI {
		t.Fatalf("%s: redirected to %s, want %s", button, got, redirectURI)
	}
	return u
}

// checkPhonePage checks the page is laid out for the phone: the emulated
// iPhone's 390 px width and no horizontal scrolling.
func (p *phone) checkPhonePage(t *testing.T, name string) {
	t.Helper()
	if w := jsValue[int](t, p.ctx, `window.innerWidth`); w != 390 {
		t.Errorf("%s: layout viewport is %d px wide, want 390", name, w)
	}
	if sw, iw := jsValue[int](t, p.ctx, `document.documentElement.scrollWidth`), jsValue[int](t, p.ctx, `window.innerWidth`); sw > iw {
		t.Errorf("%s: horizontal scrolling: scrollWidth %d > innerWidth %d", name, sw, iw)
	}
	checkHiddenStaysHidden(t, p.ctx, name)
}

// checkHiddenStaysHidden checks that every element carrying the hidden
// attribute is not displayed: a stylesheet rule such as button{display:block}
// must not bring it back (ponte.css's [hidden] rule).
func checkHiddenStaysHidden(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if shown := jsValue[[]string](t, ctx, `Array.from(document.querySelectorAll("[hidden]"))
		.filter(e => getComputedStyle(e).display !== "none" || e.getClientRects().length > 0)
		.map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : ""))`); len(shown) > 0 {
		t.Errorf("%s: elements with the hidden attribute are displayed: %q", name, shown)
	}
}

// screenshot keeps the viewport in the test's artifact directory (go test -artifacts).
func (p *phone) screenshot(t *testing.T, name string) {
	t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), name), png, 0o644); err != nil {
		t.Error(err)
	}
}

// jsValue evaluates a JavaScript expression in the page and decodes its value.
func jsValue[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// lockedBuffer collects Chromium's output from its reader goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

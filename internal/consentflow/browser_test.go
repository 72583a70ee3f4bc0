package consentflow_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/consentflow"
)

// TestWebViewInChromium opens the holder WebView in a real Chromium on a
// phone-sized viewport: a sandbox ticket (made-up requestUri) shows a page
// saying so in Portuguese, with the next steps and no raw ids, with the
// stylesheet applied and without horizontal scrolling, the session cookie is HttpOnly
// and SameSite=Lax, and the one-time link shows the "used" page when opened
// again. It runs when chromium is on PATH (CI installs it).
func TestWebViewInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not on PATH")
	}
	s := apptest.Start(t, apptest.Options{})
	created := s.Do(t, "POST", ticketPath, bearer(s.Token(t, "")),
		`{"requestUri":"17307eb8-e9e6-4ce1-a14d-6f30923746f2","clientId":"7481c175-4a50-4af2-b3b1-b24a109f92ad","documentNumber":"47742663023"}`)
	if created.Status != 201 {
		t.Fatalf("create ticket: %d %s", created.Status, created.Body)
	}
	var tk consentflow.TicketJSON
	created.JSON(t, &tk)
	webview := s.URL + "/openfinance/consent-flow/webview?ticket=" + tk.TicketID

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var chromeOut syncBuffer
	actx, acancel := chromedp.NewExecAllocator(ctx, apptest.ChromiumOptions(chromium, t.TempDir(), &chromeOut)...)
	defer acancel() // stops Chromium and waits for it to exit
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	defer func() {
		if t.Failed() {
			out := chromeOut.String()
			out = out[max(0, len(out)-4000):]
			t.Logf("chromium output (end):\n%s", out)
		}
	}()

	// A phone: 390×844 CSS pixels, mobile (the viewport meta tag applies), touch.
	if err := chromedp.Do(bctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch,
			chromedp.EmulatePortrait, chromedp.EmulateScale(2)),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, log.Enable, cdp.Empty{})
			return err
		}),
	); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// Console and network errors of the page, such as a CSP violation.
	var logMu sync.Mutex
	var logged []string
	if err := chromedp.Listen(bctx, func(ev any) {
		// The pages declare no icon and /favicon.ico is not served; that 404
		// is no fault of the page itself.
		if e, ok := ev.(*log.EventEntryAdded); ok && e.Entry.Level == log.EntryLevelError &&
			!strings.HasSuffix(e.Entry.URL, "/favicon.ico") {
			logMu.Lock()
			logged = append(logged, string(e.Entry.Source)+": "+e.Entry.Text+" "+e.Entry.URL)
			logMu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}

	// First visit: the ticket is redeemed and the review page shows.
	resp, err := chromedp.Run(bctx, chromedp.NavigateResponse(webview))
	if err != nil {
		t.Fatalf("open webview: %v", err)
	}
	if resp.Status != 200 {
		t.Fatalf("webview status %d, want 200", resp.Status)
	}
	// A sandbox ticket (made-up requestUri and clientId): the page says
	// what it is and what to do next, and shows no ids.
	if got := eval[string](t, bctx, `document.getElementById("document").textContent.trim()`); got != "477******23" {
		t.Errorf("#document shows %q", got)
	}
	if got := eval[string](t, bctx, `document.querySelector("h1").textContent`); got != "Ticket de teste do sandbox" {
		t.Errorf("h1 = %q", got)
	}
	if got := eval[int](t, bctx, `document.querySelectorAll("#next-steps li").length`); got != 3 {
		t.Errorf("%d next steps, want 3", got)
	}
	body := eval[string](t, bctx, `document.title + "\n" + document.body.innerText`)
	for _, unwanted := range []string{"47742663023", "7481c175-4a50-4af2-b3b1-b24a109f92ad", "17307eb8-e9e6-4ce1-a14d-6f30923746f2",
		"quando o servidor de autorização"} {
		if strings.Contains(body, unwanted) {
			t.Errorf("the page shows %q:\n%s", unwanted, body)
		}
	}
	for _, want := range []string{"não há um pedido de autorização por trás dele", "journeys-sessions", "journeySessionUrl", "Ponte Sandbox"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q:\n%s", want, body)
		}
	}
	checkStyledPhonePage(t, bctx)
	logMu.Lock()
	if len(logged) > 0 {
		t.Errorf("console errors on the webview page:\n%s", strings.Join(logged, "\n"))
	}
	logMu.Unlock()
	screenshot(t, bctx, "webview.png")

	// The session cookie is in the browser, HttpOnly and SameSite=Lax.
	cookies, err := chromedp.Call(bctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.URL + "/"}})
	if err != nil {
		t.Fatalf("get cookies: %v", err)
	}
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == consentflow.SessionCookie {
			session = c
		}
	}
	switch {
	case session == nil:
		t.Errorf("no %s cookie in the browser; cookies: %d", consentflow.SessionCookie, len(cookies.Cookies))
	default:
		if !session.HTTPOnly || session.SameSite != network.CookieSameSiteLax || session.Path != "/" || session.Secure {
			t.Errorf("session cookie: HttpOnly %v SameSite %q Path %q Secure %v, want HttpOnly, Lax, /, not Secure on http",
				session.HTTPOnly, session.SameSite, session.Path, session.Secure)
		}
		// Max-Age rules: the browser keeps the cookie for the session TTL.
		left := time.Until(time.Unix(int64(session.Expires), 0))
		if session.Session || left < consentflow.SessionTTL-time.Minute || left > consentflow.SessionTTL+time.Minute {
			t.Errorf("session cookie expires in %v (session cookie %v), want about %v", left, session.Session, consentflow.SessionTTL)
		}
		if session.Value == "" || strings.Contains(session.Value, tk.TicketID) {
			t.Errorf("session cookie value %q is empty or holds the ticket", session.Value)
		}
	}
	if jar := eval[string](t, bctx, `document.cookie`); strings.Contains(jar, consentflow.SessionCookie) {
		t.Errorf("document.cookie exposes the session: %q", jar)
	}

	// Pull-to-refresh in the WebView: the browser holding the session sees the same page.
	resp, err = chromedp.RunResponse(bctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.Reload, page.ReloadParams{})
		return err
	}))
	if err != nil {
		t.Fatalf("reload webview: %v", err)
	}
	if resp.Status != 200 {
		t.Errorf("reload with the session: status %d, want 200", resp.Status)
	}
	if got := eval[string](t, bctx, `document.getElementById("document").textContent`); got != "477******23" {
		t.Errorf("reload #document = %q", got)
	}

	// Without the session, the one-time link shows the "used" page, with 410.
	if _, err := chromedp.Run(bctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.ClearBrowserCookies, cdp.Empty{})
		return err
	})); err != nil {
		t.Fatalf("clear cookies: %v", err)
	}
	resp, err = chromedp.RunResponse(bctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.Reload, page.ReloadParams{})
		return err
	}))
	if err != nil {
		t.Fatalf("reload webview without session: %v", err)
	}
	if resp.Status != 410 {
		t.Errorf("reload status %d, want 410", resp.Status)
	}
	if got := eval[string](t, bctx, `document.getElementById("title").textContent`); !strings.Contains(got, "já utilizado") {
		t.Errorf("reload #title = %q, want the used message", got)
	}
	checkStyledPhonePage(t, bctx)
	screenshot(t, bctx, "used.png")

	// An unknown ticket.
	resp, err = chromedp.Run(bctx, chromedp.NavigateResponse(s.URL+"/openfinance/consent-flow/webview?ticket=0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatalf("open unknown ticket: %v", err)
	}
	if resp.Status != 404 {
		t.Errorf("unknown ticket status %d, want 404", resp.Status)
	}
	if got := eval[string](t, bctx, `document.getElementById("title").textContent`); !strings.Contains(got, "Link inválido") {
		t.Errorf("unknown ticket #title = %q, want Link inválido", got)
	}
	checkStyledPhonePage(t, bctx)

	if err := chromedp.Cancel(bctx); err != nil {
		t.Errorf("close chromium: %v", err)
	}
}

// checkStyledPhonePage checks that ponte.css applies and that the page fits
// the phone's width.
func checkStyledPhonePage(t *testing.T, ctx context.Context) {
	t.Helper()
	if w := eval[int](t, ctx, `window.innerWidth`); w != 390 {
		t.Errorf("layout viewport is %d px wide, want 390 (the viewport meta tag)", w)
	}
	// Browser defaults would be "none", a serif font and a white background.
	if got := eval[string](t, ctx, `getComputedStyle(document.querySelector("main")).maxWidth`); got != "448px" {
		t.Errorf("main max-width = %q, want 448px (28rem from ponte.css)", got)
	}
	if got := eval[string](t, ctx, `getComputedStyle(document.body).fontFamily`); !strings.HasPrefix(got, "system-ui") {
		t.Errorf("body font-family = %q, want ponte.css's system-ui stack", got)
	}
	if got := eval[string](t, ctx, `getComputedStyle(document.body).backgroundColor`); got != "rgb(246, 247, 249)" {
		t.Errorf("body background = %q, want rgb(246, 247, 249) from ponte.css", got)
	}
	if sw, iw := eval[int](t, ctx, `document.documentElement.scrollWidth`), eval[int](t, ctx, `window.innerWidth`); sw > iw {
		t.Errorf("horizontal scrolling: scrollWidth %d > innerWidth %d", sw, iw)
	}
	// Whatever carries the hidden attribute stays hidden (ponte.css's [hidden] rule).
	if shown := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("[hidden]"))
		.filter(e => getComputedStyle(e).display !== "none").map(e => e.tagName + (e.id ? "#" + e.id : ""))`); len(shown) > 0 {
		t.Errorf("elements with the hidden attribute are displayed: %v", shown)
	}
	// No element sticks out on the right, even where overflow would hide it.
	if wide := eval[[]string](t, ctx, `Array.from(document.body.querySelectorAll("*"))
		.filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
		.map(e => e.tagName + (e.id ? "#" + e.id : ""))`); len(wide) > 0 {
		t.Errorf("elements wider than the phone: %v", wide)
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// screenshot saves the viewport as a PNG in the test's artifact directory
// (kept with go test -artifacts).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
}

// syncBuffer collects Chromium's output from its reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

package app_test

import (
	"context"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
)

// TestPagesInChromium walks the pages a person meets outside the happy path,
// in Chromium on a phone (iPhone 13, 390×844) and on a laptop (1366×768):
//
//   - the desktop QR hand-off: the laptop shows the QR page, the phone
//     approves in the WebView, whose Autorizar/Cancelar buttons must then be
//     gone (not merely carry the hidden attribute), and the laptop returns
//     to the initiator;
//   - an interaction finished elsewhere: tapping Cancelar says so in
//     Portuguese and takes the buttons away;
//   - the WebView's own sandbox login with another customer's CPF, and with
//     a wrong password: Portuguese messages, never the API's English detail;
//   - "/" and an unknown path: Portuguese pages.
//
// Every page must keep hidden elements hidden, fit the width, and be free
// of console errors and CSP violations. It runs when chromium is on PATH.
func TestPagesInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not on PATH")
	}
	s := apptest.Start(t, apptest.Options{})
	in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
	ph := startPhone(t, chromium, in.RedirectURI)
	laptop := startIntercepting(t, chromium, in.RedirectURI, chromedp.EmulateViewport(1366, 768))

	t.Run("hand-off", func(t *testing.T) {
		_, _, authorize := pushRequest(t, s, in)
		resp, err := chromedp.Run(laptop.ctx, chromedp.NavigateResponse(authorize))
		if err != nil || resp.Status != 200 {
			t.Fatalf("open %s on the laptop: %v %+v", authorize, err, resp)
		}
		if err := chromedp.Do(laptop.ctx, chromedp.WaitVisible(chromedp.ID("qr"))); err != nil {
			t.Fatalf("the hand-off page: %v", err)
		}
		if got := jsValue[string](t, laptop.ctx, `document.querySelector("#handoff p").textContent`); !strings.Contains(got, "pediu uma autorização de pagamento") {
			t.Errorf("hand-off text = %q", got)
		}
		checkLaptopPage(t, laptop, "hand-off")
		laptop.screenshot(t, "handoff-1366.png")

		// The phone scans the code: the partner app, then the WebView.
		deepLink := jsValue[string](t, laptop.ctx, `document.getElementById("deep-link").href`)
		resp, err = chromedp.Run(ph.ctx, chromedp.NavigateResponse(deepLink))
		if err != nil || resp.Status != 200 {
			t.Fatalf("open the deep link on the phone: %v %+v", err, resp)
		}
		ph.loginAtPartnerApp(t)
		if got := jsValue[string](t, ph.ctx, `document.getElementById("journey").dataset.handoff||""`); got != "true" {
			t.Fatalf("the phone's WebView is not a hand-off (data-handoff %q)", got)
		}
		if err := chromedp.Do(ph.ctx, chromedp.Tap(chromedp.ID("approve"))); err != nil {
			t.Fatal(err)
		}
		waitMessage(t, ph, "Pagamento autorizado. Continue no computador.")
		for _, id := range []string{"approve", "cancel", "accounts"} {
			if got := jsValue[string](t, ph.ctx, `getComputedStyle(document.getElementById("`+id+`")).display`); got != "none" {
				t.Errorf("after approving on the phone, #%s is displayed (%s)", id, got)
			}
		}
		if hit := jsValue[string](t, ph.ctx, `(() => { const r = document.getElementById("message").getBoundingClientRect();
			const e = document.elementFromPoint(r.left + 5, r.bottom + 30); return e ? e.tagName + "#" + e.id : ""; })()`); strings.HasPrefix(hit, "BUTTON") {
			t.Errorf("a button is still there to tap below the message: %s", hit)
		}
		ph.checkPhonePage(t, "hand-off WebView, approved")
		ph.screenshot(t, "handoff-phone-approved.png")

		// The laptop follows the phone back to the initiator.
		wctx, cancel := context.WithTimeout(laptop.ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(wctx, chromedp.WaitReady(chromedp.ID("initiator-callback"))); err != nil {
			t.Fatalf("the laptop did not return to the initiator: %v (status %q)", err,
				jsValue[string](t, laptop.ctx, `(document.getElementById("handoff-status")||{}).textContent||""`))
		}
		itpCheckProblems(t, ph)
		itpCheckProblems(t, laptop)
	})

	t.Run("already finished", func(t *testing.T) {
		consentID, _, interactionID := ph.openJourney(t, s, in)
		// The interaction ends elsewhere (another tab, the partner's backend).
		partial := false
		clientName := jsValue[string](t, ph.ctx, `document.getElementById("journey").dataset.client`)
		if _, err := s.App.Interactions.Approve(t.Context(), consentflow.Actor{ApplicationID: s.App.Demo.ID}, clientName, interactionID, consentflow.ConsentRequest{
			PartialApproval: &partial, DebtorAccount: &consentflow.DebtorAccount{ISPB: "37241230", Issuer: "0001", Number: "1234567", AccountType: "CACC"},
			Device: &consentflow.Device{Platform: "APP", OS: "IOS", OSVersion: "17.5"},
		}); err != nil {
			t.Fatalf("approve %s elsewhere: %v", consentID, err)
		}
		if err := chromedp.Do(ph.ctx, chromedp.Tap(chromedp.ID("cancel"))); err != nil {
			t.Fatal(err)
		}
		waitMessage(t, ph, "Esta autorização já foi concluída. Você já pode voltar para Test initiator "+in.ClientID+".")
		for _, id := range []string{"approve", "cancel", "accounts"} {
			if got := jsValue[string](t, ph.ctx, `getComputedStyle(document.getElementById("`+id+`")).display`); got != "none" {
				t.Errorf("on a finished interaction, #%s is displayed (%s)", id, got)
			}
		}
		expectedLoadError(ph, "409 (Conflict)")
		noEnglish(t, ph, "finished WebView")
		ph.checkPhonePage(t, "finished WebView")
		ph.screenshot(t, "webview-already-finished.png")
		itpCheckProblems(t, ph)
	})

	t.Run("sandbox login as someone else", func(t *testing.T) {
		// The partner app's redirect, without its #accessToken: the WebView
		// offers its own sandbox login.
		_, _, authorize := pushRequest(t, s, in)
		j := &journey{s: s, in: in, browser: newBrowser(t), ua: phoneUA}
		link := location(t, j.get(t, authorize))
		wv := location(t, j.postForm(t, s.URL+link.Path, url.Values{"request_uri": {link.Query().Get("request_uri")},
			"client_id": {link.Query().Get("client_id")}, "document": {"47742663023"}, "password": {"sandbox"}}))
		wv.Fragment = ""
		resp, err := chromedp.Run(ph.ctx, chromedp.NavigateResponse(wv.String()))
		if err != nil || resp.Status != 200 {
			t.Fatalf("open the WebView: %v %+v", err, resp)
		}
		login := func(document, password string) {
			t.Helper()
			if err := chromedp.Do(ph.ctx, chromedp.WaitVisible(chromedp.ID("login-document"))); err != nil {
				t.Fatal(err)
			}
			jsValue[bool](t, ph.ctx, `(document.getElementById("login-document").value = "", document.getElementById("login-password").value = "", true)`)
			if err := chromedp.Do(ph.ctx,
				chromedp.SendKeys(chromedp.ID("login-document"), document),
				chromedp.SendKeys(chromedp.ID("login-password"), password),
				chromedp.Tap(chromedp.ID("login-submit")),
			); err != nil {
				t.Fatal(err)
			}
		}
		login("47742663023", "wrong")
		waitMessage(t, ph, "CPF ou senha inválidos.")
		login("12345678909", "sandbox") // João, another demo customer
		waitMessage(t, ph, "Você entrou com um CPF diferente do que está neste pedido. Entre com o CPF do titular.")
		expectedLoadError(ph, "401 (Unauthorized)", "403 (Forbidden)")
		noEnglish(t, ph, "WebView login as someone else")
		if !jsValue[bool](t, ph.ctx, `getComputedStyle(document.getElementById("cancel")).display !== "none"`) {
			t.Error("after a wrong login the user can no longer cancel")
		}
		ph.checkPhonePage(t, "WebView login as someone else")
		ph.screenshot(t, "webview-wrong-user.png")
		itpCheckProblems(t, ph)
	})

	t.Run("home and not found", func(t *testing.T) {
		for _, b := range []struct {
			name  string
			p     *phone
			check func(t *testing.T, name string)
		}{
			{"phone", ph, func(t *testing.T, name string) { ph.checkPhonePage(t, name) }},
			{"laptop", laptop, func(t *testing.T, name string) { checkLaptopPage(t, laptop, name) }},
		} {
			for _, pg := range []struct {
				path, title string
				status      int64
			}{
				{"/", "Autorizações Open Finance", 200},
				{"/caminho/que/nao/existe", "Página não encontrada", 404},
			} {
				resp, err := chromedp.Run(b.p.ctx, chromedp.NavigateResponse(s.URL+pg.path))
				if err != nil || resp.Status != pg.status {
					t.Fatalf("%s %s: %v %+v", b.name, pg.path, err, resp)
				}
				if got := jsValue[string](t, b.p.ctx, `document.querySelector("h1").textContent`); got != pg.title {
					t.Errorf("%s %s: h1 %q, want %q", b.name, pg.path, got, pg.title)
				}
				if got := jsValue[string](t, b.p.ctx, `getComputedStyle(document.body).backgroundColor`); got != "rgb(246, 247, 249)" {
					t.Errorf("%s %s: ponte.css is not applied (background %s)", b.name, pg.path, got)
				}
				noEnglish(t, b.p, b.name+" "+pg.path)
				b.check(t, b.name+" "+pg.path)
				b.p.screenshot(t, b.name+"-"+strings.ReplaceAll(strings.Trim(pg.path, "/"), "/", "-")+".png")
			}
		}
		expectedLoadError(ph, "404 (Not Found)")
		expectedLoadError(laptop, "404 (Not Found)")
		itpCheckProblems(t, ph)
		itpCheckProblems(t, laptop)
	})
}

// expectedLoadError forgets the console's "Failed to load resource" entries
// for the statuses given, which the subtest provoked on purpose.
func expectedLoadError(p *phone, statuses ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.problems[:0]
	for _, pr := range p.problems {
		expected := false
		for _, st := range statuses {
			expected = expected || strings.Contains(pr, "Failed to load resource: the server responded with a status of "+st)
		}
		if !expected {
			kept = append(kept, pr)
		}
	}
	p.problems = kept
}

// checkLaptopPage checks a page on the 1366 px laptop: no horizontal
// scrolling and hidden elements hidden.
func checkLaptopPage(t *testing.T, p *phone, name string) {
	t.Helper()
	if sw, iw := jsValue[int](t, p.ctx, `document.documentElement.scrollWidth`), jsValue[int](t, p.ctx, `window.innerWidth`); sw > iw || iw != 1366 {
		t.Errorf("%s: scrollWidth %d, innerWidth %d, want 1366 and no horizontal scrolling", name, sw, iw)
	}
	checkHiddenStaysHidden(t, p.ctx, name)
}

// waitMessage waits until the WebView's #message says want.
func waitMessage(t *testing.T, p *phone, want string) {
	t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[bool](`(document.getElementById("message")||{}).textContent === `+jsString(want),
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("#message: %v; it says %q, want %q", err, jsValue[string](t, p.ctx, `(document.getElementById("message")||{}).textContent||""`), want)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`", "${", "\\${").Replace(s) + "`"
}

// englishLeftovers match Ponte's English API texts and page scaffolding,
// which a person must never read.
var englishLeftovers = regexp.MustCompile(`accessToken|the logged-in|\binteraction\b|already finished|not found|\(initiator\)|` +
	`\b(Cancel|Approve|Error|error|Back|Continue|Loading)\b|HTTP \d`)

// noEnglish fails when the page's title, visible text or alternative texts
// hold one of englishLeftovers.
func noEnglish(t *testing.T, p *phone, name string) {
	t.Helper()
	text := jsValue[string](t, p.ctx, `document.title + "\n" + document.body.innerText + "\n" +
		Array.from(document.querySelectorAll("[alt],[aria-label],[title],[placeholder]"), e => [e.alt, e.ariaLabel, e.title, e.placeholder].join(" ")).join("\n")`)
	if found := englishLeftovers.FindAllString(text, -1); len(found) > 0 {
		t.Errorf("%s shows %q:\n%s", name, found, text)
	}
}

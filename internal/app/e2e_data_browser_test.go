package app_test

import (
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
)

// TestDataSharingInChromium is issue 7's data-sharing journey in a real
// browser, an emulated iPhone: a receiver (the demo partner's client id,
// registered as an OIDC initiator) creates a Consents v3 consent for
// Saldos, Limites and Extratos and pushes "openid consents resources
// accounts consent:<id>"; the phone follows /oauth/authorize → the sandbox
// partner app (login) → ticket → WebView, which shows the groups in
// Portuguese and one checkbox per account; the user unticks the
// preselected account (approving with none is refused on the page), ticks
// the checking account alone and approves. The redirect to the receiver's
// URI is answered in the browser by the Fetch domain, and the test reads the
// fragment from the page; Go redeems the code and reads /resources,
// /accounts and every /transactions page of the one shared account. Then the
// phone opens "Meus compartilhamentos" with a ticket, which names the
// receiver as the WebView did, taps "Encerrar compartilhamento", keeps the
// sharing on the confirmation page once, then confirms; the receiver's next
// data call with the same token is 401. Every page must be free of console errors, exceptions and CSP
// violations, and fit the phone's width. It runs when chromium is on PATH
// (CI installs it).
func TestDataSharingInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not on PATH")
	}
	start := time.Now()
	s := apptest.Start(t, apptest.Options{})
	in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
	rc := newReceiver(s)
	ids := sandboxAccountIDs(t, s)
	ph := startPhone(t, chromium, in.RedirectURI) // intercepts https://initiator.example/*

	consentID := rc.createConsent(t, receiverConsentBody)
	req := oidctest.NewRequest(consentID)
	authorize := authorizeURL(s, in, pushPAR(t, s, in, req, receiverScope(consentID)))

	// authorize → the sandbox partner app → the WebView, logged in.
	ph.authorizeInChromium(t, authorize)

	// The consent screen: the groups by category, in Portuguese; the
	// receiver; the period; one checkbox per account.
	if got := jsValue[string](t, ph.ctx, `document.getElementById("journey").dataset.kind||""`); got != "data" {
		t.Errorf("WebView kind = %q, want data", got)
	}
	if got := jsValue[string](t, ph.ctx, `document.querySelector("h1").textContent.trim()`); got != "Compartilhar dados via Open Finance" {
		t.Errorf("WebView title = %q", got)
	}
	if got := jsValue[string](t, ph.ctx, `document.getElementById("initiator").textContent.trim()`); got != "Test initiator "+in.ClientID {
		t.Errorf("#initiator = %q", got)
	}
	categories := jsValue[[]string](t, ph.ctx, `Array.from(document.querySelectorAll("#data-permissions dt"), e => e.textContent.trim())`)
	if want := []string{"Contas", "Prazo", "Cliente"}; !slices.Equal(categories, want) {
		t.Errorf("#data-permissions categories = %q, want %q", categories, want)
	}
	groups := jsValue[[]string](t, ph.ctx, `Array.from(document.querySelectorAll("#data-permissions dd strong"), e => e.textContent.trim())`)
	if want := []string{"Saldos", "Limites", "Extratos"}; !slices.Equal(groups, want) {
		t.Errorf("groups shown = %q, want %q", groups, want)
	}
	if got := jsValue[string](t, ph.ctx, `document.getElementById("data-period").textContent.trim()`); got != "Até 15/04/2025 às 15:55" {
		t.Errorf("#data-period = %q", got)
	}
	boxes := jsValue[[]string](t, ph.ctx, `Array.from(document.querySelectorAll('#account-list input[name="debtor"]'),
		i => i.type + " " + (i.checked ? "checked" : "unchecked") + " " + JSON.parse(i.dataset.account).number)`)
	if want := []string{"checkbox checked " + sandboxChecking, "checkbox unchecked " + sandboxSavings, "checkbox unchecked " + sandboxPrepaid}; !slices.Equal(boxes, want) {
		t.Fatalf("account checkboxes = %q, want %q", boxes, want)
	}
	// The accounts by the names people know; the payment account has no agência.
	labels := jsValue[[]string](t, ph.ctx, `Array.from(document.querySelectorAll('#account-list label.account span'), e => e.textContent.trim())`)
	if want := []string{"Conta corrente · ag. 0001 · conta " + sandboxChecking, "Conta poupança · ag. 0001 · conta " + sandboxSavings,
		"Conta de pagamento · conta " + sandboxPrepaid}; !slices.Equal(labels, want) {
		t.Errorf("account labels = %q, want %q", labels, want)
	}
	ph.checkPhonePage(t, "WebView")
	ph.screenshot(t, "data-webview.png")

	// Untick everything: approving with no account is refused on the page.
	box := func(number string) chromedp.Action[chromedp.Void] {
		return chromedp.Tap(chromedp.CSS(`#account-list input[data-account*='"number":"` + number + `"']`))
	}
	if err := chromedp.Do(ph.ctx, box(sandboxChecking), chromedp.Tap(chromedp.ID("approve"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ph.ctx, chromedp.Poll[bool](`document.getElementById("message").textContent === "Escolha ao menos uma conta."`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("approving with no account: %v (message %q)", err, jsValue[string](t, ph.ctx, `document.getElementById("message").textContent`))
	}
	// Tick the savings account and untick it again, then tick the checking
	// account: only the checking account is shared.
	if err := chromedp.Do(ph.ctx, box(sandboxSavings), box(sandboxSavings), box(sandboxChecking)); err != nil {
		t.Fatal(err)
	}
	checked := jsValue[[]string](t, ph.ctx, `Array.from(document.querySelectorAll('#account-list input[name="debtor"]:checked'), i => JSON.parse(i.dataset.account).number)`)
	if !slices.Equal(checked, []string{sandboxChecking}) {
		t.Fatalf("accounts ticked = %q, want only %s", checked, sandboxChecking)
	}

	// Approve: the browser lands on the receiver's redirect URI, the
	// fragment readable in the page.
	cb := ph.decide(t, "approve", in.RedirectURI)
	if cb.RawQuery != "" {
		t.Errorf("the hybrid flow's response leaked into the query: %q", cb.RawQuery)
	}
	token := redeemDataCode(t, s, in, req, cb)
	g, err := s.App.DataConsents.Grant(t.Context(), consentID)
	if err != nil || g.Status != string(dataconsents.StatusAuthorised) || !slices.Equal(g.AccountIDs, []string{ids[sandboxChecking]}) {
		t.Fatalf("grant after approval: %+v %v", g, err)
	}
	t.Logf("journey in %s", time.Since(start).Round(time.Millisecond))

	// The receiver reads the one account it was given.
	status, body := rc.call(t, "GET", dataapi.ResourcesPath, token, "")
	if got := dataItems(body); status != 200 || len(got) != 1 || got[0]["resourceId"] != ids[sandboxChecking] {
		t.Fatalf("resources: %d %v", status, body)
	}
	status, body = rc.call(t, "GET", dataapi.AccountsPath, token, "")
	if got := dataItems(body); status != 200 || len(got) != 1 || got[0]["accountId"] != ids[sandboxChecking] || got[0]["number"] != "00123456" {
		t.Fatalf("accounts: %d %v", status, body)
	}
	if n := len(rc.walkTransactions(t, token, ids[sandboxChecking], 1000)); n != 1600 {
		t.Errorf("walked %d transactions, want 1600", n)
	}
	if status, body := rc.call(t, "GET", dataapi.AccountsPath+"/"+ids[sandboxSavings]+"/transactions", token, ""); status != 403 || errorCodeOf(body) != "FORBIDDEN" {
		t.Errorf("the savings account, not shared: %d %v", status, body)
	}

	// "Meus compartilhamentos", opened in the phone with a ticket: revoke.
	ticket := ticketID(t, mySharingTicket(t, s, s.Token(t, "openfinance.ticket.write"), s.App.Demo.ClientID, "47742663023"))
	resp, err := chromedp.Run(ph.ctx, chromedp.NavigateResponse(s.URL+dataconsents.PathMySharing+"?ticket="+url.QueryEscape(ticket)))
	if err != nil {
		t.Fatalf("open my sharing: %v", err)
	}
	if u, _ := url.Parse(resp.URL); resp.Status != 200 || u == nil || u.Path != dataconsents.PathMySharing {
		t.Fatalf("the ticket led the phone to %s (%d)", resp.URL, resp.Status)
	}
	if got := jsValue[string](t, ph.ctx, `location.search`); strings.Contains(got, ticket) {
		t.Errorf("the ticket stayed in the address bar: %s", got)
	}
	revoke := `form:has(input[name="consentId"][value="` + consentID + `"]) button[type="submit"]`
	if err := chromedp.Do(ph.ctx, chromedp.WaitVisible(chromedp.CSS(revoke))); err != nil {
		t.Fatalf("my sharing does not list the consent: %v", err)
	}
	card := jsValue[string](t, ph.ctx, `document.querySelector('form:has(input[value="`+consentID+`"])').closest("section").textContent`)
	for _, want := range []string{"Saldos", "Limites", "Extratos", "conta " + sandboxChecking, "Até 15/04/2025 às 15:55"} {
		if !strings.Contains(card, want) {
			t.Errorf("my sharing's card lacks %q: %s", want, card)
		}
	}
	if strings.Contains(card, sandboxSavings) {
		t.Errorf("my sharing's card shows the savings account, not shared: %s", card)
	}
	// The receiver is named as the WebView named it when the user authorised.
	if got := jsValue[string](t, ph.ctx, `document.querySelector('form:has(input[value="`+consentID+`"])').closest("section").querySelector("h2").textContent.trim()`); got != "Test initiator "+in.ClientID {
		t.Errorf("my sharing names the receiver %q, the WebView named it %q", got, "Test initiator "+in.ClientID)
	}
	ph.checkPhonePage(t, "my sharing")
	ph.screenshot(t, "my-sharing.png")

	// Encerrar asks first, on a page of its own (no script needed); "Não,
	// manter" goes back with the sharing intact.
	askToRevoke := func() {
		t.Helper()
		resp, err := chromedp.RunResponse(ph.ctx, chromedp.Tap(chromedp.CSS(revoke)))
		if err != nil {
			t.Fatalf("tap Encerrar: %v", err)
		}
		if u, _ := url.Parse(resp.URL); resp.Status != 200 || u == nil || u.Path != dataconsents.PathMySharingRevoke {
			t.Fatalf("Encerrar led the phone to %s (%d), want the confirmation page", resp.URL, resp.Status)
		}
		if got := jsValue[string](t, ph.ctx, `document.querySelector("h1").textContent`); got != "Encerrar o compartilhamento com Test initiator "+in.ClientID+"?" {
			t.Errorf("confirmation page asks %q", got)
		}
		if g, err := s.App.DataConsents.Grant(t.Context(), consentID); err != nil || g.Status != string(dataconsents.StatusAuthorised) {
			t.Errorf("the confirmation page already revoked: %+v %v", g, err)
		}
	}
	askToRevoke()
	ph.checkPhonePage(t, "revoke confirmation")
	ph.screenshot(t, "my-sharing-confirm.png")
	resp, err = chromedp.RunResponse(ph.ctx, chromedp.Tap(chromedp.ID("keep")))
	if err != nil {
		t.Fatalf("keep: %v", err)
	}
	if u, _ := url.Parse(resp.URL); resp.Status != 200 || u == nil || u.Path != dataconsents.PathMySharing || !jsValue[bool](t, ph.ctx, `document.querySelector('input[value="`+consentID+`"]') !== null`) {
		t.Fatalf("keeping led the phone to %s (%d) without the sharing listed", resp.URL, resp.Status)
	}
	askToRevoke()
	resp, err = chromedp.RunResponse(ph.ctx, chromedp.Tap(chromedp.ID("confirm-revoke")))
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if u, _ := url.Parse(resp.URL); resp.Status != 200 || u == nil || u.Path != dataconsents.PathMySharing {
		t.Fatalf("revoking led the phone to %s (%d)", resp.URL, resp.Status)
	}
	if got := jsValue[string](t, ph.ctx, `(document.getElementById("message")||{}).textContent||""`); !strings.Contains(got, "Compartilhamento encerrado") {
		t.Errorf("after revoking, the page says %q", got)
	}
	if jsValue[bool](t, ph.ctx, `document.querySelector('input[value="`+consentID+`"]') !== null`) {
		t.Error("the revoked consent is still listed")
	}

	// The receiver's next call with the same token fails.
	rc.expectRevoked(t, token, consentID, ids[sandboxChecking])

	if hits := ph.initiatorHits(); len(hits) != 1 || hits[0] != in.RedirectURI {
		t.Errorf("requests to the receiver = %q, want its redirect URI once", hits)
	}
	ph.checkNoProblems(t)
	t.Logf("end to end in %s", time.Since(start).Round(time.Millisecond))
}

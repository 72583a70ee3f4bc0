package app_test

import (
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/itpflow"
)

// TestInitiatorJourneysInChromium runs Ponte's initiator side (issue 6 §5)
// in a real browser, an emulated iPhone, against the sandbox brand (Ponte's
// own holder side):
//
//   - journey sessions: the partner creates a session over the API; the
//     phone opens journeySessionUrl, confirms on the hosted page, goes
//     through the holder's /oauth/authorize, the sandbox partner app and the
//     WebView, and decides; the brand's fragment comes back to
//     /journey/callback, whose script posts it, and Ponte sends the phone to
//     the partner's redirectUrl with the session's id and status — approved
//     (FINISHED), cancelled at the holder (REJECTED), cancelled on the hosted
//     page (CANCELLED);
//   - the Brick payment initiation: the partner creates a consent over the
//     API, the phone follows data.authorizationUrl to the partner's callback
//     with the fragment, and the partner posts it back — approved
//     (AUTHORISED) and cancelled (access_denied, REJECTED).
//
// The partner's host (fintech.example) never answers for real: the Fetch
// domain fulfils its requests with a small page. Every page must be free of
// console errors, exceptions and CSP violations. It runs when chromium is on
// PATH (CI installs it).
func TestInitiatorJourneysInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not on PATH")
	}
	f := newSessionFlow(t, "") // apptest.Start with a fake clock at time.Now(): the authorization server reads the wall clock
	s := f.s
	ph := startPhone(t, chromium, fintechDone) // intercepts https://fintech.example/*
	navs := itpRecordDocuments(t, ph)

	t.Run("session approved", func(t *testing.T) {
		start := time.Now()
		id, path := itpOpenSessionPage(t, ph, f, "chromium-approve")
		navs.reset()
		itpConfirmOnSessionPage(t, ph)
		navs.expectInOrder(t, "confirm", "POST "+path+"/confirm", "GET /oauth/authorize", "GET /sandbox/partner-app")
		if st, history, _ := f.session(t, id); st != "AWAITING_AUTHORISATION" || strings.Join(history, ",") != "PENDING,AWAITING_AUTHORISATION" {
			t.Fatalf("session after confirm: %s %v", st, history)
		}
		itpLoginAtPartnerApp(t, ph, "sweeping")
		if got := jsValue[string](t, ph.ctx, `document.getElementById("sweeping-transaction").textContent.trim()`); got != "até R$ 500,00" {
			t.Errorf("#sweeping-transaction shows %q", got)
		}
		if got := jsValue[string](t, ph.ctx, `document.getElementById("sweeping-creditors").textContent`); !strings.Contains(got, "Maria da Silva") {
			t.Errorf("#sweeping-creditors shows %q, want the name typed on the hosted page", got)
		}
		// People read Ponte-as-initiator's Portuguese name, and a sweeping
		// consent's account is where the transfers start, by its type's name.
		for sel, want := range map[string]string{
			"#initiator":                       app.SandboxInitiatorName,
			"#accounts h2":                     "Conta de origem",
			"#account-list legend":             "Escolha a conta de onde o dinheiro sairá nas transferências automáticas",
			"#account-list label.account span": "Conta corrente · ag. 0001 · conta 1234567",
		} {
			if got := jsValue[string](t, ph.ctx, `document.querySelector("`+sel+`").textContent.trim()`); got != want {
				t.Errorf("%s shows %q, want %q", sel, got, want)
			}
		}
		noEnglish(t, ph, "sweeping WebView")

		navs.reset()
		back := ph.decide(t, "approve", fintechDone)
		if back.Query().Get("id") != id || back.Query().Get("status") != "FINISHED" || back.Fragment != "" {
			t.Fatalf("back at the partner: %s", back)
		}
		// The holder sent the fragment to Ponte's callback page, whose
		// script posted it; only then did Ponte redirect to the partner.
		navs.expectInOrder(t, "approve", "GET /journey/callback#code=", "POST /journey/callback", "GET "+fintechDone+"?")
		if cb := navs.find("GET /journey/callback#"); !strings.Contains(cb, "id_token=") || !strings.Contains(cb, "state=") {
			t.Errorf("the holder's callback = %s, want code, id_token and state in the fragment", cb)
		}
		st, history, consentID := f.session(t, id)
		if st != "FINISHED" || strings.Join(history, ",") != "PENDING,AWAITING_AUTHORISATION,AUTHORISED,FINISHED" || !strings.HasPrefix(consentID, "urn:ponte:rc:") {
			t.Fatalf("session = %s %v %s", st, history, consentID)
		}
		var holderStatus string
		if err := s.App.DB.Read().QueryRow(`SELECT status FROM recurring_consents WHERE id = $1`, consentID).Scan(&holderStatus); err != nil || holderStatus != "AUTHORISED" {
			t.Errorf("recurring consent at the holder: %q %v", holderStatus, err)
		}
		itpCheckProblems(t, ph)
		t.Logf("approved journey session in %s", time.Since(start).Round(time.Millisecond))
	})

	t.Run("session cancelled at the holder", func(t *testing.T) {
		start := time.Now()
		id, _ := itpOpenSessionPage(t, ph, f, "chromium-holder-cancel")
		itpConfirmOnSessionPage(t, ph)
		itpLoginAtPartnerApp(t, ph, "sweeping")
		navs.reset()
		back := ph.decide(t, "cancel", fintechDone)
		if back.Query().Get("id") != id || back.Query().Get("status") != "REJECTED" {
			t.Fatalf("back at the partner: %s", back)
		}
		navs.expectInOrder(t, "cancel", "GET /journey/callback#", "POST /journey/callback", "GET "+fintechDone+"?")
		if cb := navs.find("GET /journey/callback#"); !strings.Contains(cb, "error=access_denied") || strings.Contains(cb, "code=") {
			t.Errorf("the holder's callback = %s, want error=access_denied and no code", cb)
		}
		if st, history, _ := f.session(t, id); st != "REJECTED" || strings.Join(history, ",") != "PENDING,AWAITING_AUTHORISATION,REJECTED" {
			t.Errorf("session after the holder's cancel: %s %v", st, history)
		}
		itpCheckProblems(t, ph)
		t.Logf("journey session cancelled at the holder in %s", time.Since(start).Round(time.Millisecond))
	})

	t.Run("session cancelled on the hosted page", func(t *testing.T) {
		start := time.Now()
		id, path := itpOpenSessionPage(t, ph, f, "chromium-page-cancel")
		navs.reset()
		back := ph.decide(t, "cancel", fintechDone)
		if back.Query().Get("id") != id || back.Query().Get("status") != "CANCELLED" {
			t.Fatalf("back at the partner: %s", back)
		}
		navs.expectInOrder(t, "cancel", "POST "+path+"/cancel", "GET "+fintechDone+"?")
		if hit := navs.find("GET /oauth/authorize"); hit != "" {
			t.Errorf("a cancelled session went to the brand: %s", hit)
		}
		if st, history, consentID := f.session(t, id); st != "CANCELLED" || strings.Join(history, ",") != "PENDING,CANCELLED" || consentID != "" {
			t.Errorf("session after the page's cancel: %s %v %q", st, history, consentID)
		}
		itpCheckProblems(t, ph)
		t.Logf("journey session cancelled on the hosted page in %s", time.Since(start).Round(time.Millisecond))
	})

	// The Brick payment initiation, by another partner of the same Ponte.
	brick, secret, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Brick fintech", CompanyKey: "BRICK-FINTECH",
		Scopes: []string{itpflow.ScopePaymentsAdmin}, RedirectURLs: []string{fintechCallback}})
	if err != nil {
		t.Fatal(err)
	}
	brickTok := map[string]string{"Authorization": "Bearer " + s.TokenFor(t, brick.ClientID, secret, "")}
	createBrick := func(t *testing.T) (string, string) {
		t.Helper()
		r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents", brickTok, brickConsentBody(s.Clock.Now(), s.App.SandboxBrandID))
		var out struct {
			Data struct{ ConsentID, AuthorizationURL string } `json:"data"`
		}
		if r.Status != 201 {
			t.Fatalf("consent: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &out)
		if out.Data.ConsentID == "" || !strings.HasPrefix(out.Data.AuthorizationURL, s.URL+"/oauth/authorize?") {
			t.Fatalf("consent = %+v", out.Data)
		}
		return out.Data.ConsentID, out.Data.AuthorizationURL
	}
	openBrick := func(t *testing.T, authorizationURL string) {
		t.Helper()
		resp, err := chromedp.Run(ph.ctx, chromedp.NavigateResponse(authorizationURL))
		if err != nil {
			t.Fatalf("open %s: %v", authorizationURL, err)
		}
		if u, _ := url.Parse(resp.URL); resp.Status != 200 || u == nil || u.Path != "/sandbox/partner-app" {
			t.Fatalf("authorizationUrl led the phone to %s (%d), want the sandbox partner app", resp.URL, resp.Status)
		}
		itpLoginAtPartnerApp(t, ph, "payment")
		if got := jsValue[string](t, ph.ctx, `document.getElementById("amount").textContent.trim()`); got != "R$ 1,15" {
			t.Errorf("#amount shows %q, want R$ 1,15", got)
		}
	}

	t.Run("brick approved", func(t *testing.T) {
		start := time.Now()
		consentID, authorizationURL := createBrick(t)
		openBrick(t, authorizationURL)
		back := ph.decide(t, "approve", fintechCallback)
		frag, err := url.ParseQuery(back.Fragment)
		if err != nil || frag.Get("code") == "" || frag.Get("id_token") == "" || frag.Get("state") == "" || frag.Get("error") != "" || back.RawQuery != "" {
			t.Fatalf("callback at the partner = %s (%v)", back, err)
		}
		r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents/callback", brickTok, fragmentCallback(back))
		if r.Status != 200 || !strings.Contains(string(r.Body), `"status":"AUTHORISED"`) || !strings.Contains(string(r.Body), `"flowStatus":"AUTHORISED"`) {
			t.Fatalf("callback: %d %s", r.Status, r.Body)
		}
		if a, err := s.App.ITPFlow.Authorization(t.Context(), brick.ID, consentID); err != nil || a.Status != itpflow.StatusAuthorised {
			t.Errorf("authorization = %+v %v", a, err)
		}
		itpCheckProblems(t, ph)
		t.Logf("approved Brick consent in %s", time.Since(start).Round(time.Millisecond))
	})

	t.Run("brick cancelled", func(t *testing.T) {
		start := time.Now()
		consentID, authorizationURL := createBrick(t)
		openBrick(t, authorizationURL)
		back := ph.decide(t, "cancel", fintechCallback)
		frag, err := url.ParseQuery(back.Fragment)
		if err != nil || frag.Get("error") != "access_denied" || frag.Get("state") == "" || frag.Get("code") != "" || frag.Get("id_token") != "" {
			t.Fatalf("callback at the partner = %s (%v)", back, err)
		}
		r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents/callback", brickTok, fragmentCallback(back))
		if r.Status != 200 || !strings.Contains(string(r.Body), `"flowStatus":"REJECTED"`) || !strings.Contains(string(r.Body), `"error":"access_denied"`) {
			t.Fatalf("cancelled callback: %d %s", r.Status, r.Body)
		}
		if a, err := s.App.ITPFlow.Authorization(t.Context(), brick.ID, consentID); err != nil || a.Status != itpflow.StatusRejected {
			t.Errorf("authorization = %+v %v", a, err)
		}
		itpCheckProblems(t, ph)
		t.Logf("cancelled Brick consent in %s", time.Since(start).Round(time.Millisecond))
	})

	// The partner's host saw only the five final navigations: the sessions'
	// redirectUrl with id and status, and the Brick callback URI, whose
	// fragment never travelled.
	hits := ph.initiatorHits()
	want := []string{fintechDone + "?", fintechDone + "?", fintechDone + "?", fintechCallback, fintechCallback}
	ok := len(hits) == len(want)
	for i := 0; ok && i < len(hits); i++ {
		ok = hits[i] == want[i] || (strings.HasSuffix(want[i], "?") && strings.HasPrefix(hits[i], want[i]))
	}
	if !ok {
		t.Errorf("requests to the partner's host = %q", hits)
	}
	ph.checkNoProblems(t) // anything that arrived after the last subtest's check
}

// itpOpenSessionPage creates a journey session as the partner and opens its
// journeySessionUrl in the phone: the hosted page offers the sandbox brand,
// preselected, and shows the session's limits. It returns the session id
// and the page's path (/journey/{journeyId}).
func itpOpenSessionPage(t *testing.T, p *phone, f *sessionFlow, externalID string) (string, string) {
	t.Helper()
	id, pageURL := f.create(t, externalID)
	u, err := url.Parse(pageURL)
	if err != nil || !strings.HasPrefix(pageURL, f.s.URL+"/journey/") || u.Query().Get("id") != id || u.Query().Get("token") == "" {
		t.Fatalf("journeySessionUrl = %s (%v)", pageURL, err)
	}
	resp, err := chromedp.Run(p.ctx, chromedp.NavigateResponse(pageURL))
	if err != nil {
		t.Fatalf("open %s: %v", pageURL, err)
	}
	if resp.Status != 200 {
		t.Fatalf("journey page: %d", resp.Status)
	}
	if err := chromedp.Do(p.ctx, chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("cancel"))); err != nil {
		t.Fatalf("the hosted journey page: %v", err)
	}
	if got := jsValue[string](t, p.ctx, `document.getElementById("journey-session").dataset.status`); got != "PENDING" {
		t.Errorf("hosted page status = %q, want PENDING", got)
	}
	if got := jsValue[string](t, p.ctx, `(document.querySelector('#brands input[name="brandId"]:checked')||{}).value||""`); got != f.s.App.SandboxBrandID {
		t.Errorf("preselected brand = %q, want the sandbox brand %s", got, f.s.App.SandboxBrandID)
	}
	if got := jsValue[string](t, p.ctx, `document.querySelector('#brands input[name="brandId"]:checked').closest("label").textContent`); !strings.Contains(got, app.SandboxBrandName) {
		t.Errorf("preselected brand shows %q, want %q", got, app.SandboxBrandName)
	}
	limits := jsValue[[]string](t, p.ctx, `Array.from(document.querySelectorAll("#limits li"), li => li.textContent.trim())`)
	if want := []string{"Limite por transferência: R$ 500,00", "Até 3 transferências por dia"}; !slices.Equal(limits, want) {
		t.Errorf("limits = %q, want %q", limits, want)
	}
	p.checkPhonePage(t, "hosted journey page")
	p.screenshot(t, "journey-session-"+externalID+".png")
	return id, u.Path
}

// itpConfirmOnSessionPage types the user's CPF and name on the hosted page,
// keeps the preselected brand and confirms: Ponte creates the consent at the
// brand and sends the phone to its /oauth/authorize, which opens the
// sandbox partner app.
func itpConfirmOnSessionPage(t *testing.T, p *phone) {
	t.Helper()
	if err := chromedp.Do(p.ctx,
		chromedp.SendKeys(chromedp.ID("document"), "47742663023"),
		chromedp.SendKeys(chromedp.ID("name"), "Maria da Silva"),
	); err != nil {
		t.Fatalf("fill the hosted page: %v", err)
	}
	resp, err := chromedp.RunResponse(p.ctx, chromedp.Tap(chromedp.ID("confirm")))
	if err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if u, _ := url.Parse(resp.URL); resp.Status != 200 || u == nil || u.Path != "/sandbox/partner-app" {
		t.Fatalf("confirm led the phone to %s (%d), want the sandbox partner app (message %q)", resp.URL, resp.Status,
			jsValue[string](t, p.ctx, `(document.getElementById("error")||{}).textContent||""`))
	}
}

// itpLoginAtPartnerApp logs in on the sandbox partner app page the phone
// shows, which opens the WebView; the WebView logs in by itself and shows
// the consent (kind "payment" or "sweeping") and the debtor account, chosen.
func itpLoginAtPartnerApp(t *testing.T, p *phone, kind string) {
	t.Helper()
	p.loginAtPartnerApp(t)
	if got := jsValue[string](t, p.ctx, `(document.querySelector('#account-list input[name="debtor"]:checked')||{dataset:{}}).dataset.account||""`); !strings.Contains(got, `"number":"1234567"`) {
		t.Errorf("chosen account = %q, want 1234567", got)
	}
	want := map[string]string{"payment": "amount", "sweeping": "sweeping-creditors"}[kind]
	if !jsValue[bool](t, p.ctx, `document.getElementById("`+want+`") !== null`) {
		t.Errorf("the WebView does not show a %s consent (no #%s)", kind, want)
	}
	p.checkPhonePage(t, "WebView")
}

// itpCheckProblems fails t on the console errors, exceptions and CSP
// violations collected so far, and forgets them: each subtest answers for
// its own pages.
func itpCheckProblems(t *testing.T, p *phone) {
	t.Helper()
	p.mu.Lock()
	problems := p.problems
	p.problems = nil
	p.mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("console errors, exceptions or CSP violations:\n%s", strings.Join(problems, "\n"))
	}
}

// itpDocuments records the phone's document requests, redirects included,
// as "METHOD URL" with Ponte's own URL shortened to its path and the
// fragment kept.
type itpDocuments struct {
	mu   sync.Mutex
	reqs []string
}

func itpRecordDocuments(t *testing.T, p *phone) *itpDocuments {
	t.Helper()
	d := &itpDocuments{}
	err := chromedp.Listen(p.ctx, func(ev any) {
		e, ok := ev.(*network.EventRequestWillBeSent)
		if !ok || e.Type != network.ResourceTypeDocument || e.Request == nil {
			return
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		d.reqs = append(d.reqs, e.Request.Method+" "+e.Request.URL+e.Request.URLFragment)
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *itpDocuments) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reqs = nil
}

func (d *itpDocuments) snapshot() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.reqs)
}

// itpLocal strips the scheme and host of requests to Ponte (http://127.0.0.1:…).
func itpLocal(req string) string {
	method, u, _ := strings.Cut(req, " ")
	if rest, ok := strings.CutPrefix(u, "http://"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return method + " " + rest[i:]
		}
	}
	return req
}

// find returns the first recorded request starting with prefix, or "".
func (d *itpDocuments) find(prefix string) string {
	for _, r := range d.snapshot() {
		if strings.HasPrefix(itpLocal(r), prefix) {
			return itpLocal(r)
		}
	}
	return ""
}

// expectInOrder checks the recorded requests include ones starting with
// each prefix, in that order.
func (d *itpDocuments) expectInOrder(t *testing.T, step string, prefixes ...string) {
	t.Helper()
	reqs := d.snapshot()
	i := 0
	for _, r := range reqs {
		if i < len(prefixes) && strings.HasPrefix(itpLocal(r), prefixes[i]) {
			i++
		}
	}
	if i < len(prefixes) {
		local := make([]string, len(reqs))
		for j, r := range reqs {
			local[j] = itpLocal(r)
		}
		t.Errorf("%s: navigations %q lack %q (in order %q)", step, local, prefixes[i], prefixes)
	}
}

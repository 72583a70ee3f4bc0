package app_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestMoneyMovesInChromium is issue 15 §5 in one in-process Ponte, on
// SQLite and on PostgreSQL, with the user's part in a real browser (an
// emulated iPhone):
//
//   - sweeping: the partner creates an Open Keys journey session; the phone
//     opens journeySessionUrl, picks the sandbox bank on the hosted page,
//     goes through the holder's authorize, the sandbox partner app and the
//     WebView, logs in as Maria and approves; the callback sends it to the
//     partner's redirectUrl with FINISHED. The partner then creates three
//     transfers to her savings account over HTTP, each followed to ACSC
//     while the job queue runs (checking debited, savings credited);
//     the fourth of the day ends RJCT LIMITE_PERIODO_QUANTIDADE_EXCEDIDO;
//   - Brick (seed 002): a consent created over the admin API, approved in
//     the phone, its fragment posted back; the payment reaches ACSC;
//   - a Brick consent for more than Maria holds, approved the same way,
//     ends RJCT SALDO_INSUFICIENTE and moves nothing;
//   - Maria then shares her checking account with a receiver (Consents v3,
//     the journey as data_e2e_test.go runs it), which reads, with that
//     consent's token, a balance lower by exactly the four settled amounts
//     and the four PIX ENVIADO transactions under their endToEndIds, and not
//     the rejected ones.
//
// Every page must be free of console errors, exceptions and CSP violations.
// It runs when chromium is on PATH (CI installs it).
func TestMoneyMovesInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not on PATH")
	}
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			start := time.Now()
			// The fake clock starts at the wall clock: the authorization
			// server checks client assertions against the wall clock.
			f := newSessionFlow(t, e.URL(t))
			s := f.s
			t.Cleanup(func() {
				if t.Failed() { // what Ponte logged above INFO, for the reason of a failed step
					for _, l := range s.Logs.Lines() {
						if l["level"] != "INFO" && l["level"] != "DEBUG" {
							t.Logf("ponte: %v", l)
						}
					}
				}
			})
			ph := startPhone(t, chromium, fintechDone) // intercepts https://fintech.example/*, the callback's host too
			before := availableCents(t, s, sandboxChecking)
			savings := availableCents(t, s, sandboxSavings)
			settled := map[string]string{} // endToEndId → amount, of what settled
			rejected := []string{}         // endToEndIds of what did not

			// Sweeping: the journey in the phone.
			id, _ := itpOpenSessionPage(t, ph, f, "money-moves")
			itpConfirmOnSessionPage(t, ph)
			itpLoginAtPartnerApp(t, ph, "sweeping")
			back := ph.decide(t, "approve", fintechDone)
			if back.Query().Get("id") != id || back.Query().Get("status") != "FINISHED" {
				t.Fatalf("back at the partner: %s", back)
			}
			if st, history, consentID := f.session(t, id); st != "FINISHED" || strings.Join(history, ",") != "PENDING,AWAITING_AUTHORISATION,AUTHORISED,FINISHED" ||
				!strings.HasPrefix(consentID, "urn:ponte:rc:") {
				t.Fatalf("session = %s %v %s", st, history, consentID)
			}
			itpCheckProblems(t, ph)
			t.Logf("%s: sweeping consent approved in Chromium after %s", e.Name, time.Since(start).Round(time.Millisecond))

			// The partner moves money under it: three transfers settle,
			// one at a time (the holder counts the day's transfers in order).
			for i, amount := range []string{"10.00", "20.00", "30.00"} {
				tr := moneyTransfer(t, f, id, "money-"+strconv.Itoa(i), amount)
				if tr.Status != itpflow.PaymentACSC || tr.PaymentID == "" || tr.EndToEndID == "" {
					t.Fatalf("transfer %s = %+v (error %q), want ACSC", amount, tr, tr.Error)
				}
				settled[tr.EndToEndID] = amount
			}
			if got := before - availableCents(t, s, sandboxChecking); got != 6000 {
				t.Errorf("after three transfers Maria's balance moved by %d cents, want 6000", got)
			}
			if got := availableCents(t, s, sandboxSavings) - savings; got != 6000 {
				t.Errorf("after three transfers Maria's savings grew by %d cents, want 6000", got)
			}
			fourth := moneyTransfer(t, f, id, "money-3", "5.00")
			if fourth.Status != itpflow.PaymentRJCT || fourth.RejectionReason == nil || fourth.RejectionReason.Code != "LIMITE_PERIODO_QUANTIDADE_EXCEDIDO" {
				t.Fatalf("fourth transfer of the day = %+v (reason %+v), want RJCT LIMITE_PERIODO_QUANTIDADE_EXCEDIDO", fourth, fourth.RejectionReason)
			}
			rejected = append(rejected, fourth.EndToEndID)
			if got := before - availableCents(t, s, sandboxChecking); got != 6000 {
				t.Errorf("after the refused fourth transfer Maria's balance moved by %d cents, want 6000", got)
			}
			t.Logf("%s: transfers settled after %s", e.Name, time.Since(start).Round(time.Millisecond))

			// Brick: another partner of the same Ponte; the user approves in
			// the phone, the partner posts the fragment back.
			brick, secret, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Brick fintech", CompanyKey: "BRICK-FINTECH",
				Scopes: []string{itpflow.ScopePaymentsAdmin}, RedirectURLs: []string{fintechCallback}})
			if err != nil {
				t.Fatal(err)
			}
			brickClient := func() map[string]string {
				return map[string]string{"Authorization": "Bearer " + s.TokenFor(t, brick.ClientID, secret, "")}
			}
			p := moneyBrick(t, s, ph, brickClient, "1.15", "R$ 1,15")
			if p.Status != itpflow.PaymentACSC || p.PaymentID == "" {
				t.Fatalf("Brick payment = %+v (error %q), want ACSC", p, p.Error)
			}
			settled[p.EndToEndID] = "1.15"
			if got := before - availableCents(t, s, sandboxChecking); got != 6115 {
				t.Errorf("after the Brick payment Maria's balance moved by %d cents, want 6115", got)
			}

			// More than Maria holds: approved, refused by the holder's ledger.
			p = moneyBrick(t, s, ph, brickClient, "20000000.00", "R$ 20.000.000,00")
			if p.Status != itpflow.PaymentRJCT || p.RejectionReason == nil || p.RejectionReason.Code != "SALDO_INSUFICIENTE" {
				t.Fatalf("payment beyond the balance = %+v (reason %+v), want RJCT SALDO_INSUFICIENTE", p, p.RejectionReason)
			}
			rejected = append(rejected, p.EndToEndID)
			if got := before - availableCents(t, s, sandboxChecking); got != 6115 {
				t.Errorf("after the rejected payment Maria's balance moved by %d cents, want still 6115", got)
			}
			t.Logf("%s: Brick payments final after %s", e.Name, time.Since(start).Round(time.Millisecond))

			// What a receiver Maria shares her checking account with reads.
			moneyStatement(t, s, before-6115, settled, rejected)

			// The partner's host saw the session's redirectUrl and the two
			// Brick callbacks, and nothing else.
			if hits := ph.initiatorHits(); len(hits) != 3 || !strings.HasPrefix(hits[0], fintechDone+"?") || hits[1] != fintechCallback || hits[2] != fintechCallback {
				t.Errorf("requests to the partner's host = %q", hits)
			}
			ph.checkNoProblems(t)
			t.Logf("%s: end to end in %s", e.Name, time.Since(start).Round(time.Millisecond))
		})
	}
}

// moneySavings is Maria's savings account at the sandbox holder, where the
// sweeping transfers go: sweeping moves money between the user's own
// accounts, and the ledger credits a creditor it holds.
const moneySavings = `{"ispb":"37241230","issuer":"0001","number":"` + sandboxSavings + `","accountType":"SVGS"}`

// moneyTransfer creates a sweeping transfer to Maria's savings account under the session and runs the
// job queue until it is final; it returns the transfer as the partner then
// reads it.
func moneyTransfer(t *testing.T, f *sessionFlow, sessionID, externalID, amount string) transferRead {
	t.Helper()
	s := f.s
	var created transferRead
	body := strings.Replace(fmt.Sprintf(sweepingTransfer, sessionID, externalID, amount),
		`{"ispb":"11222333","issuer":"0001","number":"9876543","accountType":"CACC"}`, moneySavings, 1)
	r := s.Do(t, "POST", itpflow.TransfersPath, f.tok, body)
	if r.JSON(t, &created); r.Status != 200 || created.ID == "" || created.Status != itpflow.PaymentPending || created.EndToEndID == "" {
		t.Fatalf("transfer %s: %d %s", externalID, r.Status, r.Body)
	}
	var read transferRead
	settle(t, s, func() bool {
		r := s.Do(t, "GET", itpflow.TransfersPath+"/"+created.ID, f.tok, "")
		if r.Status == http.StatusUnauthorized { // the fake clock outran the partner's token
			f.renewToken(t)
			r = s.Do(t, "GET", itpflow.TransfersPath+"/"+created.ID, f.tok, "")
		}
		read = transferRead{}
		r.JSON(t, &read)
		return itpflow.FinalPayment(read.Status)
	})
	if read.ID != created.ID || read.EndToEndID != created.EndToEndID {
		t.Fatalf("transfer %s read as %+v, created as %+v", externalID, read, created)
	}
	return read
}

// moneyPayment is one payment of a Brick consent, as the partner reads it.
type moneyPayment struct {
	PaymentID       string `json:"paymentId"`
	EndToEndID      string `json:"endToEndId"`
	Status          string `json:"status"`
	Error           string `json:"error"`
	RejectionReason *struct {
		Code string `json:"code"`
	} `json:"rejectionReason"`
}

// moneyBrick creates a seed 002 consent for amount at the sandbox brand,
// approves it in the phone (the WebView must show shown), posts the
// fragment back and runs the job queue until its payment is final.
func moneyBrick(t *testing.T, s *apptest.Server, ph *phone, tok func() map[string]string, amount, shown string) moneyPayment {
	t.Helper()
	body := strings.Replace(brickConsentBody(s.Clock.Now(), s.App.SandboxBrandID), `"amount":"1.15"`, `"amount":"`+amount+`"`, 1)
	r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents", tok(), body)
	var created struct {
		Data struct{ ConsentID, AuthorizationURL string } `json:"data"`
	}
	if r.JSON(t, &created); r.Status != 201 || created.Data.ConsentID == "" {
		t.Fatalf("consent for %s: %d %s", amount, r.Status, r.Body)
	}
	resp, err := chromedp.Run(ph.ctx, chromedp.NavigateResponse(created.Data.AuthorizationURL))
	if err != nil {
		t.Fatalf("open %s: %v", created.Data.AuthorizationURL, err)
	}
	if u, _ := url.Parse(resp.URL); resp.Status != 200 || u == nil || u.Path != "/sandbox/partner-app" {
		t.Fatalf("authorizationUrl led the phone to %s (%d), want the sandbox partner app", resp.URL, resp.Status)
	}
	itpLoginAtPartnerApp(t, ph, "payment")
	if got := jsValue[string](t, ph.ctx, `document.getElementById("amount").textContent.trim()`); got != shown {
		t.Errorf("#amount shows %q, want %q", got, shown)
	}
	back := ph.decide(t, "approve", fintechCallback)
	r = s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents/callback", tok(), fragmentCallback(back))
	if r.Status != 200 || !strings.Contains(string(r.Body), `"flowStatus":"AUTHORISED"`) {
		t.Fatalf("callback: %d %s", r.Status, r.Body)
	}
	itpCheckProblems(t, ph)
	var read struct {
		Data struct {
			Payments []moneyPayment `json:"payments"`
		} `json:"data"`
	}
	settle(t, s, func() bool {
		read.Data.Payments = nil
		s.Do(t, "GET", "/api/admin/payment-initiation/v1/consents/"+created.Data.ConsentID, tok(), "").JSON(t, &read)
		return len(read.Data.Payments) == 1 && itpflow.FinalPayment(read.Data.Payments[0].Status)
	})
	if len(read.Data.Payments) != 1 || read.Data.Payments[0].EndToEndID == "" {
		t.Fatalf("consent %s: payments %+v", created.Data.ConsentID, read.Data.Payments)
	}
	return read.Data.Payments[0]
}

// moneyStatement runs Maria's data-sharing journey for her checking account
// (a receiver with the demo partner's client id, as in data_e2e_test.go,
// its consent valid for 90 days of the fake clock) and reads, with that
// consent's token: the available balance (wantCents) and today's
// statement, where each settled endToEndId is a PIX ENVIADO debit of its
// amount and no rejected one appears.
func moneyStatement(t *testing.T, s *apptest.Server, wantCents int64, settled map[string]string, rejected []string) {
	t.Helper()
	in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
	rc := newReceiver(s)
	accountID := sandboxAccountIDs(t, s)[sandboxChecking]
	expires := s.Clock.Now().UTC().AddDate(0, 0, 90).Format("2006-01-02T15:04:05Z")
	consentID := rc.createConsent(t, strings.Replace(receiverConsentBody, "2025-04-15T18:55:15Z", expires, 1))
	req := oidctest.NewRequest(consentID)
	j, wv := openPhoneJourney(t, s, in, consentID, req, authorizeURL(s, in, pushPAR(t, s, in, req, receiverScope(consentID))))
	expectInPage(t, wv.body, `data-kind="data"`, "<strong>Saldos</strong>", "<strong>Extratos</strong>")
	if r := j.step(t, wv.interactionID, "login", loginBody(wv.loginToken)); r.Status != 200 {
		t.Fatalf("data journey login: %d %s", r.Status, r.Body)
	}
	checking := `{"ispb":"37241230","issuer":"0001","number":"` + sandboxChecking + `","accountType":"CACC"}`
	r := j.step(t, wv.interactionID, "consent", `{"partialApproval":false,"debtorAccount":`+checking+`,"accounts":[`+checking+`],"device":`+device+`}`)
	var approved consentflow.InteractionJSON
	if r.JSON(t, &approved); r.Status != 200 || approved.Status != consentflow.InteractionApproved || approved.RedirectURI == "" {
		t.Fatalf("data journey approve: %d %s", r.Status, r.Body)
	}
	token := redeemDataCode(t, s, in, req, location(t, j.get(t, approved.RedirectURI)))

	status, body := rc.call(t, http.MethodGet, dataapi.AccountsPath+"/"+accountID+"/balances", token, "")
	want := fmt.Sprintf("%d.%02d", wantCents/100, wantCents%100)
	if status != 200 || dig(body, "data", "availableAmount", "amount") != want {
		t.Errorf("balances: %d %v, want availableAmount %s", status, body, want)
	}

	today := s.Clock.Now().In(time.FixedZone("BRT", -3*3600))
	q := url.Values{"fromBookingDate": {today.AddDate(0, 0, -1).Format("2006-01-02")}, "toBookingDate": {today.AddDate(0, 0, 1).Format("2006-01-02")},
		"page-size": {"1000"}}
	status, body = rc.call(t, http.MethodGet, dataapi.AccountsPath+"/"+accountID+"/transactions?"+q.Encode(), token, "")
	if status != 200 {
		t.Fatalf("transactions: %d %v", status, body)
	}
	listed := map[string]map[string]any{}
	for _, tr := range dataItems(body) {
		id, _ := tr["transactionId"].(string)
		listed[id] = tr
	}
	for e2e, amount := range settled {
		tr := listed[e2e]
		if tr == nil {
			t.Errorf("the statement lacks the settled payment %s (listed: %d transactions)", e2e, len(listed))
			continue
		}
		if tr["creditDebitType"] != "DEBITO" || tr["type"] != "PIX" || tr["transactionName"] != "PIX ENVIADO" ||
			dig(tr, "transactionAmount", "amount") != amount || tr["completedAuthorisedPaymentType"] != "TRANSACAO_EFETIVADA" {
			t.Errorf("statement entry %s = %v, want a PIX ENVIADO debit of %s", e2e, tr, amount)
		}
	}
	for _, e2e := range rejected {
		if listed[e2e] != nil {
			t.Errorf("the statement lists the rejected payment %s: %v", e2e, listed[e2e])
		}
	}
}

package app_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

// Issue 15 §4 through the real in-process holder: Ponte's initiator side
// initiates the payment at the sandbox brand — Ponte's own holder side,
// reached only over HTTP — which settles it in the sandbox ledger, and the
// initiator follows it to its final status.

// settle runs due jobs of both sides, a few seconds of fake time apart,
// until done reports true or rounds run out.
func settle(t *testing.T, s *apptest.Server, done func() bool) {
	t.Helper()
	for range 100 {
		if _, err := s.App.Jobs.RunDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if done() {
			return
		}
		// The authorization server checks the initiator's client assertions
		// (signed on the fake clock) against the wall clock with 30 s of
		// leeway: the fake clock runs ahead at most 15 s (wallClock keeps it
		// from falling behind).
		if time.Until(s.Clock.Now()) < 15*time.Second {
			s.Clock.Advance(2 * time.Second)
		} else {
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// availableCents is the available balance of a sandbox account, in cents.
func availableCents(t *testing.T, s *apptest.Server, number string) int64 {
	t.Helper()
	var amount string
	if err := s.App.DB.Read().QueryRowContext(t.Context(), `SELECT b.available_amount FROM account_balances b
		JOIN accounts a ON a.id = b.account_id WHERE a.number = $1`, number).Scan(&amount); err != nil {
		t.Fatalf("balance of %s: %v", number, err)
	}
	whole, frac, _ := strings.Cut(amount, ".")
	frac = (frac + "00")[:2]
	cents, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		t.Fatalf("balance %q: %v", amount, err)
	}
	return cents
}

type consentRead struct {
	Data struct {
		ConsentID  string `json:"consentId"`
		FlowStatus string `json:"flowStatus"`
		Payments   []struct {
			PaymentID       string `json:"paymentId"`
			EndToEndID      string `json:"endToEndId"`
			Status          string `json:"status"`
			Error           string `json:"error"`
			RejectionReason *struct {
				Code string `json:"code"`
			} `json:"rejectionReason"`
		} `json:"payments"`
	} `json:"data"`
}

// TestBrickPaymentReachesFinalStatus: Brick consent → the user approves in
// the WebView → callback → Ponte creates the Pix payment at the sandbox
// brand → the holder settles it in the ledger → ACSC at the initiator, the
// debtor's balance lower by exactly the amount; an amount beyond the
// balance ends RJCT with SALDO_INSUFICIENTE and leaves the balance alone.
func TestBrickPaymentReachesFinalStatus(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), Clock: wallClock(t)})
			fintech, tok := brickFintech(t, s)
			hooks := subscribe(t, s, fintech.ID, itpflow.EventPaymentInitiationStatusChanged)
			pay := func(amount string) consentRead {
				t.Helper()
				body := strings.Replace(brickConsentBody(s.Clock.Now(), s.App.SandboxBrandID), `"amount":"1.15"`, `"amount":"`+amount+`"`, 1)
				r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents", tok, body)
				var created consentRead
				var out struct {
					Data struct {
						AuthorizationURL string `json:"authorizationUrl"`
					} `json:"data"`
				}
				r.JSON(t, &out)
				r.JSON(t, &created)
				if r.Status != 201 {
					t.Fatalf("consent: %d %s", r.Status, r.Body)
				}
				back := apptest.NewSandboxUser("47742663023", "1234567").Decide(t, s, out.Data.AuthorizationURL, true)
				r = s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents/callback", tok, fragmentCallback(back))
				var cb consentRead
				r.JSON(t, &cb)
				if r.Status != 200 || cb.Data.FlowStatus != itpflow.StatusAuthorised || len(cb.Data.Payments) != 1 ||
					cb.Data.Payments[0].Status != itpflow.PaymentPending {
					t.Fatalf("callback: %d %s", r.Status, r.Body)
				}
				var read consentRead
				settle(t, s, func() bool {
					r := s.Do(t, "GET", "/api/admin/payment-initiation/v1/consents/"+created.Data.ConsentID, tok, "")
					read = consentRead{}
					r.JSON(t, &read)
					return len(read.Data.Payments) == 1 && itpflow.FinalPayment(read.Data.Payments[0].Status)
				})
				if len(read.Data.Payments) != 1 || read.Data.Payments[0].EndToEndID != cb.Data.Payments[0].EndToEndID {
					t.Fatalf("read = %+v", read.Data)
				}
				return read
			}

			before := availableCents(t, s, "1234567")
			read := pay("1.15")
			p := read.Data.Payments[0]
			if p.Status != itpflow.PaymentACSC || p.PaymentID == "" {
				t.Fatalf("payment = %+v, want ACSC with the brand's paymentId", p)
			}
			var holderStatus string
			if err := s.App.DB.Read().QueryRowContext(t.Context(), `SELECT status FROM pix_payments WHERE id = $1 AND end_to_end_id = $2`,
				p.PaymentID, p.EndToEndID).Scan(&holderStatus); err != nil || holderStatus != "ACSC" {
				t.Errorf("the holder's payment: %q %v", holderStatus, err)
			}
			if after := availableCents(t, s, "1234567"); before-after != 115 {
				t.Errorf("Maria's balance moved by %d cents, want 115", before-after)
			}
			settle(t, s, func() bool { return strings.Contains(hooks.statuses(p.EndToEndID), "ACSC") })
			if got := hooks.statuses(p.EndToEndID); got != "PENDING,ACCP,ACSC" {
				t.Errorf("webhook events for the payment: %s, want PENDING,ACCP,ACSC", got)
			}

			before = availableCents(t, s, "1234567")
			// Far beyond Maria's balance.
			read = pay("20000000.00")
			p = read.Data.Payments[0]
			if p.Status != itpflow.PaymentRJCT || p.RejectionReason == nil || p.RejectionReason.Code != "SALDO_INSUFICIENTE" {
				t.Errorf("payment beyond the balance = %+v (reason %+v), want RJCT SALDO_INSUFICIENTE", p, p.RejectionReason)
			}
			if after := availableCents(t, s, "1234567"); after != before {
				t.Errorf("a rejected payment moved the balance by %d cents", before-after)
			}
		})
	}
}

const sweepingTransfer = `{"journeySessionId":"%s","externalId":"%s","amount":"%s",
	"creditorAccount":{"ispb":"11222333","issuer":"0001","number":"9876543","accountType":"CACC"},
	"riskSignals":{"manual":{"deviceId":"d-1","osVersion":"17","userTimeZoneOffset":"-03","language":"pt",
	  "screenDimensions":{"height":2532,"width":1170},"accountTenure":"2023-01-01"}}}`

type transferRead struct {
	ID              string `json:"id"`
	Status          string `json:"status"`
	EndToEndID      string `json:"endToEndId"`
	PaymentID       string `json:"recurringPaymentId"`
	Error           string `json:"error"`
	RejectionReason *struct {
		Code string `json:"code"`
	} `json:"rejectionReason"`
}

// TestSweepingTransfersReachFinalStatus: journey session authorised in the
// WebView (a daily limit of 3 transfers) → three transfers through the Open
// Keys endpoint settle (ACSC, Maria's balance lower by their sum), the
// fourth of the day is refused by the holder with its limit code, a repeated
// externalId is the same transfer; the third goes through after Ponte
// renewed the expired access token with the brand's refresh token.
func TestSweepingTransfersReachFinalStatus(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			f := newSessionFlow(t, e.URL(t))
			s := f.s
			hooks := subscribe(t, s, fintechOf(t, f), itpflow.EventSweepingTransferStatusChanged)
			id, pageURL := f.create(t, "sweep-1")
			back := f.user.Decide(t, s, f.confirm(t, pageURL), true)
			if resp, page := f.callback(t, back); resp.StatusCode != 303 {
				t.Fatalf("callback: %d %s", resp.StatusCode, page)
			}
			if st, _, _ := f.session(t, id); st != "FINISHED" {
				t.Fatalf("session %s", st)
			}
			transfer := func(externalID, amount string) transferRead {
				t.Helper()
				r := s.Do(t, "POST", itpflow.TransfersPath, f.tok, fmt.Sprintf(sweepingTransfer, id, externalID, amount))
				var out transferRead
				r.JSON(t, &out)
				if r.Status != 200 || out.ID == "" {
					t.Fatalf("transfer %s: %d %s", externalID, r.Status, r.Body)
				}
				return out
			}
			read := func(id string) transferRead {
				t.Helper()
				var out transferRead
				r := s.Do(t, "GET", itpflow.TransfersPath+"/"+id, f.tok, "")
				if r.Status == 401 { // the fake clock outran the partner's token
					f.renewToken(t)
					r = s.Do(t, "GET", itpflow.TransfersPath+"/"+id, f.tok, "")
				}
				r.JSON(t, &out)
				return out
			}
			final := func(ids ...string) {
				t.Helper()
				settle(t, s, func() bool {
					for _, id := range ids {
						if !itpflow.FinalPayment(read(id).Status) {
							return false
						}
					}
					return true
				})
			}

			before := availableCents(t, s, "1234567")
			var ids []string
			for i, amount := range []string{"10.00", "20.00", "30.00"} {
				renewed := func() {}
				if i == 2 {
					renewed = expireAccessToken(t, s, id)
				}
				ids = append(ids, transfer("t-"+strconv.Itoa(i), amount).ID)
				final(ids[i]) // one at a time: the holder counts the day's transfers in order
				renewed()
			}
			for _, id := range ids {
				if got := read(id); got.Status != itpflow.PaymentACSC || got.PaymentID == "" {
					t.Errorf("transfer %s = %+v, want ACSC", id, got)
				}
			}
			if again := transfer("t-0", "10.00"); again.ID != ids[0] {
				t.Errorf("repeated externalId: %s, want %s", again.ID, ids[0])
			}
			if r := s.Do(t, "POST", itpflow.TransfersPath, f.tok, fmt.Sprintf(sweepingTransfer, id, "t-0", "11.00")); r.Status != 409 ||
				!strings.Contains(string(r.Body), itpflow.MsgTransferExternalIDTaken) {
				t.Errorf("externalId with another body: %d %s", r.Status, r.Body)
			}
			settle(t, s, func() bool { return strings.Contains(hooks.statuses(read(ids[2]).EndToEndID), "ACSC") })
			if got := hooks.statuses(read(ids[0]).EndToEndID); !strings.HasSuffix(got, "ACSC") || !strings.HasPrefix(got, "PENDING") {
				t.Errorf("webhook events for the first transfer: %s", got)
			}
			if after := availableCents(t, s, "1234567"); before-after != 6000 {
				t.Errorf("Maria's balance moved by %d cents, want 6000", before-after)
			}

			fourth := transfer("t-3", "5.00")
			final(fourth.ID)
			var page struct {
				Data []transferRead `json:"data"`
			}
			f.renewToken(t)
			if r := s.Do(t, "GET", itpflow.TransfersPath+"?journeySessionId="+id+"&status=ACSC", f.tok, ""); r.Status != 200 {
				t.Errorf("list: %d %s", r.Status, r.Body)
			} else if r.JSON(t, &page); len(page.Data) != 3 || page.Data[0].ID != ids[2] {
				t.Errorf("settled transfers listed: %+v", page.Data)
			}
			if got := read(fourth.ID); got.Status != itpflow.PaymentRJCT || got.RejectionReason == nil ||
				got.RejectionReason.Code != "LIMITE_PERIODO_QUANTIDADE_EXCEDIDO" {
				t.Errorf("fourth transfer of the day = %+v (reason %+v), want RJCT LIMITE_PERIODO_QUANTIDADE_EXCEDIDO", got, got.RejectionReason)
			}

		})
	}
}

// expireAccessToken makes Ponte take the access token of a journey
// session's approval as expired, as it is 300 s after the approval: the
// next transfer must renew it with the refresh token at the brand. (The
// fake clock cannot stand in here: the authorization server checks client
// assertions against the wall clock.) The function it returns checks the
// token was renewed.
func expireAccessToken(t *testing.T, s *apptest.Server, sessionID string) func() {
	t.Helper()
	var authID, sealed string
	var refresh sql.NullString
	if err := s.App.DB.Read().QueryRowContext(t.Context(), `SELECT g.authorization_id, g.access_token, g.refresh_token FROM itp_grants g
		JOIN itp_authorizations a ON a.id = g.authorization_id WHERE a.session_id = $1`, sessionID).Scan(&authID, &sealed, &refresh); err != nil {
		t.Fatal(err)
	}
	if !refresh.Valid || refresh.String == "" {
		t.Fatal("the brand issued no refresh token with the code exchange")
	}
	err := s.App.DB.Write(t.Context(), func(tx *sql.Tx) error {
		_, err := tx.ExecContext(t.Context(), `UPDATE itp_grants SET access_expires_at = $1 WHERE authorization_id = $2`,
			s.Clock.Now().Add(-time.Second).UnixMilli(), authID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		var now string
		var expires int64
		if err := s.App.DB.Read().QueryRowContext(t.Context(), `SELECT access_token, access_expires_at FROM itp_grants WHERE authorization_id = $1`,
			authID).Scan(&now, &expires); err != nil {
			t.Fatal(err)
		}
		if now == sealed || !time.UnixMilli(expires).After(s.Clock.Now().Add(-2*time.Minute)) {
			t.Errorf("the access token was not renewed with the refresh token")
		}
	}
}

// hookLog is a partner's webhook receiver: the payment events it got.
type hookLog struct {
	mu     sync.Mutex
	events []map[string]any
}

// statuses lists, comma-separated, the statuses the events for endToEndId
// carried, in the order received.
func (h *hookLog) statuses(endToEndID string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, ev := range h.events {
		if data, _ := ev["data"].(map[string]any); data["endToEndId"] == endToEndID {
			out = append(out, fmt.Sprint(data["status"]))
		}
	}
	return strings.Join(out, ",")
}

// subscribe registers a receiver for the application's events named name.
func subscribe(t *testing.T, s *apptest.Server, applicationID, name string) *hookLog {
	t.Helper()
	h := &hookLog{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		_ = json.NewDecoder(r.Body).Decode(&ev)
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	if _, _, err := s.App.WebhookService.Create(t.Context(), applicationID, webhooks.CreateSubscription{URL: receiver.URL, Events: []string{name}}); err != nil {
		t.Fatal(err)
	}
	return h
}

// fintechOf is the id of the session flow's partner application.
func fintechOf(t *testing.T, f *sessionFlow) string {
	t.Helper()
	app, err := f.s.App.Apps.Get(t.Context(), f.clientID)
	if err != nil {
		t.Fatal(err)
	}
	return app.ID
}

// TestInitiatedPaymentSurvivesRestart: the callback records the payment and
// its creation job; a restart before any job ran loses nothing, and the
// payment reaches ACSC after it.
func TestInitiatedPaymentSurvivesRestart(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), Clock: wallClock(t)})
			_, tok := brickFintech(t, s)
			consentID := decideBrickConsent(t, s, tok, brickConsentBody(s.Clock.Now(), s.App.SandboxBrandID), true)

			s = s.Restart(t)
			var read consentRead
			settle(t, s, func() bool {
				read = consentRead{}
				s.Do(t, "GET", "/api/admin/payment-initiation/v1/consents/"+consentID, tok, "").JSON(t, &read)
				return len(read.Data.Payments) == 1 && itpflow.FinalPayment(read.Data.Payments[0].Status)
			})
			if len(read.Data.Payments) != 1 || read.Data.Payments[0].Status != itpflow.PaymentACSC {
				t.Fatalf("after the restart: %+v", read.Data)
			}
		})
	}
}

// TestScheduledBrickPaymentAccepted: a consent scheduled for tomorrow
// becomes a payment whose endToEndId carries that date at 15:00 UTC, which
// the holder accepts as SCHD; the initiator shows it SCHD. (Its execution a
// day later is the holder's test: the authorization server checks client
// assertions against the wall clock, which a test cannot move.)
func TestScheduledBrickPaymentAccepted(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{Clock: wallClock(t)})
	_, tok := brickFintech(t, s)
	brt := time.FixedZone("BRT", -3*3600)
	today := s.Clock.Now().In(brt).Format("2006-01-02")
	tomorrow := s.Clock.Now().In(brt).AddDate(0, 0, 1)
	body := strings.Replace(brickConsentBody(s.Clock.Now(), s.App.SandboxBrandID), `"date":"`+today+`"`,
		`"schedule":{"single":{"date":"`+tomorrow.Format("2006-01-02")+`"}}`, 1)
	consentID := decideBrickConsent(t, s, tok, body, true)
	var read consentRead
	settle(t, s, func() bool {
		read = consentRead{}
		s.Do(t, "GET", "/api/admin/payment-initiation/v1/consents/"+consentID, tok, "").JSON(t, &read)
		return len(read.Data.Payments) == 1 && read.Data.Payments[0].Status != itpflow.PaymentPending
	})
	if len(read.Data.Payments) != 1 {
		t.Fatalf("payments = %+v", read.Data)
	}
	p := read.Data.Payments[0]
	if p.Status != itpflow.PaymentSCHD || p.PaymentID == "" || !strings.HasPrefix(p.EndToEndID, "E11222333"+tomorrow.Format("20060102")+"1500") {
		t.Errorf("scheduled payment = %+v (error %q), want SCHD with an endToEndId for %s 15:00 UTC", p, p.Error, tomorrow.Format("2006-01-02"))
	}
}

package itpflow_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/internal/vault"
)

// events records the payments' status changes, as webhook events would be.
type events struct {
	mu   sync.Mutex
	seen map[string][]string // payment id → statuses in order
}

func (e *events) PaymentChanged(_ context.Context, _ *sql.Tx, p *itpflow.Payment) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.seen == nil {
		e.seen = map[string][]string{}
	}
	e.seen[p.ID] = append(e.seen[p.ID], p.Status)
	return nil
}

func (e *events) of(id string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.seen[id]...)
}

// initiator is Ponte's identity in these tests.
var initiator = itpflow.Initiator{CNPJ: "11222333000181", ISPB: "11222333"}

// withPayments gives h's flow its payments (tokens sealed with a fresh key,
// events recorded) and a job queue on h's clock.
func (h *harness) withPayments(t *testing.T) (*jobs.Client, *events) {
	t.Helper()
	v, err := vault.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	h.flow.Payments = &itpflow.Payments{DB: h.db, Clock: h.clock, Brands: h.flow.Brands, Vault: v, Initiator: initiator,
		Events: ev, Logger: discard()}
	jq := jobs.New(h.db, jobs.Config{Clock: h.clock, Logger: discard()})
	h.flow.Payments.Register(jq)
	return jq, ev
}

// drain runs due jobs, moving the clock a minute at a time, until none is
// left or rounds run out.
func drain(t *testing.T, h *harness, jq *jobs.Client, rounds int) {
	t.Helper()
	for range rounds {
		if _, err := jq.RunDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(time.Minute)
	}
}

// pixConsentBody is a Brick consent request for an immediate DICT payment.
func pixConsentBody(extra string) string {
	return `{"data":{"loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
		"creditor":{"personType":"PESSOA_NATURAL","cpfCnpj":"12345678909","name":"Marco Antonio de Brito"},
		"payment":{"type":"PIX","date":"2024-10-15","currency":"BRL","amount":"100.00","ibgeTownCode":"5300108",
		"details":{"localInstrument":"DICT","proxy":"12345678909",
		"creditorAccount":{"ispb":"12345678","issuer":"1774","number":"1234567890","accountType":"CACC"}}}},` +
		device + `,"specVersion":"v4","brandId":"` + brandID + `"` + extra + `}`
}

type brickRead struct {
	Data struct {
		ConsentID, FlowStatus string
		Payments              []struct {
			PaymentID, EndToEndID, Status, Error string
			RejectionReason                      *struct{ Code, Detail string }
		}
	} `json:"data"`
}

func getJSON(t *testing.T, srv *httptest.Server, path, token string, out any) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %d %s", path, res.StatusCode, b)
	}
	return res.StatusCode
}

// authoriseBrick creates a Brick consent through the endpoint, has the user
// approve it at the brand, and posts the callback; it returns the consent id.
func (h *harness) authoriseBrick(t *testing.T, srv *httptest.Server, body string) string {
	t.Helper()
	created := post(t, srv, "/api/admin/payment-initiation/v1/consents", "tok-1", body)
	if created.status != http.StatusCreated {
		t.Fatalf("consent: %d %+v", created.status, created.Errors)
	}
	req := h.brand.lastPushed()
	cb := post(t, srv, "/api/admin/payment-initiation/v1/consents/callback", "tok-1", callbackBody(h.genuine(req, h.brand.approve(req))))
	if cb.status != http.StatusOK || cb.Data.FlowStatus != itpflow.StatusAuthorised {
		t.Fatalf("callback: %d %+v %+v", cb.status, cb.Data, cb.Errors)
	}
	return created.Data.ConsentID
}

// TestBrickPaymentLifecycle: once the callback authorises the consent, Ponte
// creates the Pix payment at the brand — a JWT signed by Ponte for the
// payments URL (aud, iss, iat, jti), with the user's token, an idempotency
// key, an endToEndId Ponte generated and the consent's amount, creditor
// account, localInstrument, proxy and ibgeTownCode, valid against the
// official Payments v4 file — and follows it to ACSC; the consent's read
// endpoint and the events show each status.
func TestBrickPaymentLifecycle(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		jq, ev := h.withPayments(t)
		srv := h.brick(t)
		consentID := h.authoriseBrick(t, srv, pixConsentBody(`,"paymentOptions":{"remittanceInformation":"Pedido 42"}`))

		var read brickRead
		if code := getJSON(t, srv, "/api/admin/payment-initiation/v1/consents/"+consentID, "tok-1", &read); code != http.StatusOK ||
			len(read.Data.Payments) != 1 || read.Data.Payments[0].Status != itpflow.PaymentPending {
			t.Fatalf("before the job: %d %+v", code, read.Data)
		}
		e2e := read.Data.Payments[0].EndToEndID
		if !fapiclient.EndToEndIDPattern.MatchString(e2e) || !strings.HasPrefix(e2e, "E"+initiator.ISPB+"202410151855") {
			t.Errorf("endToEndId %q: want E + the initiator's ISPB + the submission minute in UTC", e2e)
		}

		drain(t, h, jq, 10)
		calls := h.brand.paymentCalls()
		if len(calls) != 1 {
			t.Fatalf("the brand received %d payment creations, want 1", len(calls))
		}
		c := calls[0]
		validateOfficial(t, "payments-4.0.0.yml", "CreatePixPayment", c.Claims)
		if c.Path != itpflow.PixPaymentsPath || c.IdempotencyKey == "" || c.InteractionID == "" ||
			c.Claims["aud"] != h.brand.issuer()+itpflow.PixPaymentsPath || c.Claims["iss"] != ponteClientID || c.Claims["jti"] == nil || c.Claims["iat"] == nil {
			t.Errorf("payment request: path %s key %q claims aud=%v iss=%v jti=%v", c.Path, c.IdempotencyKey, c.Claims["aud"], c.Claims["iss"], c.Claims["jti"])
		}
		items, _ := c.Claims["data"].([]any)
		if len(items) != 1 {
			t.Fatalf("data = %v", c.Claims["data"])
		}
		item := items[0].(map[string]any)
		want := map[string]any{"endToEndId": e2e, "localInstrument": "DICT", "proxy": "12345678909", "cnpjInitiator": initiator.CNPJ,
			"ibgeTownCode": "5300108", "consentId": consentID, "remittanceInformation": "Pedido 42"}
		for k, v := range want {
			if item[k] != v {
				t.Errorf("data[0].%s = %v, want %v", k, item[k], v)
			}
		}
		if p := item["payment"].(map[string]any); p["amount"] != "100.00" || p["currency"] != "BRL" {
			t.Errorf("payment = %v", p)
		}
		if ca := item["creditorAccount"].(map[string]any); ca["number"] != "1234567890" || ca["ispb"] != "12345678" {
			t.Errorf("creditorAccount = %v", ca)
		}

		read = brickRead{}
		getJSON(t, srv, "/api/admin/payment-initiation/v1/consents/"+consentID, "tok-1", &read)
		got := read.Data.Payments[0]
		if got.Status != itpflow.PaymentACSC || got.PaymentID == "" || got.EndToEndID != e2e {
			t.Fatalf("after the jobs: %+v", got)
		}
		var id string
		_ = db.Read().QueryRowContext(t.Context(), `SELECT id FROM itp_payments WHERE end_to_end_id = $1`, e2e).Scan(&id)
		if seen := strings.Join(ev.of(id), ","); seen != "PENDING,RCVD,ACCP,ACSC" {
			t.Errorf("events = %s, want PENDING,RCVD,ACCP,ACSC", seen)
		}
		// The tokens are kept sealed, never in clear.
		var access string
		_ = db.Read().QueryRowContext(t.Context(), `SELECT access_token FROM itp_grants`).Scan(&access)
		if access == "" || strings.HasPrefix(access, "at-") {
			t.Errorf("stored access token %q is not sealed", access)
		}
		// Another application does not see the consent.
		var other brickRead
		if code := getJSON(t, srv, "/api/admin/payment-initiation/v1/consents/"+consentID, "tok-2", &other); code != http.StatusNotFound {
			t.Errorf("another application reads the consent: %d", code)
		}
	})
}

// TestBrickPaymentRefusedAndRejected: a payment the brand refuses outright
// is RJCT with the brand's code; one the brand rejects later is RJCT with
// its rejectionReason; one Ponte cannot send because the token expired
// without a refresh token is FAILED, saying so.
func TestBrickPaymentRefusedAndRejected(t *testing.T) {
	t.Parallel()
	{
		tests := []struct {
			name       string
			setup      func(h *harness)
			wantStatus string
			wantCode   string
			wantError  string
		}{
			{"refused outright", func(h *harness) {
				h.brand.payRefuse = &refusal{http.StatusUnprocessableEntity,
					`{"errors":[{"code":"SALDO_INSUFICIENTE","title":"Saldo insuficiente","detail":"A conta selecionada não possui saldo suficiente"}],"meta":{"requestDateTime":"2024-10-15T18:55:15Z"}}`}
			}, itpflow.PaymentRJCT, "SALDO_INSUFICIENTE", ""},
			{"rejected after acceptance", func(h *harness) {
				h.brand.afterCreate = func(id string) { h.brand.payStatus[id] = []string{"RJCT"} }
			}, itpflow.PaymentRJCT, "SALDO_INSUFICIENTE", ""},
			{"token expired, no refresh token", func(h *harness) {
				h.clock.Advance(301 * time.Second)
			}, itpflow.PaymentFailed, "", "no refresh token"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				storetest.Each(t, func(t *testing.T, db *store.DB) {
					h := newHarness(t, db)
					jq, _ := h.withPayments(t)
					srv := h.brick(t)
					consentID := h.authoriseBrick(t, srv, pixConsentBody(""))
					tt.setup(h)
					drain(t, h, jq, 6)
					var read brickRead
					getJSON(t, srv, "/api/admin/payment-initiation/v1/consents/"+consentID, "tok-1", &read)
					got := read.Data.Payments[0]
					code := ""
					if got.RejectionReason != nil {
						code = got.RejectionReason.Code
					}
					if got.Status != tt.wantStatus || code != tt.wantCode || !strings.Contains(got.Error, tt.wantError) {
						t.Errorf("payment = %+v (reason %v), want %s %s %q", got, got.RejectionReason, tt.wantStatus, tt.wantCode, tt.wantError)
					}
				})
			})
		}
	}
}

// TestBrickScheduledPayments: a consent with a schedule becomes one payment
// per date in one request, each endToEndId carrying its date at 15:00 UTC.
func TestBrickScheduledPayments(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		jq, _ := h.withPayments(t)
		srv := h.brick(t)
		body := strings.Replace(pixConsentBody(""), `"date":"2024-10-15"`, `"schedule":{"daily":{"startDate":"2024-10-16","quantity":3}}`, 1)
		consentID := h.authoriseBrick(t, srv, body)
		drain(t, h, jq, 1)
		calls := h.brand.paymentCalls()
		if len(calls) != 1 {
			t.Fatalf("%d creations, want 1", len(calls))
		}
		validateOfficial(t, "payments-4.0.0.yml", "CreatePixPayment", calls[0].Claims)
		items, _ := calls[0].Claims["data"].([]any)
		if len(items) != 3 {
			t.Fatalf("%d items, want 3", len(items))
		}
		for i, it := range items {
			e2e := it.(map[string]any)["endToEndId"].(string)
			if want := "E" + initiator.ISPB + "2024101" + string(rune('6'+i)) + "1500"; !strings.HasPrefix(e2e, want) {
				t.Errorf("item %d endToEndId %s, want prefix %s", i, e2e, want)
			}
		}
		var read brickRead
		getJSON(t, srv, "/api/admin/payment-initiation/v1/consents/"+consentID, "tok-1", &read)
		if len(read.Data.Payments) != 3 {
			t.Errorf("the consent shows %d payments, want 3", len(read.Data.Payments))
		}
	})
}

// sessions is a journey-session reader with fixed sessions.
type sessions map[string]*itp.Session

func (s sessions) Session(_ context.Context, app, id string) (*itp.Session, error) {
	if sess, ok := s[id]; ok && sess.ApplicationID == app {
		return sess, nil
	}
	return nil, itp.ErrNotFound
}

// authoriseSweeping runs the flow of a journey session's recurring consent
// at the test brand, approved by the user, and returns the transfers
// service for app-1's session "sess-1".
func (h *harness) authoriseSweeping(t *testing.T) *itpflow.Transfers {
	t.Helper()
	body := `{"data":{"loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
		"creditors":[{"personType":"PESSOA_NATURAL","cpfCnpj":"47742663023","name":"Maria Silva"}],
		"recurringConfiguration":{"sweeping":{"transactionLimit":"500.00"}}}}`
	_, _, err := h.flow.Start(t.Context(), itpflow.StartRequest{ApplicationID: "app-1", Kind: itpflow.KindJourneySession, SessionID: "sess-1",
		BrandID: brandID, Collection: itpflow.RecurringConsentPath, Body: json.RawMessage(body), APIScope: "recurring-payments",
		RedirectURI: "https://ponte.example" + itpflow.CallbackPath, IdempotencyKey: "idem-s", Device: browser})
	if err != nil {
		t.Fatal(err)
	}
	req := h.brand.lastPushed()
	a, err := h.flow.Complete(t.Context(), itpflow.CompleteRequest{Callback: h.genuine(req, h.brand.approve(req)), Device: browser})
	if err != nil || a.Status != itpflow.StatusAuthorised {
		t.Fatalf("complete: %v %+v", err, a)
	}
	return &itpflow.Transfers{Flow: h.flow, Payments: h.flow.Payments,
		Sessions: sessions{"sess-1": {ID: "sess-1", ApplicationID: "app-1", Status: itp.StatusFinished},
			"sess-2": {ID: "sess-2", ApplicationID: "app-1", Status: itp.StatusAwaitingAuthorisation}}}
}

func transfer(externalID, amount string) itpflow.TransferRequest {
	return itpflow.TransferRequest{ApplicationID: "app-1", SessionID: "sess-1", ExternalID: externalID, Amount: amount,
		CreditorAccount: itpflow.CreditorAccount{ISPB: "11222333", Issuer: "0001", Number: "9876543", AccountType: "CACC"},
		RiskSignals:     json.RawMessage(`{"manual":{"deviceId":"d-1","osVersion":"14","userTimeZoneOffset":"-03","language":"pt","screenDimensions":{"height":2400,"width":1080},"accountTenure":"2023-01-01"}}`)}
}

// TestSweepingTransfers: a transfer under an authorised session's recurring
// consent is created at the brand (Automatic Payments v2, signed, with the
// consent's creditor as document and the user's token) and followed to
// ACSC; the same externalId with the same request is the same transfer,
// with another request a conflict; an unauthorised or unknown session and
// bad fields are refused before anything is recorded.
func TestSweepingTransfers(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		jq, ev := h.withPayments(t)
		tr := h.authoriseSweeping(t)
		ctx := t.Context()

		p, created, err := tr.Create(ctx, transfer("order-1", "25.00"))
		if err != nil || !created || p.Status != itpflow.PaymentPending {
			t.Fatalf("create: %v %v %+v", err, created, p)
		}
		again, created, err := tr.Create(ctx, transfer("order-1", "25.00"))
		if err != nil || created || again.ID != p.ID {
			t.Errorf("same externalId, same body: %v %v %+v", err, created, again)
		}
		if _, _, err := tr.Create(ctx, transfer("order-1", "26.00")); !errors.Is(err, itpflow.ErrExternalIDConflict) {
			t.Errorf("same externalId, other body: %v", err)
		}
		// Concurrent requests with one externalId record one transfer.
		var wg sync.WaitGroup
		ids := make([]string, 8)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if p, _, err := tr.Create(ctx, transfer("order-race", "5.00")); err == nil {
					ids[i] = p.ID
				} else {
					ids[i] = err.Error()
				}
			}()
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("concurrent creations answered %v", ids)
			}
		}
		var n int
		_ = db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM itp_payments WHERE external_id = 'order-race'`).Scan(&n)
		if n != 1 {
			t.Errorf("%d transfers recorded for one externalId", n)
		}
		refusals := []struct {
			name  string
			in    func() itpflow.TransferRequest
			field string
		}{
			{"session not authorised", func() itpflow.TransferRequest { r := transfer("x-1", "1.00"); r.SessionID = "sess-2"; return r }, "journeySessionId"},
			{"zero amount", func() itpflow.TransferRequest { return transfer("x-2", "0.00") }, "amount"},
			{"amount without cents", func() itpflow.TransferRequest { return transfer("x-3", "10") }, "amount"},
			{"bad ispb", func() itpflow.TransferRequest { r := transfer("x-4", "1.00"); r.CreditorAccount.ISPB = "123"; return r }, "creditorAccount.ispb"},
			{"no risk signals", func() itpflow.TransferRequest { r := transfer("x-5", "1.00"); r.RiskSignals = nil; return r }, "riskSignals"},
			{"creditor not in the consent", func() itpflow.TransferRequest { r := transfer("x-6", "1.00"); r.Document = "12345678909"; return r }, "document"},
		}
		for _, rf := range refusals {
			_, _, err := tr.Create(ctx, rf.in())
			var verr *itp.ValidationError
			if !errors.As(err, &verr) || verr.Fields[0].Field != rf.field {
				t.Errorf("%s: %v, want a validation error on %s", rf.name, err, rf.field)
			}
		}
		if _, _, err := tr.Create(ctx, func() itpflow.TransferRequest { r := transfer("x-7", "1.00"); r.SessionID = "nope"; return r }()); !errors.Is(err, itp.ErrNotFound) {
			t.Errorf("unknown session: %v", err)
		}

		drain(t, h, jq, 10)
		calls := h.brand.paymentCalls()
		if len(calls) != 2 { // order-1 and order-race
			t.Fatalf("%d creations at the brand, want 2", len(calls))
		}
		c := calls[0]
		if c.Claims["data"].(map[string]any)["endToEndId"] != p.EndToEndID {
			c = calls[1]
		}
		validateOfficial(t, "automatic-payments-2.0.0.yml", "CreateRecurringPixPayment", c.Claims)
		data := c.Claims["data"].(map[string]any)
		if c.Path != itpflow.RecurringPaymentsPath || data["endToEndId"] != p.EndToEndID || data["recurringConsentId"] != p.ConsentID ||
			data["date"] != "2024-10-15" || data["localInstrument"] != "MANU" || data["cnpjInitiator"] != initiator.CNPJ ||
			data["document"].(map[string]any)["identification"] != "47742663023" || data["riskSignals"] == nil {
			t.Errorf("recurring payment request: %s %v", c.Path, data)
		}
		got, err := tr.Transfer(ctx, "app-1", p.ID)
		if err != nil || got.Status != itpflow.PaymentACSC || got.PaymentID == "" {
			t.Fatalf("after the jobs: %v %+v", err, got)
		}
		if seen := strings.Join(ev.of(p.ID), ","); seen != "PENDING,RCVD,ACCP,ACSC" {
			t.Errorf("events = %s", seen)
		}
		if _, err := tr.Transfer(ctx, "app-2", p.ID); !errors.Is(err, itpflow.ErrTransferNotFound) {
			t.Errorf("another application reads the transfer: %v", err)
		}
	})
}

// TestSweepingTokenRefresh: days after the user authorised, the access
// token has long expired; Ponte redeems the refresh token the brand issued
// (kept sealed) and the transfer goes through. A brand that issued none
// leaves the transfer FAILED with the reason; one that refuses the refresh
// token, likewise. A brand that refuses the access token before its time
// (401) gets the same request again with a renewed one.
func TestSweepingTokenRefresh(t *testing.T) {
	t.Parallel()
	{
		tests := []struct {
			name      string
			refresh   bool
			revoke    bool
			forget    bool // the brand refuses the access token before its time
			want      string
			wantError string
		}{
			{"refresh token issued", true, false, false, itpflow.PaymentACSC, ""},
			{"no refresh token", false, false, false, itpflow.PaymentFailed, "issued no refresh token"},
			{"refresh token refused", true, true, false, itpflow.PaymentFailed, "refused the refresh token"},
			{"access token refused early, renewed", true, false, true, itpflow.PaymentACSC, ""},
			{"access token refused early, nothing to renew it with", false, false, true, itpflow.PaymentFailed, "issued no refresh token"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				storetest.Each(t, func(t *testing.T, db *store.DB) {
					h := newHarness(t, db)
					jq, _ := h.withPayments(t)
					h.brand.refreshTokens = tt.refresh
					tr := h.authoriseSweeping(t)
					h.brand.rejectRefresh = tt.revoke
					h.clock.Advance(72 * time.Hour)
					p, _, err := tr.Create(t.Context(), transfer("later-1", "10.00"))
					if err != nil {
						t.Fatal(err)
					}
					drain(t, h, jq, 10)
					got, _ := tr.Transfer(t.Context(), "app-1", p.ID)
					if got.Status != tt.want || !strings.Contains(got.Error, tt.wantError) {
						t.Errorf("transfer = %s %q, want %s %q", got.Status, got.Error, tt.want, tt.wantError)
					}
					if tt.refresh && !tt.revoke && len(h.brand.refreshes) != 1 {
						t.Errorf("%d refreshes, want 1", len(h.brand.refreshes))
					}
				})
			})
		}
	}
}

// TestPaymentSweepResumesReads: a payment whose read job ended without
// success (attempts exhausted while the brand was down) is read again by
// the sweep, and reaches its final status.
func TestPaymentSweepResumesReads(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		jq, _ := h.withPayments(t)
		tr := h.authoriseSweeping(t)
		p, _, err := tr.Create(t.Context(), transfer("stuck-1", "10.00"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jq.RunDue(t.Context()); err != nil { // created at the brand: RCVD, a read queued
			t.Fatal(err)
		}
		err = db.Write(t.Context(), func(tx *sql.Tx) error {
			_, err := tx.ExecContext(t.Context(), `UPDATE jobs SET state = 'discarded' WHERE kind = $1`, itpflow.JobPaymentPoll)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		drain(t, h, jq, 5)
		if got, _ := tr.Transfer(t.Context(), "app-1", p.ID); got.Status != "RCVD" {
			t.Fatalf("without its read job the transfer is %s, want RCVD", got.Status)
		}
		if err := h.flow.Payments.ScheduleSweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		drain(t, h, jq, 20)
		if got, _ := tr.Transfer(t.Context(), "app-1", p.ID); got.Status != itpflow.PaymentACSC {
			t.Errorf("after the sweep the transfer is %s, want ACSC", got.Status)
		}
	})
}

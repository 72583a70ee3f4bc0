package payments_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/settlement"
)

const pixPath = "/open-banking/payments/v4/pix/payments"

// mariaCPF and mariaAccount are the sandbox demo customer and her account
// (available balance 5320.47 in the sandbox ledger).
const (
	mariaCPF     = "47742663023"
	mariaAccount = "1234567"
)

// pixConsent is an immediate DICT consent of amount to a creditor outside
// Ponte; schedule, when not "", replaces "date" with a schedule object.
func pixConsent(amount, schedule string) string {
	when := `"date":"` + today + `"`
	if schedule != "" {
		when = `"schedule":` + schedule
	}
	return `{"data":{
  "loggedUser":{"document":{"identification":"` + mariaCPF + `","rel":"CPF"}},
  "creditor":{"personType":"PESSOA_NATURAL","cpfCnpj":"12345678909","name":"Marco Antonio de Brito"},
  "payment":{"type":"PIX",` + when + `,"currency":"BRL","amount":"` + amount + `","ibgeTownCode":"5300108",
    "details":{"localInstrument":"DICT","proxy":"12345678909",
      "creditorAccount":{"ispb":"12345678","issuer":"1774","number":"1234567890","accountType":"CACC"}}}}}`
}

// pixItem is one payment of a pixConsent consent, with endToEndId e2e.
func pixItem(e2e, amount string) map[string]any {
	return map[string]any{
		"endToEndId": e2e, "localInstrument": "DICT", "proxy": "12345678909", "cnpjInitiator": "50685362000135",
		"ibgeTownCode": "5300108", "remittanceInformation": "Pagamento da nota XPTO035-002.",
		"payment":         map[string]any{"amount": amount, "currency": "BRL"},
		"creditorAccount": map[string]any{"ispb": "12345678", "issuer": "1774", "number": "1234567890", "accountType": "CACC"},
	}
}

func pixBody(t testing.TB, items ...map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"data": items})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// e2eAt is an endToEndId for time at (UTC, minutes), unique per call.
func e2eAt(at time.Time) string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 11)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return "E12345678" + at.UTC().Format("200601021504") + string(b)
}

// scheduledE2E is the endToEndId of a Pix scheduled for date (15:00 UTC).
func scheduledE2E(t testing.TB, date string) string {
	t.Helper()
	d, err := time.Parse(time.DateOnly, date)
	if err != nil {
		t.Fatal(err)
	}
	return e2eAt(d.Add(15 * time.Hour))
}

// journeys remembers each server's registered test initiator (the demo
// application's client at the authorization server).
var journeys sync.Map

func initiator(t *testing.T, s *apptest.Server) *oidctest.Initiator {
	t.Helper()
	if in, ok := journeys.Load(s); ok {
		return in.(*oidctest.Initiator)
	}
	in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
	journeys.Store(s, in)
	return in
}

// authorised creates a consent (demo application, plain JSON), has Maria
// approve it with her account through the whole redirect journey, and
// returns its id and the authorization_code access token the initiator gets
// for it (scopes openid payments consent:{id}).
func authorised(t *testing.T, s *apptest.Server, consentBody string) (string, string) {
	t.Helper()
	id := create(t, s, s.Token(t, "payments"), "c-"+e2eAt(s.Clock.Now())[21:], consentBody).Data.ConsentID
	in := initiator(t, s)
	req := oidctest.NewRequest(id)
	resp := in.PAR(t, oidctest.NoRedirects(), s.URL, req)
	var par struct {
		RequestURI string `json:"request_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&par); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("par: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	authorize := s.URL + oidc.PathAuthorize + "?" + url.Values{"client_id": {in.ClientID}, "request_uri": {par.RequestURI}}.Encode()
	cb := apptest.NewSandboxUser(mariaCPF, mariaAccount).Decide(t, s, authorize, true)
	frag, _ := url.ParseQuery(cb.Fragment)
	status, tok := in.ExchangeCode(t, oidctest.NoRedirects(), s.URL, frag.Get("code"), req)
	access, _ := tok["access_token"].(string)
	if status != http.StatusOK || access == "" {
		t.Fatalf("code exchange: %d %v", status, tok)
	}
	return id, access
}

type pixResp struct {
	Data []struct {
		PaymentID       string                     `json:"paymentId"`
		EndToEndID      string                     `json:"endToEndId"`
		ConsentID       string                     `json:"consentId"`
		Status          string                     `json:"status"`
		RejectionReason *payments.PaymentRejection `json:"rejectionReason"`
		DebtorAccount   payments.Account           `json:"debtorAccount"`
	} `json:"data"`
	Links struct {
		Self string `json:"self"`
	} `json:"links"`
}

type onePixResp struct {
	Data struct {
		PaymentID       string                     `json:"paymentId"`
		Status          string                     `json:"status"`
		ConsentID       string                     `json:"consentId"`
		RejectionReason *payments.PaymentRejection `json:"rejectionReason"`
		Cancellation    *payments.Cancellation     `json:"cancellation"`
	} `json:"data"`
}

// postPix sends a plain JSON POST /pix/payments (the demo application may)
// after checking the body against the official CreatePixPayment schema.
func postPix(t *testing.T, s *apptest.Server, token, key, body string) *apptest.Response {
	t.Helper()
	validateSpec(t, nil, "CreatePixPayment", []byte(body))
	return s.Do(t, "POST", pixPath, headers(token, key), body)
}

// createPix posts body and expects 201, checked against the official schema.
func createPix(t *testing.T, s *apptest.Server, token, key, body string) pixResp {
	t.Helper()
	resp := postPix(t, s, token, key, body)
	if resp.Status != http.StatusCreated {
		t.Fatalf("create pix: status %d: %s", resp.Status, resp.Body)
	}
	validateSpec(t, s, "ResponseCreatePixPayment", resp.Body)
	var out pixResp
	resp.JSON(t, &out)
	return out
}

// getPix reads a payment with a client_credentials token.
func getPix(t *testing.T, s *apptest.Server, id string) onePixResp {
	t.Helper()
	resp := s.Do(t, "GET", pixPath+"/"+id, headers(s.Token(t, "payments"), ""), "")
	if resp.Status != http.StatusOK {
		t.Fatalf("get pix %s: %d %s", id, resp.Status, resp.Body)
	}
	validateSpec(t, s, "ResponsePixPayment", resp.Body)
	var out onePixResp
	resp.JSON(t, &out)
	return out
}

// checkPixError checks an error answer against the official schema of its
// status: 422ResponseErrorCreatePixPayments for POST's 422s,
// 422ResponseErrorCreatePixPayment for the PATCHes', ResponseError else.
func checkPixError(t *testing.T, s *apptest.Server, resp *apptest.Response, status int, code, schema422 string) {
	t.Helper()
	if resp.Status != status {
		t.Fatalf("status %d, want %d: %s", resp.Status, status, resp.Body)
	}
	var e errorResp
	resp.JSON(t, &e)
	if len(e.Errors) == 0 || e.Errors[0].Code != code {
		t.Fatalf("errors = %+v, want first code %s", e.Errors, code)
	}
	if resp.Header.Get("x-fapi-interaction-id") == "" {
		t.Error("no x-fapi-interaction-id")
	}
	schema := "ResponseError"
	if status == http.StatusUnprocessableEntity && schema422 != "" {
		schema = schema422
	}
	validateSpec(t, s, schema, resp.Body)
}

// runSettlement advances the clock past the worker's one-second batching
// and runs the due jobs.
func runSettlement(t *testing.T, s *apptest.Server) {
	t.Helper()
	s.Clock.Advance(2 * time.Second)
	if _, err := s.App.Jobs.RunDue(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func paymentStatus(t *testing.T, s *apptest.Server, id string) string {
	t.Helper()
	var st string
	if err := s.App.DB.Read().QueryRow(`SELECT status FROM pix_payments WHERE id = $1`, id).Scan(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// events lists the names and statuses of the webhook events emitted for a payment.
func pixEvents(t *testing.T, s *apptest.Server, paymentID string) []string {
	t.Helper()
	rows, err := s.App.DB.Read().Query(`SELECT body FROM webhook_events WHERE entity_id = $1 ORDER BY created_at, id`, paymentID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			t.Fatal(err)
		}
		var env struct {
			Name, ApplicationID string
			Data                map[string]any
		}
		_ = json.Unmarshal([]byte(body), &env)
		out = append(out, fmt.Sprintf("%s:%v", env.Name, env.Data["status"]))
	}
	return out
}

// memLedger stands in for settlement.Ledger where a test needs an outcome
// the sandbox ledger does not give (a later, partner-style settlement).
type memLedger struct {
	mu       sync.Mutex
	later    bool            // Settle answers done=false
	broken   map[string]bool // Settle fails for these payments
	reserved map[string]int64
	released map[string]bool
	batches  int // SettleBatch calls (batchMemLedger)
}

func (m *memLedger) Reserve(_ context.Context, _ *sql.Tx, t settlement.Transfer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reserved == nil {
		m.reserved, m.released = map[string]int64{}, map[string]bool{}
	}
	m.reserved[t.PaymentID] = t.AmountCents
	return nil
}

func (m *memLedger) Settle(_ context.Context, _ *sql.Tx, t settlement.Transfer) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.reserved[t.PaymentID]; !ok {
		return false, settlement.ErrNotReserved
	}
	if m.broken[t.PaymentID] {
		return false, fmt.Errorf("settlement of %s unavailable", t.PaymentID)
	}
	return !m.later, nil
}

func (m *memLedger) Release(_ context.Context, _ *sql.Tx, t settlement.Transfer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.released == nil {
		m.released = map[string]bool{}
	}
	m.released[t.PaymentID] = true
	return nil
}

// balances reads Maria's balances as the Accounts API serves them
// (account_balances, which the sandbox ledger rewrites with every step).
func balances(t *testing.T, s *apptest.Server) (available, blocked string) {
	t.Helper()
	err := s.App.DB.Read().QueryRow(`SELECT b.available_amount, b.blocked_amount FROM account_balances b
		JOIN accounts a ON a.id = b.account_id WHERE a.ispb = '37241230' AND a.number = $1`, mariaAccount).Scan(&available, &blocked)
	if err != nil {
		t.Fatal(err)
	}
	return available, blocked
}

// statementHas reports whether Maria's statement lists the Pix endToEndId.
func statementHas(t *testing.T, s *apptest.Server, e2e string) bool {
	t.Helper()
	var n int
	err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM account_transactions x JOIN accounts a ON a.id = x.account_id
		WHERE a.number = $1 AND x.transaction_id = $2`, mariaAccount, e2e).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// setAccountStatus blocks or unblocks Maria's account.
func setAccountStatus(t *testing.T, s *apptest.Server, status string) {
	t.Helper()
	if err := s.App.DB.Write(t.Context(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE accounts SET status = $1 WHERE ispb = '37241230' AND number = $2`, status, mariaAccount)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func (m *memLedger) wasReleased(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.released[id]
}

// batchMemLedger is memLedger settling set-wise (settlement.BatchSettler):
// a batch holding a broken payment fails as a whole, as a database error in
// the Ledger's batch statements would.
type batchMemLedger struct{ *memLedger }

func (b batchMemLedger) SettleBatch(ctx context.Context, tx *sql.Tx, ts []settlement.Transfer) ([]error, error) {
	b.mu.Lock()
	b.batches++
	for _, t := range ts {
		if b.broken[t.PaymentID] {
			b.mu.Unlock()
			return nil, fmt.Errorf("settlement of %s unavailable", t.PaymentID)
		}
	}
	b.mu.Unlock()
	results := make([]error, len(ts))
	for i, t := range ts {
		if _, err := b.Settle(ctx, tx, t); err != nil {
			results[i] = err
		}
	}
	return results, nil
}

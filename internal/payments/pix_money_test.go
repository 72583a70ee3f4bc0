package payments_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/settlement"
)

// TestPixMoneyMoves: with the sandbox ledger, the POST reserves the amount
// (available down, blocked up), the worker debits it (blocked back down) and
// books the Pix, with its endToEndId, in Maria's statement.
func TestPixMoneyMoves(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		avail0, blocked0 := balances(t, s)
		if avail0 != "5320.47" {
			t.Fatalf("Maria starts with %s available", avail0)
		}
		_, token := authorised(t, s, pixConsent("320.47", ""))
		e2e := e2eAt(s.Clock.Now())
		createPix(t, s, token, "money", pixBody(t, pixItem(e2e, "320.47")))
		if avail, blocked := balances(t, s); avail != "5000.00" || blocked != "470.47" {
			t.Fatalf("after the reservation: available %s blocked %s (was %s)", avail, blocked, blocked0)
		}
		runSettlement(t, s)
		if avail, blocked := balances(t, s); avail != "5000.00" || blocked != blocked0 {
			t.Fatalf("after settlement: available %s blocked %s", avail, blocked)
		}
		if !statementHas(t, s, e2e) {
			t.Error("the Pix is not in Maria's statement")
		}
		// Settling twice moves nothing more.
		runSettlement(t, s)
		if avail, _ := balances(t, s); avail != "5000.00" {
			t.Errorf("a second run moved money: %s", avail)
		}
	})
}

// TestPixRejectedBySettlement: the settlement's refusals and their codes.
// Same account: the payment is created RJCT CONTAS_ORIGEM_DESTINO_IGUAIS
// and the consent CONSUMED. A blocked account: 422
// PAGAMENTO_RECUSADO_DETENTORA. A scheduled payment whose date finds the
// balance short: RJCT SALDO_INSUFICIENTE, nothing moved.
func TestPixRejectedBySettlement(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		own := strings.NewReplacer(`"ispb":"12345678","issuer":"1774","number":"1234567890"`,
			`"ispb":"37241230","issuer":"0001","number":"`+mariaAccount+`"`)
		consentID, token := authorised(t, s, own.Replace(pixConsent("10.00", "")))
		item := pixItem(e2eAt(s.Clock.Now()), "10.00")
		item["creditorAccount"] = map[string]any{"ispb": "37241230", "issuer": "0001", "number": mariaAccount, "accountType": "CACC"}
		created := createPix(t, s, token, "same", pixBody(t, item))
		if d := created.Data[0]; d.Status != "RJCT" || d.RejectionReason == nil || d.RejectionReason.Code != "CONTAS_ORIGEM_DESTINO_IGUAIS" {
			t.Fatalf("same account: %+v", d)
		}
		if c := get(t, s, consentID); c.Data.Status != "CONSUMED" {
			t.Errorf("consent of a rejected payment: %s", c.Data.Status)
		}

		_, token = authorised(t, s, pixConsent("10.00", ""))
		setAccountStatus(t, s, "BLOCKED")
		resp := postPix(t, s, token, "blocked", pixBody(t, pixItem(e2eAt(s.Clock.Now()), "10.00")))
		checkPixError(t, s, resp, http.StatusUnprocessableEntity, payments.CodePagamentoRecusadoDetentora, "422ResponseErrorCreatePixPayments")
		setAccountStatus(t, s, "ACTIVE")

		avail0, _ := balances(t, s)
		_, token = authorised(t, s, pixConsent("9000.00", `{"single":{"date":"2024-10-16"}}`))
		id := createPix(t, s, token, "poor-later", pixBody(t, pixItem(scheduledE2E(t, "2024-10-16"), "9000.00"))).Data[0].PaymentID
		s.Clock.Set(time.Date(2024, 10, 16, 3, 0, 0, 0, time.UTC))
		runSettlement(t, s)
		g := getPix(t, s, id)
		if g.Data.Status != "RJCT" || g.Data.RejectionReason == nil || g.Data.RejectionReason.Code != "SALDO_INSUFICIENTE" {
			t.Fatalf("scheduled payment without funds: %+v", g.Data)
		}
		if avail, _ := balances(t, s); avail != avail0 {
			t.Errorf("available %s, was %s", avail, avail0)
		}
	})
}

// TestPixLaterOutcome: a settlement that answers later (the partner's)
// leaves the payment ACPD until SettlementSettled or SettlementFailed,
// which are idempotent and refuse codes outside the specification's.
func TestPixLaterOutcome(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		later := &memLedger{later: true}
		s.App.Payments.Settlement = later
		svc := s.App.Payments
		pay := func(key string) string {
			_, token := authorised(t, s, pixConsent("10.00", ""))
			return createPix(t, s, token, key, pixBody(t, pixItem(e2eAt(s.Clock.Now()), "10.00"))).Data[0].PaymentID
		}
		ok, ko := pay("later-ok"), pay("later-ko")
		runSettlement(t, s)
		if a, b := paymentStatus(t, s, ok), paymentStatus(t, s, ko); a != "ACPD" || b != "ACPD" {
			t.Fatalf("awaiting the outcome: %s %s", a, b)
		}
		for range 2 {
			if err := s.App.DB.Write(t.Context(), func(tx *sql.Tx) error { return svc.SettlementSettled(t.Context(), tx, ok) }); err != nil {
				t.Fatal(err)
			}
			if err := s.App.DB.Write(t.Context(), func(tx *sql.Tx) error {
				return svc.SettlementFailed(t.Context(), tx, ko, "PAGAMENTO_RECUSADO_SPI", "AC03")
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.App.DB.Write(t.Context(), func(tx *sql.Tx) error {
			return svc.SettlementFailed(t.Context(), tx, ok, "NOT_A_CODE", "")
		}); err == nil {
			t.Error("an unknown rejection code was accepted")
		}
		if g := getPix(t, s, ok); g.Data.Status != "ACSC" {
			t.Errorf("settled later: %+v", g.Data)
		}
		g := getPix(t, s, ko)
		if g.Data.Status != "RJCT" || g.Data.RejectionReason.Code != "PAGAMENTO_RECUSADO_SPI" || g.Data.RejectionReason.Detail != "AC03" || !later.wasReleased(ko) {
			t.Errorf("failed later: %+v, released %v", g.Data, later.wasReleased(ko))
		}
		if got := getPix(t, s, ok).Data.ConsentID; get(t, s, got).Data.Status != "CONSUMED" {
			t.Error("the consent of a settled payment is not CONSUMED")
		}
	})
}

// TestPixStuckPayment: a payment whose settlement keeps failing does not
// hold back the others of its batch, and when the worker's job runs out of
// attempts it is rejected FALHA_INFRAESTRUTURA_DETENTORA, its reservation
// released, instead of staying accepted forever.
// The same with a settlement that settles set-wise (BatchSettler), whose
// failing batch the worker retries payment by payment.
func TestPixStuckPayment(t *testing.T) {
	t.Parallel()
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) { t.Parallel(); testPixStuckPayment(t, batch) })
	}
}

func testPixStuckPayment(t *testing.T, batch bool) {
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		ledger := &memLedger{broken: map[string]bool{}}
		s.App.Payments.Settlement = ledger
		if batch {
			s.App.Payments.Settlement = batchMemLedger{ledger}
		}
		pay := func(key string) string {
			_, token := authorised(t, s, pixConsent("10.00", ""))
			return createPix(t, s, token, key, pixBody(t, pixItem(e2eAt(s.Clock.Now()), "10.00"))).Data[0].PaymentID
		}
		good, bad := pay("good"), pay("bad")
		ledger.mu.Lock()
		ledger.broken[bad] = true
		ledger.mu.Unlock()
		runSettlement(t, s)
		if a, b := paymentStatus(t, s, good), paymentStatus(t, s, bad); a != "ACSC" || b != "ACCP" {
			t.Fatalf("after a failed batch: good %s, bad %s", a, b)
		}
		for i := 0; i < 40 && paymentStatus(t, s, bad) == "ACCP"; i++ {
			s.Clock.Advance(2 * time.Minute)
			if _, err := s.App.Jobs.RunDue(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		g := getPix(t, s, bad)
		if g.Data.Status != "RJCT" || g.Data.RejectionReason.Code != "FALHA_INFRAESTRUTURA_DETENTORA" || !ledger.wasReleased(bad) {
			t.Fatalf("stuck payment = %+v, released %v", g.Data, ledger.wasReleased(bad))
		}
		ledger.mu.Lock()
		defer ledger.mu.Unlock()
		if batch && ledger.batches == 0 {
			t.Error("the worker never called SettleBatch")
		}
	})
}

// TestPixPaidOnce: ten simultaneous POSTs for one consent, each with its
// own key and endToEndId, create exactly one payment; the others are 422
// CONSENTIMENTO_INVALIDO, and the amount is reserved once.
func TestPixPaidOnce(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		_, token := authorised(t, s, pixConsent("100.00", ""))
		const n = 10
		statuses := make(chan int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp := s.Do(t, "POST", pixPath, headers(token, fmt.Sprintf("once-%d", i)), pixBody(t, pixItem(e2eAt(s.Clock.Now()), "100.00")))
				statuses <- resp.Status
			}()
		}
		wg.Wait()
		close(statuses)
		created := 0
		for st := range statuses {
			switch st {
			case http.StatusCreated:
				created++
			case http.StatusUnprocessableEntity:
			default:
				t.Errorf("status %d", st)
			}
		}
		if created != 1 {
			t.Fatalf("%d payments created for one consent", created)
		}
		if avail, _ := balances(t, s); avail != "5220.47" {
			t.Errorf("available %s after one payment of 100.00", avail)
		}
	})
}

// TestPixPartnerSettlement: outside the sandbox the holder partner settles.
// The worker asks it (ACPD), and its reports reach the payments through
// SettlementSettled and SettlementFailed: ACSC, or RJCT with its code.
func TestPixPartnerSettlement(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		s.App.Payments.Settlement = s.App.SettlementPartner
		pay := func(key string) string {
			_, token := authorised(t, s, pixConsent("10.00", ""))
			return createPix(t, s, token, key, pixBody(t, pixItem(e2eAt(s.Clock.Now()), "10.00"))).Data[0].PaymentID
		}
		ok, ko := pay("partner-ok"), pay("partner-ko")
		runSettlement(t, s)
		if a, b := paymentStatus(t, s, ok), paymentStatus(t, s, ko); a != "ACPD" || b != "ACPD" {
			t.Fatalf("asked of the partner: %s %s", a, b)
		}
		// Maria's bank is the demo partner application.
		if _, err := s.App.SettlementPartner.Report(t.Context(), s.App.Demo.ID, ok, settlement.Report{Status: "ACSC"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.App.SettlementPartner.Report(t.Context(), s.App.Demo.ID, ko,
			settlement.Report{Status: "RJCT", Code: "SALDO_INSUFICIENTE"}); err != nil {
			t.Fatal(err)
		}
		if g := getPix(t, s, ok); g.Data.Status != "ACSC" {
			t.Errorf("reported settled: %+v", g.Data)
		}
		if g := getPix(t, s, ko); g.Data.Status != "RJCT" || g.Data.RejectionReason.Code != "SALDO_INSUFICIENTE" {
			t.Errorf("reported rejected: %+v", g.Data)
		}
	})
}

// TestPixLateCommitSwept: a payment that finds its second's worker job
// already run (its transaction read the clock before the job looked and
// committed after) is settled by the sweep that run left a minute later.
func TestPixLateCommitSwept(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		at := s.Clock.Now()
		_, token := authorised(t, s, pixConsent("10.00", ""))
		_, token2 := authorised(t, s, pixConsent("10.00", ""))
		first := createPix(t, s, token, "early", pixBody(t, pixItem(e2eAt(at), "10.00"))).Data[0].PaymentID
		runSettlement(t, s)
		if st := paymentStatus(t, s, first); st != "ACSC" {
			t.Fatalf("first payment: %s", st)
		}
		// The late one: created at the same second, after its job ran.
		s.Clock.Set(at)
		late := createPix(t, s, token2, "late", pixBody(t, pixItem(e2eAt(at), "10.00"))).Data[0].PaymentID
		runSettlement(t, s)
		if st := paymentStatus(t, s, late); st != "ACCP" {
			t.Fatalf("late payment before the sweep: %s", st)
		}
		s.Clock.Advance(payments.SweepDelay + time.Minute)
		if _, err := s.App.Jobs.RunDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if st := paymentStatus(t, s, late); st != "ACSC" {
			t.Fatalf("late payment after the sweep: %s", st)
		}
	})
}

// TestPixEndToEndIDOnceAcrossConsents: payments of several consents sent at
// once with one endToEndId create one payment; the others are the 422 a
// later request gets, never a 500 (PostgreSQL runs them concurrently).
func TestPixEndToEndIDOnceAcrossConsents(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		const n = 6
		tokens := make([]string, n)
		for i := range tokens {
			_, tokens[i] = authorised(t, s, pixConsent("1.00", ""))
		}
		e2e := e2eAt(s.Clock.Now())
		statuses := make(chan int, n)
		var wg sync.WaitGroup
		for i, token := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses <- s.Do(t, "POST", pixPath, headers(token, fmt.Sprintf("shared-e2e-%d", i)), pixBody(t, pixItem(e2e, "1.00"))).Status
			}()
		}
		wg.Wait()
		close(statuses)
		counts := map[int]int{}
		for st := range statuses {
			counts[st]++
		}
		if counts[http.StatusCreated] != 1 || counts[http.StatusUnprocessableEntity] != n-1 {
			t.Fatalf("statuses %v, want one 201 and %d × 422", counts, n-1)
		}
	})
}

package recurring_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/recurring"
	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestSweepingPaymentPartnerSettlement settles sweeping payments through
// the holder partner, on both engines: after the settle step the payment
// waits in ACPD; the partner's report through the admin API makes it ACSC
// or RJCT with the partner's code (PDNG, for Pix payments only, is a 400);
// a payment the partner never answers is
// RJCT FALHA_INFRAESTRUTURA_DETENTORA after the deadline.
func TestSweepingPaymentPartnerSettlement(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			partnerMode(t, apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), Settlement: "partner"}))
		})
	}
}

// partnerMode runs the test against a server started with --settlement partner.
func partnerMode(t *testing.T, s *apptest.Server) {
	if s.App.Recurring.Settlement != settlement.Settlement(s.App.SettlementPartner) {
		t.Fatalf("--settlement partner wired %T for sweeping payments", s.App.Recurring.Settlement)
	}
	sw := authorise(t, s, noLimits)
	report := func(id, body string) {
		t.Helper()
		r := s.Do(t, "POST", "/admin/v1/settlements/"+id, map[string]string{"Authorization": "Bearer " + s.Token(t, "payments.admin")}, body)
		if r.Status != http.StatusOK {
			t.Fatalf("report %s: %d %s", body, r.Status, r.Body)
		}
	}
	status := func(id, want, code string) {
		t.Helper()
		got := getPayment(t, s, id)
		if got.Data.Status != want || (code != "" && (got.Data.RejectionReason == nil || got.Data.RejectionReason.Code != code)) {
			t.Fatalf("payment %s = %+v, want %s %s", id, got.Data, want, code)
		}
	}

	settled := mustPay(t, s, sw.token, paymentBody(s, "10.00")).Data.RecurringPaymentID
	refused := mustPay(t, s, sw.token, paymentBody(s, "20.00")).Data.RecurringPaymentID
	forgotten := mustPay(t, s, sw.token, paymentBody(s, "30.00")).Data.RecurringPaymentID
	runJobs(t, s)
	for _, id := range []string{settled, refused, forgotten} {
		status(id, "ACPD", "")
	}
	// PDNG does not apply to sweeping payments (EnumPaymentStatusType): a 400.
	if r := s.Do(t, "POST", "/admin/v1/settlements/"+settled, map[string]string{"Authorization": "Bearer " + s.Token(t, "payments.admin")},
		`{"status":"PDNG"}`); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "PDNG does not apply to sweeping payments") {
		t.Errorf("PDNG for a sweeping payment: %d %s", r.Status, r.Body)
	}
	status(settled, "ACPD", "")
	report(settled, `{"status":"ACSC"}`)
	status(settled, "ACSC", "")
	report(refused, `{"status":"RJCT","rejectionReason":{"code":"SALDO_INSUFICIENTE","detail":"Saldo insuficiente no core bancário."}}`)
	status(refused, "RJCT", recurring.CodeSaldoInsuficiente)

	s.Clock.Advance(s.App.Config.SettlementDeadline + time.Second)
	runJobs(t, s)
	status(forgotten, "RJCT", recurring.CodeFalhaInfraestruturaDetentora)
}

package recurring_test

import (
	"net/http"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/recurring"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestSweepingPaymentAboveLimit: with --ledger-pix-limit the sandbox
// ledger refuses a sweeping payment above the holder's limit per transfer
// when the job reserves it: RJCT VALOR_ACIMA_LIMITE (Automatic Payments v2
// 6.1.2), and, rejected, it gives its share of the consent's total back.
//
// The consent's totalAllowedAmount used up exactly: the file says the
// holder must refuse a payment that would exceed it (the 422 below) and,
// for sweeping, nothing of a CONSUMED consent (only Vrp's globalLimits
// lead there), so the consent stays AUTHORISED.
func TestSweepingPaymentAboveLimit(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := withLedger(t, apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), LedgerPixLimit: "50.00"}))
			sw := authorise(t, s, edit(sweepBody, func(m map[string]any) {
				at(m, "data", "recurringConfiguration")["sweeping"] = map[string]any{"totalAllowedAmount": "60.00"}
			}))
			above := mustPay(t, s, sw.token, paymentBody(s, "50.01")).Data.RecurringPaymentID
			runJobs(t, s)
			got := getPayment(t, s, above)
			if got.Data.Status != "RJCT" || got.Data.RejectionReason == nil || got.Data.RejectionReason.Code != recurring.CodeValorAcimaLimite {
				t.Fatalf("payment above the limit = %+v", got.Data)
			}
			// 50.00 + 10.00 use the total up: the rejected 50.01 does not count.
			for _, amount := range []string{"50.00", "10.00"} {
				id := mustPay(t, s, sw.token, paymentBody(s, amount)).Data.RecurringPaymentID
				runJobs(t, s)
				if got := getPayment(t, s, id); got.Data.Status != "ACSC" {
					t.Fatalf("payment of %s = %+v", amount, got.Data)
				}
			}
			resp := pay(t, s, sw.token, "over-total", paymentBody(s, "0.01"))
			wantCodes(t, resp, http.StatusUnprocessableEntity, recurring.CodeLimiteValorTotalExcedido)
			if c := get(t, s, sw.consentID); c.Data.Status != "AUTHORISED" {
				t.Errorf("consent with its total used up: %s", c.Data.Status)
			}
		})
	}
}

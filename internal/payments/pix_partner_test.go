package payments_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

// TestPixPartnerHold: the holder partner holds Pix payments it was asked to
// settle for analysis through the admin route ({"status":"PDNG"}): ACPD →
// PDNG with its webhook event, past the first deadline too (the hold starts
// it again). While held the initiator cancels one (CANC,
// CANCELADO_PENDENCIA), which withdraws its settlement: a later report is a
// 409. ACSC and RJCT reports finish the others.
func TestPixPartnerHold(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		s.App.Payments.Settlement = s.App.SettlementPartner
		if _, _, err := s.App.WebhookService.Create(t.Context(), s.App.Demo.ID,
			webhooks.CreateSubscription{URL: "https://partner.example/hooks", Events: []string{"PIX_PAYMENT_STATUS_CHANGED", settlement.EventCancelled}}); err != nil {
			t.Fatal(err)
		}
		report := func(id, body string, want int) {
			t.Helper()
			admin := map[string]string{"Authorization": "Bearer " + s.Token(t, "payments.admin")}
			if r := s.Do(t, "POST", "/admin/v1/settlements/"+id, admin, body); r.Status != want {
				t.Fatalf("report %s of %s: %d %s, want %d", body, id, r.Status, r.Body, want)
			}
		}
		pay := func(key string) string {
			_, token := authorised(t, s, pixConsent("10.00", ""))
			return createPix(t, s, token, key, pixBody(t, pixItem(e2eAt(s.Clock.Now()), "10.00"))).Data[0].PaymentID
		}
		cancelled, settled, rejected := pay("hold-cancel"), pay("hold-settle"), pay("hold-reject")
		runSettlement(t, s)
		s.Clock.Advance(s.App.Config.SettlementDeadline / 2)
		for _, id := range []string{cancelled, settled, rejected} {
			report(id, `{"status":"PDNG"}`, http.StatusOK)
			report(id, `{"status":"PDNG"}`, http.StatusOK) // the same report again
			if g := getPix(t, s, id); g.Data.Status != "PDNG" {
				t.Fatalf("held payment: %+v", g.Data)
			}
		}
		if ev := pixEvents(t, s, cancelled); !slices.Contains(ev, "PIX_PAYMENT_STATUS_CHANGED:PDNG") {
			t.Errorf("events of the held payment: %v", ev)
		}

		// Past the first deadline: a held payment is not rejected.
		s.Clock.Advance(s.App.Config.SettlementDeadline / 2)
		runSettlement(t, s)
		if st := paymentStatus(t, s, settled); st != "PDNG" {
			t.Fatalf("held payment after the first deadline: %s", st)
		}

		resp := s.Do(t, "PATCH", pixPath+"/"+cancelled, headers(s.Token(t, "payments"), ""), cancelBody(mariaCPF))
		if resp.Status != http.StatusOK {
			t.Fatalf("cancel held: %d %s", resp.Status, resp.Body)
		}
		validateSpec(t, s, "ResponsePatchPixPayment", resp.Body)
		var out onePixResp
		resp.JSON(t, &out)
		if out.Data.Status != "CANC" || out.Data.Cancellation == nil || out.Data.Cancellation.Reason != payments.CancelPendencia {
			t.Errorf("cancelled held payment = %+v", out.Data)
		}
		if ev := pixEvents(t, s, cancelled); !slices.Contains(ev, "PAYMENT_SETTLEMENT_CANCELLED:CANC") {
			t.Errorf("the partner was not told of the cancellation: %v", ev)
		}
		report(cancelled, `{"status":"ACSC"}`, http.StatusConflict)
		if g := getPix(t, s, cancelled); g.Data.Status != "CANC" {
			t.Errorf("a report after the cancellation changed the payment: %+v", g.Data)
		}

		report(settled, `{"status":"ACSC"}`, http.StatusOK)
		report(rejected, `{"status":"RJCT","rejectionReason":{"code":"NAO_INFORMADO","detail":"Suspeita de fraude."}}`, http.StatusOK)
		if g := getPix(t, s, settled); g.Data.Status != "ACSC" {
			t.Errorf("held then settled: %+v", g.Data)
		}
		if g := getPix(t, s, rejected); g.Data.Status != "RJCT" || g.Data.RejectionReason.Code != "NAO_INFORMADO" {
			t.Errorf("held then rejected: %+v", g.Data)
		}
		// Settled: no longer cancellable.
		resp = s.Do(t, "PATCH", pixPath+"/"+settled, headers(s.Token(t, "payments"), ""), cancelBody(mariaCPF))
		checkPixError(t, s, resp, 422, payments.CodePagamentoNaoPermiteCancel, "422ResponseErrorCreatePixPayment")
	})
}

// TestPixPartnerHeldDeadline: a held payment the partner never reports again
// is rejected FALHA_INFRAESTRUTURA_DETENTORA one deadline after the hold.
func TestPixPartnerHeldDeadline(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		s.App.Payments.Settlement = s.App.SettlementPartner
		_, token := authorised(t, s, pixConsent("10.00", ""))
		id := createPix(t, s, token, "held-late", pixBody(t, pixItem(e2eAt(s.Clock.Now()), "10.00"))).Data[0].PaymentID
		runSettlement(t, s)
		s.Clock.Advance(s.App.Config.SettlementDeadline / 2)
		if _, err := s.App.SettlementPartner.Report(t.Context(), s.App.Demo.ID, id, settlement.Report{Status: "PDNG"}); err != nil {
			t.Fatal(err)
		}
		// The hold was at 2 s + half a deadline; its deadline one deadline later.
		s.Clock.Advance(s.App.Config.SettlementDeadline - time.Second)
		if _, err := s.App.Jobs.RunDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if st := paymentStatus(t, s, id); st != "PDNG" {
			t.Fatalf("before the held deadline: %s", st)
		}
		s.Clock.Advance(time.Second)
		if _, err := s.App.Jobs.RunDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if g := getPix(t, s, id); g.Data.Status != "RJCT" || g.Data.RejectionReason.Code != "FALHA_INFRAESTRUTURA_DETENTORA" {
			t.Errorf("after the held deadline: %+v", g.Data)
		}
	})
}

// TestPixAboveLimit: with --ledger-pix-limit the sandbox ledger refuses an
// amount above the holder's limit per transfer: POST /pix/payments answers
// 422 VALOR_ACIMA_LIMITE for an immediate payment, checked before the
// balance, and a scheduled one is RJCT VALOR_ACIMA_LIMITE on its date;
// nothing is held.
func TestPixAboveLimit(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), LedgerPixLimit: "50.00"})
			_, token := authorised(t, s, pixConsent("50.01", ""))
			resp := postPix(t, s, token, "above", pixBody(t, pixItem(e2eAt(s.Clock.Now()), "50.01")))
			checkPixError(t, s, resp, 422, payments.CodeValorAcimaLimite, "422ResponseErrorCreatePixPayments")
			// Above the limit and the balance (5320.47): the limit is the reason.
			_, token = authorised(t, s, pixConsent("9000.00", ""))
			resp = postPix(t, s, token, "above-both", pixBody(t, pixItem(e2eAt(s.Clock.Now()), "9000.00")))
			checkPixError(t, s, resp, 422, payments.CodeValorAcimaLimite, "422ResponseErrorCreatePixPayments")
			if avail, blocked := balances(t, s); avail != "5320.47" || blocked != "150.00" { // the demo data blocks 150.00
				t.Errorf("balances %s / %s after refusals", avail, blocked)
			}

			_, token = authorised(t, s, pixConsent("50.00", ""))
			at := createPix(t, s, token, "at", pixBody(t, pixItem(e2eAt(s.Clock.Now()), "50.00"))).Data[0].PaymentID
			_, token = authorised(t, s, pixConsent("60.00", `{"single":{"date":"2024-10-17"}}`))
			later := createPix(t, s, token, "later", pixBody(t, pixItem(scheduledE2E(t, "2024-10-17"), "60.00"))).Data[0].PaymentID
			runSettlement(t, s)
			if st := paymentStatus(t, s, at); st != "ACSC" {
				t.Errorf("a payment of the limit: %s", st)
			}
			s.Clock.Set(time.Date(2024, 10, 17, 3, 0, 0, 0, time.UTC)) // 00:00 on the 17th in Brasília
			runSettlement(t, s)
			if g := getPix(t, s, later); g.Data.Status != "RJCT" || g.Data.RejectionReason.Code != payments.PayRejectValorAcimaLimite {
				t.Errorf("scheduled above the limit: %+v", g.Data)
			}
			if avail, blocked := balances(t, s); avail != "5270.47" || blocked != "150.00" {
				t.Errorf("balances %s / %s, want 5270.47 / 150.00", avail, blocked)
			}
		})
	}
}

// TestPixHeldCancelRacesReport: the initiator's cancellation of a held
// payment and the partner's ACSC sent at once: exactly one wins, on both
// engines; the other is the 422 or the 409 a later request gets, and the
// payment's status agrees with the winner.
func TestPixHeldCancelRacesReport(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		s.App.Payments.Settlement = s.App.SettlementPartner
		admin := map[string]string{"Authorization": "Bearer " + s.Token(t, "payments.admin")}
		cc := headers(s.Token(t, "payments"), "")
		for i := range 4 {
			_, token := authorised(t, s, pixConsent("10.00", ""))
			id := createPix(t, s, token, fmt.Sprintf("race-%d", i), pixBody(t, pixItem(e2eAt(s.Clock.Now()), "10.00"))).Data[0].PaymentID
			s.Clock.Advance(2 * time.Second)
			if _, err := s.App.Jobs.RunDue(t.Context()); err != nil {
				t.Fatal(err)
			}
			if r := s.Do(t, "POST", "/admin/v1/settlements/"+id, admin, `{"status":"PDNG"}`); r.Status != http.StatusOK {
				t.Fatalf("hold: %d %s", r.Status, r.Body)
			}
			var cancel, report int
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				cancel = s.Do(t, "PATCH", pixPath+"/"+id, cc, cancelBody(mariaCPF)).Status
			}()
			go func() {
				defer wg.Done()
				report = s.Do(t, "POST", "/admin/v1/settlements/"+id, admin, `{"status":"ACSC"}`).Status
			}()
			wg.Wait()
			st := paymentStatus(t, s, id)
			switch {
			case cancel == http.StatusOK && report == http.StatusConflict && st == "CANC":
			case cancel == http.StatusUnprocessableEntity && report == http.StatusOK && st == "ACSC":
			default:
				t.Errorf("race %d: cancel %d, report %d, payment %s", i, cancel, report, st)
			}
		}
	})
}

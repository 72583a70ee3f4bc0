package app_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

// TestPartnerSettlementRequest: asking the holder partner to settle records
// one Standard Webhooks event for the partner application owning the debtor
// account (the sandbox demo application owns Maria's accounts), with its
// delivery, in the step's transaction; the report route answers the demo
// application's tokens by scope, in the Open Finance shape the contract
// documents.
func TestPartnerSettlementRequest(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), Settlement: "partner"})
			if s.App.Settlement != settlement.Settlement(s.App.SettlementPartner) {
				t.Fatalf("--settlement partner built %T", s.App.Settlement)
			}
			ctx := context.Background()
			demo := s.App.Demo
			if _, _, err := s.App.WebhookService.Create(ctx, demo.ID, webhooks.CreateSubscription{
				URL: "http://127.0.0.1:9/hooks", Events: []string{settlement.EventRequested}}); err != nil {
				t.Fatal(err)
			}
			tr := settlement.Transfer{
				Kind: settlement.KindPix, PaymentID: "0b7e3f4c-9a52-4c1d-8e6f-1a2b3c4d5e6f", EndToEndID: "E37241230202612071200abcdefghijk",
				ApplicationID: demo.ID, AmountCents: 1050, Currency: "BRL",
				Debtor:   settlement.Account{ISPB: "37241230", Issuer: "0001", Number: "1234567", AccountType: "CACC"},
				Creditor: settlement.Account{ISPB: "99999004", Issuer: "6272", Number: "94088392", AccountType: "CACC"},
				At:       s.Clock.Now(),
			}
			p := s.App.SettlementPartner
			for range 2 { // a retried step asks once
				if err := s.App.DB.Write(ctx, func(tx *sql.Tx) error {
					if err := p.Reserve(ctx, tx, tr); err != nil {
						return err
					}
					_, err := p.Settle(ctx, tx, tr)
					return err
				}); err != nil {
					t.Fatal(err)
				}
			}
			var n int
			var app, body string
			if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*), MIN(application_id), MIN(body) FROM webhook_events WHERE entity_id = $1`,
				tr.PaymentID).Scan(&n, &app, &body); err != nil {
				t.Fatal(err)
			}
			var env struct {
				Context, Name, IdempotencyKey string
				Data                          map[string]any
			}
			if err := json.Unmarshal([]byte(body), &env); err != nil || n != 1 || app != demo.ID {
				t.Fatalf("%d events for %s: %s (%v)", n, app, body, err)
			}
			debtor, _ := env.Data["debtorAccount"].(map[string]any)
			if env.Context != settlement.EventContext || env.Name != settlement.EventRequested || env.Data["amount"] != "10.50" ||
				env.Data["endToEndId"] != tr.EndToEndID || debtor["number"] != "1234567" || env.IdempotencyKey == "" {
				t.Errorf("event: %s", body)
			}
			var deliveries int
			if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM webhook_deliveries WHERE event_id = $1`, env.IdempotencyKey).Scan(&deliveries); err != nil || deliveries != 1 {
				t.Errorf("%d deliveries (%v), want 1", deliveries, err)
			}

			path := "/admin/v1/settlements/" + tr.PaymentID
			admin := map[string]string{"Authorization": "Bearer " + s.Token(t, settlement.ScopeAdmin)}
			if r := s.Do(t, http.MethodPost, path, admin, `{"status":"RJCT","rejectionReason":{"code":"NOPE"}}`); r.Status != http.StatusBadRequest {
				t.Errorf("unknown code: %d %s", r.Status, r.Body)
			}
			if r := s.Do(t, http.MethodPost, "/admin/v1/settlements/unknown", admin, `{"status":"ACSC"}`); r.Status != http.StatusNotFound {
				t.Errorf("unknown payment: %d %s", r.Status, r.Body)
			}
			other := map[string]string{"Authorization": "Bearer " + s.Token(t, "webhooks.read")}
			if r := s.Do(t, http.MethodPost, path, other, `{"status":"ACSC"}`); r.Status != http.StatusForbidden {
				t.Errorf("without payments.admin: %d %s", r.Status, r.Body)
			}
		})
	}
}

package payments_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// BenchmarkSettleDue measures the settlement worker alone: b.N accepted
// payments (reserved on Maria's account in the sandbox ledger, one consent
// each) are settled in batches of SettleBatchSize. It reports payments
// settled per second; run it briefly, e.g. -benchtime=5000x.
func BenchmarkSettleDue(b *testing.B) {
	for _, e := range storetest.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			s := apptest.Start(b, apptest.Options{DatabaseURL: e.URL(b)})
			now := s.Clock.Now().UTC()
			debtor := `{"ispb":"37241230","issuer":"0001","number":"` + mariaAccount + `","accountType":"CACC"}`
			item := `{"endToEndId":"%s","localInstrument":"DICT","payment":{"amount":"0.01","currency":"BRL"},` +
				`"creditorAccount":{"ispb":"12345678","issuer":"1774","number":"1234567890","accountType":"CACC"},"cnpjInitiator":"50685362000135"}`
			err := s.App.DB.Write(b.Context(), func(tx *sql.Tx) error {
				for i := range b.N {
					cid, pid, e2e := "urn:ponte:"+uuid.NewString(), uuid.NewString(), fmt.Sprintf("E12345678%s%011d", now.Format("200601021504"), i)
					if _, err := tx.Exec(`INSERT INTO payment_consents (id, application_id, status, request, debtor_account, created_at, expires_at, status_updated_at)
						VALUES ($1, $2, 'AUTHORISED', '{}', $3, $4, $5, $4)`, cid, s.App.Demo.ID, debtor, now.UnixMilli(), now.Add(time.Hour).UnixMilli()); err != nil {
						return err
					}
					if _, err := tx.Exec(`INSERT INTO pix_payments (id, consent_id, application_id, end_to_end_id, status, request, debtor_account, parties,
						amount_cents, scheduled_date, due_at, created_at, status_updated_at)
						VALUES ($1, $2, $3, $4, 'ACCP', $5, $6, '{}', 1, NULL, $7, $7, $7)`,
						pid, cid, s.App.Demo.ID, e2e, fmt.Sprintf(item, e2e), debtor, now.UnixMilli()); err != nil {
						return err
					}
					if err := s.App.Settlement.Reserve(b.Context(), tx, settlement.Transfer{Kind: settlement.KindPix, PaymentID: pid, EndToEndID: e2e,
						AmountCents: 1, Currency: "BRL", At: now,
						Debtor:   settlement.Account{ISPB: "37241230", Issuer: "0001", Number: mariaAccount, AccountType: "CACC"},
						Creditor: settlement.Account{ISPB: "12345678", Issuer: "1774", Number: "1234567890", AccountType: "CACC"}}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			total := 0
			for {
				n, err := s.App.Payments.SettleDue(b.Context(), payments.SettleBatchSize)
				if err != nil {
					b.Fatal(err)
				}
				total += n
				if n < payments.SettleBatchSize {
					break
				}
			}
			b.StopTimer()
			if total != b.N {
				b.Fatalf("settled %d of %d", total, b.N)
			}
			b.ReportMetric(float64(total)/time.Since(start).Seconds(), "settled/s")
		})
	}
}

// BenchmarkCreateVsConsent compares, in the same run, the service side of
// POST /pix/payments (validation against the consent, ledger reservation,
// payment row, job, event, jti and idempotency record: one transaction)
// with POST /consents' (one transaction), and reports the ratio of their
// rates (the target: payments at least 0.8 of consents). HTTP,
// tokens and JWS signing are left out of both.
func BenchmarkCreateVsConsent(b *testing.B) {
	for _, e := range storetest.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			s := apptest.Start(b, apptest.Options{DatabaseURL: e.URL(b)})
			svc := s.App.Payments
			now := s.Clock.Now().UTC()
			var req payments.ConsentRequest
			var body struct{ Data payments.ConsentRequest }
			if err := json.Unmarshal([]byte(pixConsent("0.01", "")), &body); err != nil {
				b.Fatal(err)
			}
			req = body.Data
			start := time.Now()
			ids := make([]string, b.N)
			for i := range b.N {
				resp, err := svc.Create(b.Context(), payments.CreateInput{ApplicationID: s.App.Demo.ID, Request: req,
					IdempotencyKey: fmt.Sprintf("c-%d", i), JTI: uuid.NewString()})
				if err != nil || resp.Status != 201 {
					b.Fatalf("consent: %v %d", err, resp.Status)
				}
				var c struct{ Data struct{ ConsentID string } }
				_ = json.Unmarshal(resp.Body, &c)
				ids[i] = c.Data.ConsentID
			}
			consents := time.Since(start)
			for _, id := range ids {
				if _, err := svc.Authorise(b.Context(), id, &payments.Account{ISPB: "37241230", Issuer: "0001", Number: mariaAccount, AccountType: "CACC"}); err != nil {
					b.Fatal(err)
				}
			}
			var item payments.PixPaymentRequest
			if err := json.Unmarshal([]byte(fmt.Sprintf(`{"endToEndId":"x","localInstrument":"DICT","proxy":"12345678909",`+
				`"cnpjInitiator":"50685362000135","ibgeTownCode":"5300108","payment":{"amount":"0.01","currency":"BRL"},`+
				`"creditorAccount":{"ispb":"12345678","issuer":"1774","number":"1234567890","accountType":"CACC"}}`)), &item); err != nil {
				b.Fatal(err)
			}
			start = time.Now()
			for i, id := range ids {
				it := item
				it.EndToEndID = fmt.Sprintf("E12345678%s%011d", now.Format("200601021504"), i)
				resp, err := svc.CreatePixPayments(b.Context(), payments.CreatePixPaymentsInput{ApplicationID: s.App.Demo.ID, ConsentID: id,
					Items: []payments.PixPaymentRequest{it}, IdempotencyKey: fmt.Sprintf("p-%d", i), JTI: uuid.NewString()})
				if err != nil || resp.Status != 201 {
					b.Fatalf("payment: %v %d %s", err, resp.Status, resp.Body)
				}
			}
			pays := time.Since(start)
			b.ReportMetric(float64(b.N)/consents.Seconds(), "consents/s")
			b.ReportMetric(float64(b.N)/pays.Seconds(), "payments/s")
			b.ReportMetric(consents.Seconds()/pays.Seconds(), "ratio")
		})
	}
}

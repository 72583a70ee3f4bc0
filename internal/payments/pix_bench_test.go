package payments_test

import (
	"database/sql"
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

package itpflow

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestScheduleDates expands each Payments v4 schedule into its settlement
// dates; a monthly day a month lacks moves to the next month's first day.
func TestScheduleDates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, schedule string
		want           string // dates joined by spaces; "" for an error
	}{
		{"single", `{"single":{"date":"2024-10-20"}}`, "2024-10-20"},
		{"daily", `{"daily":{"startDate":"2024-10-30","quantity":3}}`, "2024-10-30 2024-10-31 2024-11-01"},
		{"weekly from a Tuesday, on Thursdays", `{"weekly":{"dayOfWeek":"QUINTA_FEIRA","startDate":"2024-10-15","quantity":2}}`, "2024-10-17 2024-10-24"},
		{"weekly starting on the day", `{"weekly":{"dayOfWeek":"TERCA_FEIRA","startDate":"2024-10-15","quantity":1}}`, "2024-10-15"},
		{"monthly on the 31st", `{"monthly":{"dayOfMonth":31,"startDate":"2025-01-01","quantity":3}}`, "2025-01-31 2025-03-01 2025-03-31"},
		{"monthly, day already past", `{"monthly":{"dayOfMonth":5,"startDate":"2024-10-15","quantity":2}}`, "2024-11-05 2024-12-05"},
		{"custom", `{"custom":{"dates":["2024-10-20","2024-11-02"]}}`, "2024-10-20 2024-11-02"},
		{"quantity zero", `{"daily":{"startDate":"2024-10-30","quantity":0}}`, ""},
		{"quantity over 60", `{"daily":{"startDate":"2024-10-30","quantity":61}}`, ""},
		{"bad weekday", `{"weekly":{"dayOfWeek":"MONDAY","startDate":"2024-10-15","quantity":1}}`, ""},
		{"bad date", `{"single":{"date":"2024-13-01"}}`, ""},
		{"no member", `{}`, ""},
		{"past year 9999", `{"weekly":{"dayOfWeek":"DOMINGO","startDate":"9999-12-31","quantity":2}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s consentSchedule
			if err := json.Unmarshal([]byte(tt.schedule), &s); err != nil {
				t.Fatal(err)
			}
			dates, err := s.dates()
			if tt.want == "" {
				if !errors.Is(err, errSchedule) {
					t.Fatalf("dates() = %v, %v; want errSchedule", dates, err)
				}
				return
			}
			var got []string
			for _, d := range dates {
				got = append(got, d.Format("2006-01-02"))
			}
			if err != nil || strings.Join(got, " ") != tt.want {
				t.Errorf("dates() = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// TestPixPaymentItems: immediate and scheduled items carry the consent's
// fields, one endToEndId each; a consent lacking its creditor account, or
// an initiator without a CNPJ, initiates nothing.
func TestPixPaymentItems(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)
	who := Initiator{CNPJ: "11222333000181", ISPB: "11222333"}
	consent := `{"consentId":"urn:b:1","payment":{"date":"2024-10-15","amount":"1.15","currency":"BRL",
		"details":{"localInstrument":"QRDN","qrCode":"000201","proxy":"a@b.c","creditorAccount":{"ispb":"1","number":"2","accountType":"CACC"}}}}`
	items, err := pixPaymentItems(json.RawMessage(consent), PaymentOptions{TransactionIdentification: "txid0123456789012345678901"}, who, now)
	if err != nil || len(items) != 1 {
		t.Fatalf("items = %v, %v", items, err)
	}
	it := items[0]
	if it["qrCode"] != "000201" || it["proxy"] != "a@b.c" || it["transactionIdentification"] != "txid0123456789012345678901" ||
		!strings.HasPrefix(it["endToEndId"].(string), "E11222333202410151855") || it["authorisationFlow"] != "HYBRID_FLOW" {
		t.Errorf("item = %v", it)
	}
	for name, c := range map[string]string{
		"no creditor account": `{"consentId":"urn:b:1","payment":{"amount":"1.00","details":{"localInstrument":"DICT"}}}`,
		"not JSON":            `[`,
	} {
		if _, err := pixPaymentItems(json.RawMessage(c), PaymentOptions{}, who, now); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := pixPaymentItems(json.RawMessage(consent), PaymentOptions{}, Initiator{}, now); err == nil {
		t.Error("no CNPJ: no error")
	}
}

package itpflow

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzPixPaymentItems feeds the consent data a brand answers (any bytes) to
// the builder of the payment request: it never panics, and what it builds
// has one endToEndId per item, each of the official pattern.
func FuzzPixPaymentItems(f *testing.F) {
	f.Add([]byte(`{"consentId":"urn:b:1","payment":{"date":"2024-10-15","amount":"1.15","details":{"localInstrument":"DICT","proxy":"x","creditorAccount":{"ispb":"1"}}}}`))
	f.Add([]byte(`{"consentId":"urn:b:1","payment":{"schedule":{"monthly":{"dayOfMonth":31,"startDate":"2025-01-31","quantity":60}},"amount":"1.00","details":{"localInstrument":"MANU","creditorAccount":{}}}}`))
	f.Add([]byte(`{"consentId":"u","payment":{"schedule":{"weekly":{"dayOfWeek":"DOMINGO","startDate":"9999-12-31","quantity":2}},"amount":"1","details":{"localInstrument":"M","creditorAccount":1}}}`))
	f.Add([]byte(`null`))
	now := time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)
	who := Initiator{CNPJ: "11222333000181", ISPB: "11222333"}
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := pixPaymentItems(json.RawMessage(data), PaymentOptions{}, who, now)
		if err != nil {
			return
		}
		if len(items) == 0 || len(items) > maxScheduled {
			t.Fatalf("%d items", len(items))
		}
		for _, it := range items {
			e2e, _ := it["endToEndId"].(string)
			if len(e2e) != 32 || e2e[0] != 'E' || e2e[1:9] != who.ISPB {
				t.Fatalf("endToEndId %q", e2e)
			}
			if _, err := json.Marshal(it); err != nil {
				t.Fatalf("item does not encode: %v", err)
			}
		}
	})
}

package settlement_test

import (
	"errors"
	"testing"

	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestLedgerSettleBatch settles a batch set-wise: transfers both ways
// between two accounts and to a third, one settled before, one released and
// one never reserved, then the same batch again, which moves nothing twice.
func TestLedgerSettleBatch(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, map[string]string{"11110001": "1000.00", "22220002": "1000.00", "33330003": "0.00"})
		batch := []settlement.Transfer{
			f.transfer("b-1", "11110001", "22220002", 10000),
			f.transfer("b-2", "22220002", "11110001", 2500),
			f.transfer("b-3", "11110001", "33330003", 1234),
			f.transfer("b-4", "11110001", "22220002", 100), // settled alone first
			f.transfer("b-5", "11110001", "22220002", 200), // released
			f.transfer("b-6", "11110001", "22220002", 300), // never reserved
		}
		for _, tr := range batch[:5] {
			if err := f.reserve(t, tr); err != nil {
				t.Fatalf("reserve %s: %v", tr.PaymentID, err)
			}
		}
		if _, err := f.settle(t, batch[3]); err != nil {
			t.Fatal(err)
		}
		if err := f.release(t, batch[4]); err != nil {
			t.Fatal(err)
		}
		want := []error{nil, nil, nil, nil, settlement.ErrNotReserved, settlement.ErrNotReserved}
		for round := range 2 {
			results, err := f.settleBatch(t, batch...)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			for i, w := range want {
				if !errors.Is(results[i], w) || (w == nil && results[i] != nil) {
					t.Errorf("round %d: %s: %v, want %v", round, batch[i].PaymentID, results[i], w)
				}
			}
			// 1000.00 - 100.00 + 25.00 - 12.34 - 1.00; 1000.00 + 100.00 - 25.00 + 1.00.
			f.wantBalances(t, "11110001", "911.66", "0.00")
			f.wantBalances(t, "22220002", "1076.00", "0.00")
			f.wantBalances(t, "33330003", "12.34", "0.00")
			for number, n := range map[string]int{"11110001": 4, "22220002": 3, "33330003": 1} {
				if got := f.statement(t, number); len(got) != n {
					t.Errorf("round %d: account %s: %d statement rows, want %d", round, number, len(got), n)
				}
			}
		}
		for _, e := range f.statement(t, "33330003") {
			if e.TransactionID != batch[2].EndToEndID || e.CreditDebitType != "CREDITO" || e.Amount != "12.34" || e.PartieCnpjCpf != maria {
				t.Errorf("credit booked as %+v", e)
			}
		}
	})
}

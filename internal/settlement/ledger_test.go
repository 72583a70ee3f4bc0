package settlement_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestLedgerSteps walks reservations through settle and release, repeating
// every step to check it is idempotent, on every engine.
func TestLedgerSteps(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, map[string]string{"11110001": "1000.00", "22220002": "1000.00"})

		// Reserve holds: available → blocked; a second Reserve holds nothing more.
		p1 := f.transfer("pay-1", "11110001", "22220002", 10000)
		for range 2 {
			if err := f.reserve(t, p1); err != nil {
				t.Fatalf("reserve: %v", err)
			}
			f.wantBalances(t, "11110001", "900.00", "100.00")
		}
		// Settle debits the debtor once and credits the Ponte creditor once.
		for i := range 2 {
			done, err := f.settle(t, p1)
			if err != nil || !done {
				t.Fatalf("settle #%d: done %v, %v", i+1, done, err)
			}
			f.wantBalances(t, "11110001", "900.00", "0.00")
			f.wantBalances(t, "22220002", "1100.00", "0.00")
		}
		if err := f.release(t, p1); !errors.Is(err, settlement.ErrNotReserved) {
			t.Errorf("release after settle: %v, want ErrNotReserved", err)
		}
		f.wantBalances(t, "11110001", "900.00", "0.00")

		debits := f.statement(t, "11110001")
		if len(debits) != 1 {
			t.Fatalf("debtor statement: %d transactions, want 1: %+v", len(debits), debits)
		}
		d := debits[0]
		if d.TransactionID != p1.EndToEndID || d.CreditDebitType != "DEBITO" || d.Type != "PIX" || d.Amount != "100.00" ||
			d.CompletedAuthorisedPaymentType != "TRANSACAO_EFETIVADA" || !d.TransactionDateTime.Equal(p1.At) ||
			d.PartieCnpjCpf != joao || d.PartiePersonType != "PESSOA_NATURAL" || d.PartieBranchCode != "0001" ||
			d.PartieNumber != "02222000" || d.PartieCheckDigit != "2" {
			t.Errorf("debit booked as %+v", d)
		}
		credits := f.statement(t, "22220002")
		if len(credits) != 1 || credits[0].TransactionID != p1.EndToEndID || credits[0].CreditDebitType != "CREDITO" ||
			credits[0].PartieCnpjCpf != maria || credits[0].Amount != "100.00" {
			t.Errorf("creditor statement: %+v", credits)
		}

		// Release gives a hold back, once; a released transfer cannot settle
		// nor be reserved again.
		p2 := f.transfer("pay-2", "11110001", "22220002", 5050)
		if err := f.reserve(t, p2); err != nil {
			t.Fatal(err)
		}
		f.wantBalances(t, "11110001", "849.50", "50.50")
		for range 2 {
			if err := f.release(t, p2); err != nil {
				t.Fatalf("release: %v", err)
			}
			f.wantBalances(t, "11110001", "900.00", "0.00")
		}
		if done, err := f.settle(t, p2); !errors.Is(err, settlement.ErrNotReserved) || done {
			t.Errorf("settle after release: %v %v, want ErrNotReserved", done, err)
		}
		if err := f.reserve(t, p2); !errors.Is(err, settlement.ErrReleased) {
			t.Errorf("reserve after release: %v, want ErrReleased", err)
		}
		f.wantBalances(t, "11110001", "900.00", "0.00")

		// Never reserved: Settle refuses, Release has nothing to do.
		p3 := f.transfer("pay-3", "11110001", "22220002", 100)
		if _, err := f.settle(t, p3); !errors.Is(err, settlement.ErrNotReserved) {
			t.Errorf("settle unknown: %v", err)
		}
		if err := f.release(t, p3); err != nil {
			t.Errorf("release unknown: %v", err)
		}
		// The same payment id in the other kind is another transfer.
		p1r := p1
		p1r.Kind = settlement.KindRecurring
		if _, err := f.settle(t, p1r); !errors.Is(err, settlement.ErrNotReserved) {
			t.Errorf("settle of the recurring kind: %v", err)
		}

		// A creditor Ponte does not hold: the money leaves the ledger.
		p4 := f.transfer("pay-4", "11110001", "99990009", 25000)
		if err := f.reserve(t, p4); err != nil {
			t.Fatal(err)
		}
		if done, err := f.settle(t, p4); err != nil || !done {
			t.Fatalf("settle to another institution: %v %v", done, err)
		}
		f.wantBalances(t, "11110001", "650.00", "0.00")
		f.wantBalances(t, "22220002", "1100.00", "0.00")
	})
}

// TestLedgerRefusals: every refusal leaves the balances and the
// reservations as they were.
func TestLedgerRefusals(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, map[string]string{"11110001": "100.00", "22220002": "0.00", "33330003": "500.00"})
		if err := f.write(t, func(tx *sql.Tx) error {
			_, err := tx.Exec(`UPDATE accounts SET status = $1 WHERE id = $2`, customers.StatusBlocked, f.accts["33330003"].ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		wrongType := f.transfer("t-type", "11110001", "22220002", 100)
		wrongType.Debtor.AccountType = customers.TypeSVGS
		otherCurrency := f.transfer("t-usd", "11110001", "22220002", 100)
		otherCurrency.Currency = "USD"
		for _, c := range []struct {
			name string
			tr   settlement.Transfer
			want error
		}{
			{"insufficient", f.transfer("t-short", "11110001", "22220002", 10001), settlement.ErrInsufficientFunds},
			{"empty account", f.transfer("t-empty", "22220002", "11110001", 1), settlement.ErrInsufficientFunds},
			{"unknown debtor", f.transfer("t-unknown", "99990009", "11110001", 100), settlement.ErrAccountNotAllowed},
			{"blocked debtor", f.transfer("t-blocked", "33330003", "11110001", 100), settlement.ErrAccountNotAllowed},
			{"other account type", wrongType, settlement.ErrAccountNotAllowed},
			{"other currency", otherCurrency, settlement.ErrAccountNotAllowed},
			{"same account", f.transfer("t-same", "11110001", "11110001", 100), settlement.ErrSameAccount},
		} {
			if err := f.reserve(t, c.tr); !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", c.name, err, c.want)
			}
			// Refused means nothing reserved: settle finds nothing.
			if _, err := f.settle(t, c.tr); !errors.Is(err, settlement.ErrNotReserved) {
				t.Errorf("%s: settle after refusal: %v", c.name, err)
			}
		}
		f.wantBalances(t, "11110001", "100.00", "0.00")
		f.wantBalances(t, "22220002", "0.00", "0.00")
		// The whole available balance can be reserved, one cent more cannot.
		if err := f.reserve(t, f.transfer("t-all", "11110001", "22220002", 10000)); err != nil {
			t.Fatal(err)
		}
		if err := f.reserve(t, f.transfer("t-cent", "11110001", "22220002", 1)); !errors.Is(err, settlement.ErrInsufficientFunds) {
			t.Errorf("one cent past the balance: %v", err)
		}
		f.wantBalances(t, "11110001", "0.00", "100.00")
	})
}

// TestLedgerImportRewritesBalances: an import of balances wins over the
// ledger's; reservations outstanding stay blocked on top of the imported
// blocked amount, and settle and release carry on from the imported amounts.
func TestLedgerImportRewritesBalances(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, map[string]string{"11110001": "1000.00", "22220002": "0.00"})
		p1 := f.transfer("imp-1", "11110001", "22220002", 10000)
		if err := f.reserve(t, p1); err != nil {
			t.Fatal(err)
		}
		f.wantBalances(t, "11110001", "900.00", "100.00")
		f.clock.Advance(1000)
		if _, err := f.data.Import(context.Background(), holderApp, maria, "11110001", &dataapi.ImportData{Balances: &dataapi.Balances{
			AvailableAmount: "500.1299", BlockedAmount: "20.00", AutomaticallyInvestedAmount: "0.00"}}); err != nil {
			t.Fatal(err)
		}
		f.wantBalances(t, "11110001", "500.1299", "20.00") // the import's, as imported
		p2 := f.transfer("imp-2", "11110001", "22220002", 5000)
		if err := f.reserve(t, p2); err != nil {
			t.Fatal(err)
		}
		// Adopted in whole cents: 500.12 - 50.00; blocked 20.00 + 100.00 + 50.00.
		f.wantBalances(t, "11110001", "450.12", "170.00")
		if _, err := f.settle(t, p1); err != nil {
			t.Fatal(err)
		}
		f.wantBalances(t, "11110001", "450.12", "70.00")
		if err := f.release(t, p2); err != nil {
			t.Fatal(err)
		}
		f.wantBalances(t, "11110001", "500.12", "20.00")
		f.wantBalances(t, "22220002", "100.00", "0.00")
		// More than the imported balance cannot be reserved.
		if err := f.reserve(t, f.transfer("imp-3", "11110001", "22220002", 50013)); !errors.Is(err, settlement.ErrInsufficientFunds) {
			t.Errorf("reserve past the imported balance: %v", err)
		}
	})
}

// TestLedgerAccountWithoutBalances: an account no import ever gave balances
// starts at zero and can receive.
func TestLedgerAccountWithoutBalances(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, map[string]string{"11110001": "10.00"})
		ctx := context.Background()
		a, err := f.custs.AddAccount(ctx, holderApp, joao, customers.Account{ISPB: ispb, Issuer: "0001", Number: "44440004", AccountType: customers.TypeCACC})
		if err != nil {
			t.Fatal(err)
		}
		f.accts["44440004"] = a
		f.wantBalances(t, "44440004", "0.00", "0.00")
		tr := f.transfer("nb-1", "11110001", "44440004", 1000)
		if err := f.reserve(t, tr); err != nil {
			t.Fatal(err)
		}
		if _, err := f.settle(t, tr); err != nil {
			t.Fatal(err)
		}
		f.wantBalances(t, "44440004", "10.00", "0.00")
		f.wantBalances(t, "11110001", "0.00", "0.00")
		if err := f.reserve(t, f.transfer("nb-2", "44440004", "11110001", 1001)); !errors.Is(err, settlement.ErrInsufficientFunds) {
			t.Errorf("%v", err)
		}
	})
}

// TestLedgerRollsBackWithCaller: a step whose caller's transaction fails
// leaves nothing behind.
func TestLedgerRollsBackWithCaller(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, map[string]string{"11110001": "10.00", "22220002": "0.00"})
		tr := f.transfer("rb-1", "11110001", "22220002", 500)
		boom := errors.New("the payment's status change failed")
		err := f.write(t, func(tx *sql.Tx) error {
			if err := f.ledger.Reserve(context.Background(), tx, tr); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		f.wantBalances(t, "11110001", "10.00", "0.00")
		if err := f.reserve(t, tr); err != nil {
			t.Fatalf("reserve after a rolled-back reserve: %v", err)
		}
		f.wantBalances(t, "11110001", "5.00", "5.00")
	})
}

// TestLedgerLargeAmounts: amounts beyond 2³¹ cents (R$ 21,474,836.48) move
// like any other; PostgreSQL once took the cents for a 32-bit integer.
func TestLedgerLargeAmounts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, map[string]string{"11110001": "90000000.00", "22220002": "0.00"})
		big := f.transfer("pay-big", "11110001", "22220002", 3_000_000_000) // R$ 30,000,000.00
		if err := f.reserve(t, big); err != nil {
			t.Fatalf("reserve: %v", err)
		}
		f.wantBalances(t, "11110001", "60000000.00", "30000000.00")
		if done, err := f.settle(t, big); err != nil || !done {
			t.Fatalf("settle: done %v, %v", done, err)
		}
		f.wantBalances(t, "11110001", "60000000.00", "0.00")
		f.wantBalances(t, "22220002", "30000000.00", "0.00")
		tooBig := f.transfer("pay-too-big", "11110001", "22220002", 7_000_000_000)
		if err := f.reserve(t, tooBig); !errors.Is(err, settlement.ErrInsufficientFunds) {
			t.Errorf("reserve beyond the balance: %v, want ErrInsufficientFunds", err)
		}
	})
}

// TestLedgerPixLimit: an amount above the holder's limit per transfer is
// ErrAboveLimit, checked before the balance, and reserves nothing; the
// limit itself passes; a reservation held before the limit was lowered is
// not refused on a retry.
func TestLedgerPixLimit(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, map[string]string{"11110001": "100.00", "22220002": "0.00"})
		held := f.transfer("l-held", "11110001", "22220002", 3000)
		if err := f.reserve(t, held); err != nil {
			t.Fatal(err)
		}
		f.ledger.PixLimitCents = 2000
		for _, c := range []struct {
			name string
			tr   settlement.Transfer
			want error
		}{
			{"above the limit", f.transfer("l-above", "11110001", "22220002", 2001), settlement.ErrAboveLimit},
			{"above the limit and the balance", f.transfer("l-both", "11110001", "22220002", 50000), settlement.ErrAboveLimit},
			{"the limit", f.transfer("l-at", "11110001", "22220002", 2000), nil},
			{"held before the limit", held, nil},
		} {
			if err := f.reserve(t, c.tr); !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", c.name, err, c.want)
			}
		}
		if _, err := f.settle(t, f.transfer("l-above", "11110001", "22220002", 2001)); !errors.Is(err, settlement.ErrNotReserved) {
			t.Errorf("settle after the limit's refusal: %v", err)
		}
		f.wantBalances(t, "11110001", "50.00", "50.00")
		// A refused payment may be tried again once the limit allows it.
		f.ledger.PixLimitCents = 0
		if err := f.reserve(t, f.transfer("l-above", "11110001", "22220002", 2001)); err != nil {
			t.Errorf("reserve after the limit was lifted: %v", err)
		}
	})
}

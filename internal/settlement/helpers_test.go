package settlement_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// The holder partner and its customers in every fixture.
const (
	holderApp = "app-holder"
	otherApp  = "app-other"
	maria     = "47742663023"
	joao      = "52998224725"
	ispb      = "37241230"
)

var epoch = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// fixture is a database with a holder partner, two customers and their
// accounts, each with imported balances.
type fixture struct {
	db     *store.DB
	clock  *clock.Fake
	custs  *customers.Service
	data   *dataapi.Service
	ledger *settlement.Ledger
	accts  map[string]*customers.Account // by number
}

// newFixture opens the accounts numbered in balances (available amounts;
// odd positions belong to João) with blocked 0.00.
func newFixture(t testing.TB, db *store.DB, balances map[string]string) *fixture {
	t.Helper()
	ctx := context.Background()
	storetest.AddApplication(t, db, holderApp)
	storetest.AddApplication(t, db, otherApp)
	f := &fixture{db: db, clock: clock.NewFake(epoch), accts: map[string]*customers.Account{}}
	f.custs = customers.NewService(db, f.clock)
	f.data = dataapi.NewService(db, f.clock, nil)
	f.ledger = settlement.NewLedgerOn(db)
	for _, doc := range []string{maria, joao} {
		if _, err := f.custs.CreateCustomer(ctx, holderApp, doc, "Cliente "+doc[:3]); err != nil {
			t.Fatal(err)
		}
	}
	i := 0
	for _, number := range sortedKeys(balances) {
		doc := maria
		if i%2 == 1 {
			doc = joao
		}
		i++
		a, err := f.custs.AddAccount(ctx, holderApp, doc, customers.Account{ISPB: ispb, Issuer: "0001", Number: number, AccountType: customers.TypeCACC})
		if err != nil {
			t.Fatal(err)
		}
		f.accts[number] = a
		if _, err := f.data.Import(ctx, holderApp, doc, number, &dataapi.ImportData{Balances: &dataapi.Balances{
			AvailableAmount: balances[number], BlockedAmount: "0.00", AutomaticallyInvestedAmount: "0.00"}}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// account is the settlement identification of a fixture account.
func (f *fixture) account(number string) settlement.Account {
	a := f.accts[number]
	if a == nil {
		return settlement.Account{ISPB: ispb, Issuer: "0001", Number: number, AccountType: customers.TypeCACC}
	}
	return settlement.Account{ISPB: a.ISPB, Issuer: a.Issuer, Number: a.Number, AccountType: a.AccountType}
}

// transfer is a Pix payment of cents from one account to another.
func (f *fixture) transfer(id, from, to string, cents int64) settlement.Transfer {
	return settlement.Transfer{
		Kind: settlement.KindPix, PaymentID: id, EndToEndID: e2e(id), ApplicationID: "app-initiator", AmountCents: cents, Currency: "BRL",
		Debtor: f.account(from), DebtorParty: settlement.Party{Name: "Maria", Document: maria},
		Creditor: f.account(to), CreditorParty: settlement.Party{Name: "João", Document: joao},
		At: f.clock.Now(),
	}
}

// e2e is a well-formed endToEndId derived from a payment id.
func e2e(id string) string {
	var sum uint64
	for _, c := range id {
		sum = sum*131 + uint64(c)
	}
	return fmt.Sprintf("E%s%s%011d", ispb, epoch.Format("200601021504"), sum%100_000_000_000)
}

// write runs fn in one transaction of the fixture's database.
func (f *fixture) write(t testing.TB, fn func(tx *sql.Tx) error) error {
	t.Helper()
	return f.db.Write(context.Background(), fn)
}

func (f *fixture) reserve(t testing.TB, tr settlement.Transfer) error {
	return f.write(t, func(tx *sql.Tx) error { return f.ledger.Reserve(context.Background(), tx, tr) })
}

func (f *fixture) settle(t testing.TB, tr settlement.Transfer) (bool, error) {
	var done bool
	err := f.write(t, func(tx *sql.Tx) error {
		var err error
		done, err = f.ledger.Settle(context.Background(), tx, tr)
		return err
	})
	return done, err
}

func (f *fixture) release(t testing.TB, tr settlement.Transfer) error {
	return f.write(t, func(tx *sql.Tx) error { return f.ledger.Release(context.Background(), tx, tr) })
}

// balances are the account's balances as the Accounts API reads them.
func (f *fixture) balances(t testing.TB, number string) (available, blocked string) {
	t.Helper()
	a := f.accts[number]
	b, err := f.data.Balances(context.Background(), &dataapi.Account{ID: a.ID, Currency: a.Currency, CreatedAt: a.CreatedAt})
	if err != nil {
		t.Fatal(err)
	}
	return b.AvailableAmount, b.BlockedAmount
}

func (f *fixture) wantBalances(t testing.TB, number, available, blocked string) {
	t.Helper()
	if a, b := f.balances(t, number); a != available || b != blocked {
		t.Errorf("account %s: balances %s / %s, want %s / %s", number, a, b, available, blocked)
	}
}

// statement is the account's transactions as the Accounts API lists them.
func (f *fixture) statement(t testing.TB, number string) []dataapi.Transaction {
	t.Helper()
	from := epoch.AddDate(0, 0, -1)
	ts, err := f.data.Transactions(context.Background(), f.accts[number].ID,
		dataapi.TransactionFilter{From: from, To: epoch.AddDate(0, 0, 1)}, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func (f *fixture) settleBatch(t testing.TB, trs ...settlement.Transfer) ([]error, error) {
	var results []error
	err := f.write(t, func(tx *sql.Tx) error {
		var err error
		results, err = f.ledger.SettleBatch(context.Background(), tx, trs)
		return err
	})
	return results, err
}

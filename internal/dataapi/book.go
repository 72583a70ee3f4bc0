package dataapi

import (
	"context"
	"database/sql"

	"github.com/ponte-ofb/ponte/internal/store"
)

// Book writes one transaction of the account in the caller's transaction,
// exactly as an import writes it: checked like an imported transaction, with
// its stored body (the Accounts API JSON the transaction pages copy out). The
// sandbox ledger (internal/settlement) books its Pix this way, so the
// Accounts API shows them as soon as tx commits. A transaction already stored
// under the same id is kept as it is.
func Book(ctx context.Context, tx *sql.Tx, engine store.Engine, accountID string, t Transaction) error {
	d := &ImportData{Transactions: []Transaction{t}}
	if err := d.normalize(); err != nil {
		return err
	}
	return insertTransactions(ctx, tx, engine, accountID, d.Transactions, false)
}

// AccountNumber splits a customers account number (check digit included)
// into the Accounts API's number (8-20 digits, zero-padded) and check digit,
// as the accounts routes show it.
func AccountNumber(n string) (number, check string) { return splitNumber(n) }

// BookAll is Book for several transactions of one account, written with
// multi-row statements: the sandbox ledger's batch settlement books a
// batch's Pix this way. The transactions are checked together, like one
// import, so an id repeated among them is refused.
func BookAll(ctx context.Context, tx *sql.Tx, engine store.Engine, accountID string, ts []Transaction) error {
	if len(ts) == 0 {
		return nil
	}
	d := &ImportData{Transactions: ts}
	if err := d.normalize(); err != nil {
		return err
	}
	return insertTransactions(ctx, tx, engine, accountID, d.Transactions, false)
}

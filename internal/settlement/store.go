package settlement

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/store"
)

// accountRow is an account of the customers table as a settlement needs it.
type accountRow struct {
	ID            string
	ApplicationID string // the holder partner whose customer owns it
	AccountType   string
	Currency      string
	Status        string
}

// findAccount returns the Ponte account identified by a (ISPB, branch,
// number), or nil when Ponte holds no such account.
func findAccount(ctx context.Context, q stepQ, a Account) (*accountRow, error) {
	var r accountRow
	err := q.row(ctx, `SELECT a.id, c.application_id, a.account_type, a.currency, a.status
		FROM accounts a JOIN customers c ON c.id = a.customer_id WHERE a.ispb = $1 AND a.issuer = $2 AND a.number = $3`,
		a.ISPB, a.Issuer, a.Number).Scan(&r.ID, &r.ApplicationID, &r.AccountType, &r.Currency, &r.Status)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("settlement: find account: %w", err)
	}
	return &r, nil
}

// sameAccount reports whether a and b name one account.
func sameAccount(a, b Account) bool {
	return a.ISPB == b.ISPB && a.Issuer == b.Issuer && a.Number == b.Number
}

// allowedDebtor resolves t's debtor account and checks it may pay t: not the
// creditor, held by Ponte, ACTIVE, in t's currency and of the type t names.
func allowedDebtor(ctx context.Context, q stepQ, t Transfer) (*accountRow, error) {
	if sameAccount(t.Debtor, t.Creditor) {
		return nil, ErrSameAccount
	}
	d, err := findAccount(ctx, q, t.Debtor)
	switch {
	case err != nil:
		return nil, err
	case d == nil, d.Status != customers.StatusActive, d.Currency != t.Currency,
		t.Debtor.AccountType != "" && t.Debtor.AccountType != d.AccountType:
		return nil, ErrAccountNotAllowed
	}
	return d, nil
}

// formatCents is an amount of cents as the APIs write money: a decimal
// string with two places, "-" when negative.
func formatCents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

// parseCents reads a decimal amount (an optional "-", digits, optionally a
// point and more digits) in whole cents, cutting places past the second
// (toward zero): the Accounts API allows up to four, the ledger keeps cents.
func parseCents(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	whole, frac, _ := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	if whole == "" || len(whole) > 15 || strings.Trim(whole, "0123456789") != "" || strings.Trim(frac, "0123456789") != "" {
		return 0, fmt.Errorf("settlement: %q is not a decimal amount", s)
	}
	frac = (frac + "00")[:2]
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("settlement: %q is not a decimal amount: %w", s, err)
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	c := w*100 + f
	if neg {
		c = -c
	}
	return c, nil
}

func parseBalances(accountID, available, blocked string) (int64, int64, error) {
	a, err := parseCents(available)
	if err != nil {
		return 0, 0, fmt.Errorf("settlement: available balance of %s: %w", accountID, err)
	}
	b, err := parseCents(blocked)
	if err != nil {
		return 0, 0, fmt.Errorf("settlement: blocked balance of %s: %w", accountID, err)
	}
	return a, b, nil
}

// stepQ runs a step's statements in its transaction: prepared once on the
// database's write pool when db is set (store.DB.TxStmt; parsing SQL on
// every step costs SQLite dearly), else straight on tx.
type stepQ struct {
	db     *store.DB
	tx     *sql.Tx
	engine store.Engine
}

func (q stepQ) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if q.db == nil {
		return q.tx.ExecContext(ctx, query, args...)
	}
	st, err := q.db.TxStmt(ctx, q.tx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// scanner is a row to scan: *sql.Row, or the error of preparing it.
type scanner interface{ Scan(dest ...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (q stepQ) row(ctx context.Context, query string, args ...any) scanner {
	if q.db == nil {
		return q.tx.QueryRowContext(ctx, query, args...)
	}
	st, err := q.db.TxStmt(ctx, q.tx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

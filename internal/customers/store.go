package customers

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// queryer is a database or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const customerColumns = `id, application_id, document, name, created_at`

func scanCustomer(row interface{ Scan(...any) error }) (*Customer, error) {
	var c Customer
	var created int64
	if err := row.Scan(&c.ID, &c.ApplicationID, &c.Document, &c.Name, &created); err != nil {
		return nil, err
	}
	c.CreatedAt = time.UnixMilli(created).UTC()
	return &c, nil
}

func insertCustomer(ctx context.Context, tx *sql.Tx, c *Customer) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO customers (`+customerColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		c.ID, c.ApplicationID, c.Document, c.Name, c.CreatedAt.UnixMilli())
	return err
}

func getCustomer(ctx context.Context, q queryer, appID, document string) (*Customer, error) {
	c, err := scanCustomer(q.QueryRowContext(ctx, `SELECT `+customerColumns+` FROM customers WHERE application_id = $1 AND document = $2`, appID, document))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrCustomerNotFound
	}
	return c, err
}

func listCustomers(ctx context.Context, q queryer, appID string) ([]*Customer, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+customerColumns+` FROM customers WHERE application_id = $1 ORDER BY created_at, document`, appID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Customer
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

const accountColumns = `id, customer_id, ispb, issuer, number, account_type, currency, status, created_at`

func scanAccount(row interface{ Scan(...any) error }) (*Account, error) {
	var a Account
	var created int64
	if err := row.Scan(&a.ID, &a.CustomerID, &a.ISPB, &a.Issuer, &a.Number, &a.AccountType, &a.Currency, &a.Status, &created); err != nil {
		return nil, err
	}
	a.CreatedAt = time.UnixMilli(created).UTC()
	return &a, nil
}

func insertAccount(ctx context.Context, tx *sql.Tx, a *Account) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO accounts (`+accountColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		a.ID, a.CustomerID, a.ISPB, a.Issuer, a.Number, a.AccountType, a.Currency, a.Status, a.CreatedAt.UnixMilli())
	return err
}

func listAccounts(ctx context.Context, q queryer, customerID string) ([]*Account, error) {
	// Oldest first; accounts opened in the same millisecond list checking,
	// then savings, then payment accounts — the order users expect to pick from.
	rows, err := q.QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE customer_id = $1
		ORDER BY created_at, CASE account_type WHEN 'CACC' THEN 0 WHEN 'SVGS' THEN 1 ELSE 2 END, ispb, issuer, number`, customerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func getAccount(ctx context.Context, q queryer, ispb, issuer, number string) (*Account, error) {
	a, err := scanAccount(q.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE ispb = $1 AND issuer = $2 AND number = $3`, ispb, issuer, number))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return a, err
}

package customers

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// HolderApplications returns, through q (a transaction or the read pool), the
// partner applications that serve a customer with this document, oldest
// customer record first. The holder journey uses it to find whose app a
// payment consent's logged user belongs to.
func HolderApplications(ctx context.Context, q queryer, document string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT application_id FROM customers WHERE document = $1 ORDER BY created_at, application_id`,
		strings.TrimSpace(document))
	if err != nil {
		return nil, fmt.Errorf("customers: holder applications: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// AccountHolder returns, through q, the application and customer document
// owning the account (ispb, issuer, number), or ok=false when Ponte holds no
// such account.
func AccountHolder(ctx context.Context, q queryer, ispb, issuer, number string) (appID, document string, ok bool, err error) {
	err = q.QueryRowContext(ctx, `SELECT c.application_id, c.document FROM accounts a JOIN customers c ON c.id = a.customer_id
		WHERE a.ispb = $1 AND a.issuer = $2 AND a.number = $3`, ispb, NormalizeIssuer(issuer), number).Scan(&appID, &document)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("customers: account holder: %w", err)
	}
	return appID, document, true, nil
}

// CustomerTx returns, through q, the application's customer with this document.
func CustomerTx(ctx context.Context, q queryer, appID, document string) (*Customer, error) {
	return getCustomer(ctx, q, appID, strings.TrimSpace(document))
}

// AccountsTx returns, through q, the accounts of the application's customer
// with this document, oldest first.
func AccountsTx(ctx context.Context, q queryer, appID, document string) ([]*Account, error) {
	c, err := getCustomer(ctx, q, appID, strings.TrimSpace(document))
	if err != nil {
		return nil, err
	}
	return listAccounts(ctx, q, c.ID)
}

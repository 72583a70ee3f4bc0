package payments

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ponte-ofb/ponte/internal/idempotency"
)

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const consentColumns = `id, application_id, status, request, debtor_account, rejection_code, rejection_detail,
	created_at, expires_at, status_updated_at`

// consentValues is c's new row, in the order of consentColumns.
func consentValues(c *Consent) ([]any, error) {
	req, err := json.Marshal(c.Request)
	if err != nil {
		return nil, fmt.Errorf("payments: encode consent request: %w", err)
	}
	debtor, err := nullJSON(c.DebtorAccount)
	if err != nil {
		return nil, err
	}
	return []any{c.ID, c.ApplicationID, string(c.Status), string(req), debtor, nil, nil,
		c.CreatedAt.UnixMilli(), c.ExpiresAt.UnixMilli(), c.StatusUpdatedAt.UnixMilli()}, nil
}

func insertConsent(ctx context.Context, tx *sql.Tx, c *Consent) error {
	values, err := consentValues(c)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO payment_consents (`+consentColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, values...)
	if err != nil {
		return fmt.Errorf("payments: insert consent: %w", err)
	}
	return nil
}

// insertConsentQuery is insertConsent on PostgreSQL's one-round-trip path:
// a CTE of q that inserts c when q claims its idempotency key.
func insertConsentQuery(q *idempotency.Query, c *Consent) error {
	values, err := consentValues(c)
	if err != nil {
		return err
	}
	q.With("consent", `INSERT INTO payment_consents (`+consentColumns+`) SELECT `+q.Args(values...)+` FROM `+idempotency.Claimed)
	return nil
}

// updateStatus writes c's status fields, provided the row is still in status from.
func updateStatus(ctx context.Context, tx *sql.Tx, c *Consent, from Status) error {
	debtor, err := nullJSON(c.DebtorAccount)
	if err != nil {
		return err
	}
	var code, detail any
	if c.Rejection != nil {
		code, detail = string(c.Rejection.Code), c.Rejection.Detail
	}
	res, err := tx.ExecContext(ctx, `UPDATE payment_consents SET status = $1, debtor_account = $2, rejection_code = $3,
		rejection_detail = $4, expires_at = $5, status_updated_at = $6 WHERE id = $7 AND status = $8`,
		string(c.Status), debtor, code, detail, c.ExpiresAt.UnixMilli(), c.StatusUpdatedAt.UnixMilli(), c.ID, string(from))
	if err != nil {
		return fmt.Errorf("payments: update consent: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return ErrInvalidTransition
	}
	return nil
}

func getConsent(ctx context.Context, q querier, id string) (*Consent, error) {
	var (
		c                              Consent
		status, req                    string
		debtor, code, detail           sql.NullString
		created, expires, statusUpdate int64
	)
	err := q.QueryRowContext(ctx, `SELECT `+consentColumns+` FROM payment_consents WHERE id = $1`, id).
		Scan(&c.ID, &c.ApplicationID, &status, &req, &debtor, &code, &detail, &created, &expires, &statusUpdate)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("payments: read consent: %w", err)
	}
	c.Status = Status(status)
	if err := json.Unmarshal([]byte(req), &c.Request); err != nil {
		return nil, fmt.Errorf("payments: decode consent request: %w", err)
	}
	if debtor.Valid {
		c.DebtorAccount = &Account{}
		if err := json.Unmarshal([]byte(debtor.String), c.DebtorAccount); err != nil {
			return nil, fmt.Errorf("payments: decode debtor account: %w", err)
		}
	}
	if code.Valid {
		c.Rejection = &RejectionReason{Code: RejectionCode(code.String), Detail: detail.String}
	}
	c.CreatedAt = time.UnixMilli(created).UTC()
	c.ExpiresAt = time.UnixMilli(expires).UTC()
	c.StatusUpdatedAt = time.UnixMilli(statusUpdate).UTC()
	return &c, nil
}

func nullJSON(a *Account) (any, error) {
	if a == nil {
		return nil, nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("payments: encode account: %w", err)
	}
	return string(b), nil
}

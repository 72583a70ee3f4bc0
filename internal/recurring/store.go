package recurring

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/payments"
)

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const consentColumns = `id, application_id, status, request, debtor_account, rejection, revocation,
	start_at, expires_at, due_at, created_at, authorised_at, status_updated_at`

// consentValues is c's new row, in the order of consentColumns.
func consentValues(c *Consent) ([]any, error) {
	req, err := json.Marshal(c.Request)
	if err != nil {
		return nil, fmt.Errorf("recurring: encode consent request: %w", err)
	}
	return []any{c.ID, c.ApplicationID, string(c.Status), string(req), nil, nil, nil,
		c.StartAt.UnixMilli(), nullTime(c.ExpiresAt), nullTime(c.DueAt), c.CreatedAt.UnixMilli(), nil, c.StatusUpdatedAt.UnixMilli()}, nil
}

func insertConsent(ctx context.Context, tx *sql.Tx, c *Consent) error {
	values, err := consentValues(c)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO recurring_consents (`+consentColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, values...)
	if err != nil {
		return fmt.Errorf("recurring: insert consent: %w", err)
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
	q.With("consent", `INSERT INTO recurring_consents (`+consentColumns+`) SELECT `+q.Args(values...)+` FROM `+idempotency.Claimed)
	return nil
}

// updateStatus writes c's status fields, provided the row is still in status from.
func updateStatus(ctx context.Context, tx *sql.Tx, c *Consent, from Status) error {
	debtor, err := nullJSON(c.DebtorAccount)
	if err != nil {
		return err
	}
	rejection, err := nullJSON(c.Rejection)
	if err != nil {
		return err
	}
	revocation, err := nullJSON(c.Revocation)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE recurring_consents SET status = $1, debtor_account = $2, rejection = $3,
		revocation = $4, due_at = $5, authorised_at = $6, status_updated_at = $7 WHERE id = $8 AND status = $9`,
		string(c.Status), debtor, rejection, revocation, nullTime(c.DueAt), nullTime(c.AuthorisedAt),
		c.StatusUpdatedAt.UnixMilli(), c.ID, string(from))
	if err != nil {
		return fmt.Errorf("recurring: update consent: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("recurring: update consent: %w", err)
	} else if n != 1 {
		return ErrInvalidTransition
	}
	return nil
}

func getConsent(ctx context.Context, q querier, id string) (*Consent, error) {
	var (
		c                             Consent
		status, req                   string
		debtor, rejection, revocation sql.NullString
		start, created, statusUpdate  int64
		expires, due, authorised      sql.NullInt64
	)
	err := q.QueryRowContext(ctx, `SELECT `+consentColumns+` FROM recurring_consents WHERE id = $1`, id).
		Scan(&c.ID, &c.ApplicationID, &status, &req, &debtor, &rejection, &revocation,
			&start, &expires, &due, &created, &authorised, &statusUpdate)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("recurring: read consent: %w", err)
	}
	c.Status = Status(status)
	if err := json.Unmarshal([]byte(req), &c.Request); err != nil {
		return nil, fmt.Errorf("recurring: decode consent request: %w", err)
	}
	if debtor.Valid {
		c.DebtorAccount = &payments.Account{}
		if err := json.Unmarshal([]byte(debtor.String), c.DebtorAccount); err != nil {
			return nil, fmt.Errorf("recurring: decode debtor account: %w", err)
		}
	}
	if rejection.Valid {
		c.Rejection = &Rejection{}
		if err := json.Unmarshal([]byte(rejection.String), c.Rejection); err != nil {
			return nil, fmt.Errorf("recurring: decode rejection: %w", err)
		}
	}
	if revocation.Valid {
		c.Revocation = &Revocation{}
		if err := json.Unmarshal([]byte(revocation.String), c.Revocation); err != nil {
			return nil, fmt.Errorf("recurring: decode revocation: %w", err)
		}
	}
	c.StartAt = time.UnixMilli(start).UTC()
	c.ExpiresAt = fromNull(expires)
	c.DueAt = fromNull(due)
	c.CreatedAt = time.UnixMilli(created).UTC()
	c.AuthorisedAt = fromNull(authorised)
	c.StatusUpdatedAt = time.UnixMilli(statusUpdate).UTC()
	return &c, nil
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromNull(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

func nullJSON[T any](v *T) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("recurring: encode %T: %w", v, err)
	}
	return string(b), nil
}

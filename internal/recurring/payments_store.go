package recurring

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/store"
)

const paymentColumns = `id, application_id, consent_id, status, end_to_end_id, pay_date, amount_cents, request,
	debtor_account, debtor_document, creditor_name, rejection, cancellation, created_at, status_updated_at`

// ErrEndToEndUsed: another payment already carries the endToEndId (422
// DETALHE_PAGAMENTO_INVALIDO, not kept under the idempotency key).
var ErrEndToEndUsed = errors.New("recurring: endToEndId already used")

func insertPayment(ctx context.Context, tx *sql.Tx, p *Payment) error {
	req, err := json.Marshal(p.Request)
	if err != nil {
		return fmt.Errorf("recurring: encode payment request: %w", err)
	}
	debtor, err := json.Marshal(p.DebtorAccount)
	if err != nil {
		return fmt.Errorf("recurring: encode debtor account: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO recurring_payments (`+paymentColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, NULL, $12, $13)`,
		p.ID, p.ApplicationID, p.ConsentID, string(p.Status), p.Request.EndToEndID, p.PayDate, p.AmountCents, string(req),
		string(debtor), p.DebtorDocument, p.CreditorName, p.CreatedAt.UnixMilli(), p.UpdatedAt.UnixMilli())
	if store.IsUniqueViolation(err) {
		return ErrEndToEndUsed
	}
	if err != nil {
		return fmt.Errorf("recurring: insert payment: %w", err)
	}
	return nil
}

// updatePaymentStatus writes p's status, rejection and cancellation,
// provided the row is still in status from.
func updatePaymentStatus(ctx context.Context, tx *sql.Tx, p *Payment, from PaymentStatus) error {
	rejection, err := nullJSON(p.Rejection)
	if err != nil {
		return err
	}
	cancellation, err := nullJSON(p.Cancellation)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE recurring_payments SET status = $1, rejection = $2, cancellation = $3,
		status_updated_at = $4 WHERE id = $5 AND status = $6`,
		string(p.Status), rejection, cancellation, p.UpdatedAt.UnixMilli(), p.ID, string(from))
	if err != nil {
		return fmt.Errorf("recurring: update payment: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("recurring: update payment: %w", err)
	} else if n != 1 {
		return fmt.Errorf("%w: %s is no longer %s", ErrPaymentTransition, p.ID, from)
	}
	return nil
}

type rowScanner interface {
	Scan(dest ...any) error
}

func scanPayment(row rowScanner) (*Payment, error) {
	var (
		p                       Payment
		status, req, debtor     string
		rejection, cancellation sql.NullString
		created, updated        int64
	)
	err := row.Scan(&p.ID, &p.ApplicationID, &p.ConsentID, &status, new(string), &p.PayDate, &p.AmountCents, &req,
		&debtor, &p.DebtorDocument, &p.CreditorName, &rejection, &cancellation, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrPaymentNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("recurring: read payment: %w", err)
	}
	p.Status = PaymentStatus(status)
	if err := json.Unmarshal([]byte(req), &p.Request); err != nil {
		return nil, fmt.Errorf("recurring: decode payment request: %w", err)
	}
	if err := json.Unmarshal([]byte(debtor), &p.DebtorAccount); err != nil {
		return nil, fmt.Errorf("recurring: decode payment debtor account: %w", err)
	}
	if rejection.Valid {
		p.Rejection = &PaymentReason{}
		if err := json.Unmarshal([]byte(rejection.String), p.Rejection); err != nil {
			return nil, fmt.Errorf("recurring: decode payment rejection: %w", err)
		}
	}
	if cancellation.Valid {
		p.Cancellation = &Cancellation{}
		if err := json.Unmarshal([]byte(cancellation.String), p.Cancellation); err != nil {
			return nil, fmt.Errorf("recurring: decode payment cancellation: %w", err)
		}
	}
	p.CreatedAt = time.UnixMilli(created).UTC()
	p.UpdatedAt = time.UnixMilli(updated).UTC()
	return &p, nil
}

func getPayment(ctx context.Context, q querier, id string) (*Payment, error) {
	return scanPayment(q.QueryRowContext(ctx, `SELECT `+paymentColumns+` FROM recurring_payments WHERE id = $1`, id))
}

// listFilter selects a consent's payments: by date (inclusive, "" for no
// bound) and by originalRecurringPaymentId.
type listFilter struct {
	consentID, from, to, original string
}

func listPayments(ctx context.Context, db *store.DB, f listFilter) ([]*Payment, error) {
	p := store.NewParams(db.Engine())
	where := []string{"consent_id = " + p.Add(f.consentID)}
	if f.from != "" {
		where = append(where, "pay_date >= "+p.Add(f.from))
	}
	if f.to != "" {
		where = append(where, "pay_date <= "+p.Add(f.to))
	}
	if f.original != "" {
		// Sweeping has no retries: a payment is its own original.
		where = append(where, "id = "+p.Add(f.original))
	}
	rows, err := db.Read().QueryContext(ctx, `SELECT `+paymentColumns+` FROM recurring_payments WHERE `+
		strings.Join(where, " AND ")+` ORDER BY created_at, id`, p.Args()...)
	if err != nil {
		return nil, fmt.Errorf("recurring: list payments: %w", err)
	}
	defer rows.Close()
	var out []*Payment
	for rows.Next() {
		pay, err := scanPayment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, pay)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recurring: list payments: %w", err)
	}
	return out, nil
}

// lockConsent reads the consent through tx holding its row until tx ends:
// on PostgreSQL with SELECT ... FOR UPDATE, so payments of one consent are
// decided one after the other; SQLite has a single writer already.
func lockConsent(ctx context.Context, db *store.DB, tx *sql.Tx, id string) (*Consent, error) {
	if db.Engine() == store.Postgres {
		var got string
		err := tx.QueryRowContext(ctx, `SELECT id FROM recurring_consents WHERE id = $1 FOR UPDATE`, id).Scan(&got)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("recurring: lock consent: %w", err)
		}
	}
	return getConsent(ctx, tx, id)
}

// consentUsage sums the consent's payments that count against its limits
// (not RJCT, not CANC), over its life and in the windows of w.
func consentUsage(ctx context.Context, tx *sql.Tx, consentID string, w windows) (usage, error) {
	var u usage
	err := tx.QueryRowContext(ctx, `SELECT
		CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT),
		CAST(COALESCE(SUM(CASE WHEN pay_date >= $2 THEN 1 ELSE 0 END), 0) AS BIGINT),
		CAST(COALESCE(SUM(CASE WHEN pay_date >= $2 THEN amount_cents ELSE 0 END), 0) AS BIGINT),
		CAST(COALESCE(SUM(CASE WHEN pay_date >= $3 THEN 1 ELSE 0 END), 0) AS BIGINT),
		CAST(COALESCE(SUM(CASE WHEN pay_date >= $3 THEN amount_cents ELSE 0 END), 0) AS BIGINT),
		CAST(COALESCE(SUM(CASE WHEN pay_date >= $4 THEN 1 ELSE 0 END), 0) AS BIGINT),
		CAST(COALESCE(SUM(CASE WHEN pay_date >= $4 THEN amount_cents ELSE 0 END), 0) AS BIGINT),
		CAST(COALESCE(SUM(CASE WHEN pay_date >= $5 THEN 1 ELSE 0 END), 0) AS BIGINT),
		CAST(COALESCE(SUM(CASE WHEN pay_date >= $5 THEN amount_cents ELSE 0 END), 0) AS BIGINT)
		FROM recurring_payments WHERE consent_id = $1 AND status NOT IN ('RJCT', 'CANC') AND pay_date <= $6`,
		consentID, w.day, w.week, w.month, w.year, w.day).
		Scan(&u.totalCents, &u.dayCount, &u.dayCents, &u.weekCount, &u.weekCents, &u.monthCount, &u.monthCents, &u.yearCount, &u.yearCents)
	if err != nil {
		return usage{}, fmt.Errorf("recurring: consent usage: %w", err)
	}
	return u, nil
}

// endToEndUsed reports whether a payment already carries e2e. Checked
// before the insert: on PostgreSQL a unique violation would abort the
// transaction that must still write the answer.
func endToEndUsed(ctx context.Context, tx *sql.Tx, e2e string) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM recurring_payments WHERE end_to_end_id = $1`, e2e).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recurring: look up endToEndId: %w", err)
	}
	return true, nil
}

package itpflow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const paymentColumns = `id, application_id, authorization_id, kind, batch_id, COALESCE(session_id, ''), brand_id, consent_id,
	COALESCE(external_id, ''), COALESCE(request_hash, ''), request, COALESCE(tags, ''), end_to_end_id, idempotency_key,
	COALESCE(payment_id, ''), status, COALESCE(rejection_code, ''), COALESCE(rejection_detail, ''), COALESCE(error, ''),
	polls, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanPayment(row scanner) (*Payment, error) {
	var p Payment
	var request, tags string
	var created, updated int64
	err := row.Scan(&p.ID, &p.ApplicationID, &p.AuthorizationID, &p.Kind, &p.BatchID, &p.SessionID, &p.BrandID, &p.ConsentID,
		&p.ExternalID, &p.RequestHash, &request, &tags, &p.EndToEndID, &p.IdempotencyKey, &p.PaymentID, &p.Status,
		&p.RejectionCode, &p.RejectionDetail, &p.Error, &p.Polls, &created, &updated)
	if err != nil {
		return nil, err
	}
	p.Request = []byte(request)
	if tags != "" {
		p.Tags = []byte(tags)
	}
	p.CreatedAt, p.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return &p, nil
}

func insertPayment(ctx context.Context, tx *sql.Tx, p *Payment) error {
	var tags any
	if len(p.Tags) > 0 {
		tags = string(p.Tags)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO itp_payments (id, application_id, authorization_id, kind, batch_id, session_id, brand_id,
		consent_id, external_id, request_hash, request, tags, end_to_end_id, idempotency_key, status, polls, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0, $16, $17)`,
		p.ID, p.ApplicationID, p.AuthorizationID, p.Kind, p.BatchID, nullable(p.SessionID), p.BrandID, p.ConsentID,
		nullable(p.ExternalID), nullable(p.RequestHash), string(p.Request), tags, p.EndToEndID, p.IdempotencyKey, p.Status,
		p.CreatedAt.UnixMilli(), p.UpdatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("itpflow: record the payment: %w", err)
	}
	return nil
}

// updatePayment writes p's outcome if the payment is still in status from;
// false means another run changed it first.
func updatePayment(ctx context.Context, tx *sql.Tx, p *Payment, from string) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE itp_payments SET payment_id = $1, status = $2, rejection_code = $3, rejection_detail = $4,
		error = $5, polls = $6, updated_at = $7 WHERE id = $8 AND status = $9`,
		nullable(p.PaymentID), p.Status, nullable(p.RejectionCode), nullable(p.RejectionDetail), nullable(p.Error), p.Polls,
		p.UpdatedAt.UnixMilli(), p.ID, from)
	if err != nil {
		return false, fmt.Errorf("itpflow: record the payment's status: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func paymentsOf(ctx context.Context, q querier, where string, args ...any) ([]*Payment, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+paymentColumns+` FROM itp_payments WHERE `+where+` ORDER BY created_at, end_to_end_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("itpflow: read payments: %w", err)
	}
	defer rows.Close()
	var out []*Payment
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			return nil, fmt.Errorf("itpflow: read payments: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func paymentsOfBatch(ctx context.Context, q querier, batchID string) ([]*Payment, error) {
	return paymentsOf(ctx, q, `batch_id = $1`, batchID)
}

func paymentByID(ctx context.Context, q querier, id string) (*Payment, error) {
	return scanPayment(q.QueryRowContext(ctx, `SELECT `+paymentColumns+` FROM itp_payments WHERE id = $1`, id))
}

// grant is an authorization's kept tokens, still sealed.
type grant struct {
	access        string
	accessExpires time.Time
	refresh       string
	consentData   []byte
	updated       int64
}

func readGrant(ctx context.Context, q querier, authorizationID string) (*grant, error) {
	var g grant
	var expires int64
	var consent string
	err := q.QueryRowContext(ctx, `SELECT access_token, access_expires_at, COALESCE(refresh_token, ''), consent_data, updated_at
		FROM itp_grants WHERE authorization_id = $1`, authorizationID).Scan(&g.access, &expires, &g.refresh, &consent, &g.updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoGrant
	}
	if err != nil {
		return nil, fmt.Errorf("itpflow: read the grant: %w", err)
	}
	g.accessExpires, g.consentData = time.UnixMilli(expires), []byte(consent)
	return &g, nil
}

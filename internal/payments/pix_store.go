package payments

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

const pixColumns = `id, consent_id, application_id, end_to_end_id, status, request, debtor_account, parties, amount_cents,
	scheduled_date, due_at, rejection_code, rejection_detail, cancellation, created_at, status_updated_at`

func insertPixPayment(ctx context.Context, db *store.DB, tx *sql.Tx, p *PixPayment) error {
	req, err := json.Marshal(p.Request)
	if err != nil {
		return fmt.Errorf("payments: encode pix payment: %w", err)
	}
	debtor, err := json.Marshal(p.DebtorAccount)
	if err != nil {
		return fmt.Errorf("payments: encode debtor account: %w", err)
	}
	parties, err := json.Marshal(p.Parties)
	if err != nil {
		return fmt.Errorf("payments: encode parties: %w", err)
	}
	var date any
	if p.ScheduledDate != "" {
		date = p.ScheduledDate
	}
	code, detail := rejectionColumns(p.Rejection)
	st, err := db.TxStmt(ctx, tx, `INSERT INTO pix_payments (`+pixColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, $14, $15)`)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, p.ID, p.ConsentID, p.ApplicationID, p.Request.EndToEndID, string(p.Status), string(req), string(debtor),
		string(parties), p.AmountCents, date, p.DueAt.UnixMilli(), code, detail, p.CreatedAt.UnixMilli(), p.StatusUpdatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("payments: insert pix payment: %w", err)
	}
	return nil
}

func rejectionColumns(r *PaymentRejection) (code, detail any) {
	if r == nil {
		return nil, nil
	}
	return r.Code, r.Detail
}

// updatePixStatus writes p's status fields, provided the row is still in from.
func updatePixStatus(ctx context.Context, db *store.DB, tx *sql.Tx, p *PixPayment, from PaymentStatus) error {
	var cancel any
	if p.Cancellation != nil {
		b, err := json.Marshal(p.Cancellation)
		if err != nil {
			return fmt.Errorf("payments: encode cancellation: %w", err)
		}
		cancel = string(b)
	}
	code, detail := rejectionColumns(p.Rejection)
	st, err := db.TxStmt(ctx, tx, `UPDATE pix_payments SET status = $1, rejection_code = $2, rejection_detail = $3,
		cancellation = $4, status_updated_at = $5 WHERE id = $6 AND status = $7`)
	if err != nil {
		return err
	}
	res, err := st.ExecContext(ctx, string(p.Status), code, detail, cancel, p.StatusUpdatedAt.UnixMilli(), p.ID, string(from))
	if err != nil {
		return fmt.Errorf("payments: update pix payment: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("%w: payment %s is no longer %s", ErrInvalidTransition, p.ID, from)
	}
	return nil
}

// settlePixStatuses moves accepted payments to ACSC, one statement per
// chunk of the settlement worker's batch; a payment no longer ACCP fails it
// (ErrInvalidTransition), as updatePixStatus would.
func settlePixStatuses(ctx context.Context, engine store.Engine, tx *sql.Tx, ps []*PixPayment, at time.Time) error {
	const chunk = 500
	for start := 0; start < len(ps); start += chunk {
		part := ps[start:min(start+chunk, len(ps))]
		p := store.NewParams(engine)
		// CAST keeps SQLite off the (status, due_at) index: with 500 ids its
		// planner would rather walk every accepted payment than look up ids.
		head := `UPDATE pix_payments SET status = ` + p.Add(string(PaymentACSC)) + `, rejection_code = NULL, rejection_detail = NULL,
			cancellation = NULL, status_updated_at = ` + p.Add(at.UnixMilli()) + ` WHERE CAST(status AS TEXT) = ` + p.Add(string(PaymentACCP)) + ` AND id IN (`
		marks := make([]string, len(part))
		for i, x := range part {
			marks[i] = p.Add(x.ID)
		}
		res, err := tx.ExecContext(ctx, head+strings.Join(marks, ", ")+`)`, p.Args()...)
		if err != nil {
			return fmt.Errorf("payments: settle pix payments: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != int64(len(part)) {
			return fmt.Errorf("%w: %d of %d payments are no longer %s", ErrInvalidTransition, int64(len(part))-n, len(part), PaymentACCP)
		}
	}
	return nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanPixPayment(row rowScanner) (*PixPayment, error) {
	var (
		p                               PixPayment
		status, req, debtor, parties    string
		date, code, detail, cancel      sql.NullString
		due, created, statusUpdated, am int64
	)
	err := row.Scan(&p.ID, &p.ConsentID, &p.ApplicationID, &p.Request.EndToEndID, &status, &req, &debtor, &parties, &am,
		&date, &due, &code, &detail, &cancel, &created, &statusUpdated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrPaymentNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("payments: read pix payment: %w", err)
	}
	p.Status, p.AmountCents, p.ScheduledDate = PaymentStatus(status), am, date.String
	if err := json.Unmarshal([]byte(req), &p.Request); err != nil {
		return nil, fmt.Errorf("payments: decode pix payment: %w", err)
	}
	if err := json.Unmarshal([]byte(debtor), &p.DebtorAccount); err != nil {
		return nil, fmt.Errorf("payments: decode debtor account: %w", err)
	}
	if err := json.Unmarshal([]byte(parties), &p.Parties); err != nil {
		return nil, fmt.Errorf("payments: decode parties: %w", err)
	}
	if code.Valid {
		p.Rejection = &PaymentRejection{Code: code.String, Detail: detail.String}
	}
	if cancel.Valid {
		p.Cancellation = &Cancellation{}
		if err := json.Unmarshal([]byte(cancel.String), p.Cancellation); err != nil {
			return nil, fmt.Errorf("payments: decode cancellation: %w", err)
		}
	}
	p.DueAt, p.CreatedAt, p.StatusUpdatedAt = time.UnixMilli(due).UTC(), time.UnixMilli(created).UTC(), time.UnixMilli(statusUpdated).UTC()
	return &p, nil
}

func getPixPayment(ctx context.Context, q querier, id string) (*PixPayment, error) {
	return scanPixPayment(q.QueryRowContext(ctx, `SELECT `+pixColumns+` FROM pix_payments WHERE id = $1`, id))
}

type rowsQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryPixPayments(ctx context.Context, q rowsQuerier, where string, args ...any) ([]*PixPayment, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+pixColumns+` FROM pix_payments WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("payments: list pix payments: %w", err)
	}
	defer rows.Close()
	var out []*PixPayment
	for rows.Next() {
		p, err := scanPixPayment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// lockConsent takes the consent's row lock for the rest of tx (PostgreSQL;
// SQLite's writes are serial already), so two payments for one consent are
// decided one after the other.
func lockConsent(ctx context.Context, tx *sql.Tx, id string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE payment_consents SET status = status WHERE id = $1`, id); err != nil {
		return fmt.Errorf("payments: lock consent: %w", err)
	}
	return nil
}

// consentHasPayments reports whether a payment was ever created for the consent.
func consentHasPayments(ctx context.Context, q querier, consentID string) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM pix_payments WHERE consent_id = $1 LIMIT 1`, consentID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("payments: consent's payments: %w", err)
	}
	return true, nil
}

// endToEndUsed reports whether the application already sent one of ids.
func endToEndUsed(ctx context.Context, db *store.DB, tx *sql.Tx, applicationID string, ids []string) (string, error) {
	st, err := db.TxStmt(ctx, tx, `SELECT 1 FROM pix_payments WHERE application_id = $1 AND end_to_end_id = $2`)
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		var one int
		err := st.QueryRowContext(ctx, applicationID, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("payments: endToEndId in use: %w", err)
		}
		return id, nil
	}
	return "", nil
}

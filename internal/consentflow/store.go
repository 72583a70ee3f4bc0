package consentflow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ponte-ofb/ponte/internal/store"
)

const ticketColumns = `ticket_id, application_id, company_key, document_number, request_uri, client_id, status, created_at, updated_at, expires_at`

// A ticket created with an idempotencyKey keeps the key in its own row
// (migration 00011) rather than in idempotency_records: the row holds all
// the stored record held. The request's fingerprint was made of the route
// and the body's three fields, which the row keeps as they came; the 201
// body is the ticket as created (UNUSED, updatedAt = createdAt), which the
// row keeps too (see createdResponse). So the idempotent ticket costs one
// row and one statement: the insert also checks that no live record in
// idempotency_records holds the key (another route's, or a ticket's from
// before 00011), and does nothing if one does or a ticket holds it.
const insertTicketSQL = insertTicketSelect + `
	ON CONFLICT DO NOTHING`

// insertTicketSelect is insertTicketSQL up to its WHERE clause, which a
// condition may extend (createPostgres's requestUri check).
const insertTicketSelect = `INSERT INTO consent_flow_tickets (` + ticketColumns + `, idempotency_key)
	SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
	WHERE NOT EXISTS (SELECT 1 FROM idempotency_records
		WHERE application_id = $2 AND idempotency_key = $11 AND expires_at > $8)`

// insertTicketArgs is the number of insertTicketSQL's arguments.
const insertTicketArgs = 11

// insertTicket inserts t, carrying idempotency key key ("" for none). It
// reports false, inserting nothing, when the key is taken: by a ticket of the
// same application or by a live record in idempotency_records.
func insertTicket(ctx context.Context, db *store.DB, tx *sql.Tx, t *Ticket, key string) (bool, error) {
	st, err := db.TxStmt(ctx, tx, insertTicketSQL)
	if err != nil {
		return false, err
	}
	res, err := st.ExecContext(ctx,
		t.TicketID, t.ApplicationID, t.CompanyKey, t.DocumentNumber, t.RequestURI, t.ClientID, t.Status,
		t.CreatedAt.UnixMilli(), t.UpdatedAt.UnixMilli(), t.ExpiresAt.UnixMilli(), nullable(key))
	if err != nil {
		return false, fmt.Errorf("holder: insert ticket: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("holder: insert ticket: %w", err)
	}
	if n == 0 && key == "" {
		// Only a ticket id collision can get here: 96 random bits make it never happen.
		return false, errors.New("holder: insert ticket: ticket id already taken")
	}
	return n == 1, nil
}

// ticketByKey returns the ticket of applicationID that holds idempotency key.
func ticketByKey(ctx context.Context, db *store.DB, tx *sql.Tx, applicationID, key string) (*Ticket, error) {
	st, err := db.TxStmt(ctx, tx, `SELECT `+ticketColumns+` FROM consent_flow_tickets
		WHERE application_id = $1 AND idempotency_key = $2`)
	if err != nil {
		return nil, err
	}
	return scanTicket(st.QueryRowContext(ctx, applicationID, key))
}

// releaseKey frees the idempotency key an expired ticket holds.
func releaseKey(ctx context.Context, tx *sql.Tx, ticketID string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE consent_flow_tickets SET idempotency_key = NULL WHERE ticket_id = $1`, ticketID); err != nil {
		return fmt.Errorf("holder: release idempotency key: %w", err)
	}
	return nil
}

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const selectTicketSQL = `SELECT ` + ticketColumns + ` FROM consent_flow_tickets WHERE ticket_id = $1`

func getTicket(ctx context.Context, q rowQuerier, ticketID string) (*Ticket, error) {
	return scanTicket(q.QueryRowContext(ctx, selectTicketSQL, ticketID))
}

// row is a *sql.Row or a pgx.Row.
type row interface{ Scan(dest ...any) error }

func scanTicket(row row) (*Ticket, error) {
	var (
		t                           Ticket
		created, updated, expiresAt int64
	)
	err := row.Scan(&t.TicketID, &t.ApplicationID, &t.CompanyKey, &t.DocumentNumber, &t.RequestURI, &t.ClientID, &t.Status,
		&created, &updated, &expiresAt)
	if errors.Is(err, sql.ErrNoRows) || errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrTicketNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("holder: read ticket: %w", err)
	}
	t.CreatedAt, t.UpdatedAt, t.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC(), time.UnixMilli(expiresAt).UTC()
	return &t, nil
}

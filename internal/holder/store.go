package holder

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ponte-ofb/ponte/internal/store"
)

const ticketColumns = `ticket_id, application_id, company_key, document_number, request_uri, client_id, status, created_at, updated_at, expires_at`

const insertTicketSQL = `INSERT INTO consent_flow_tickets (` + ticketColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`

func insertTicket(ctx context.Context, db *store.DB, tx *sql.Tx, t *Ticket) error {
	st, err := db.TxStmt(ctx, tx, insertTicketSQL)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx,
		t.TicketID, t.ApplicationID, t.CompanyKey, t.DocumentNumber, t.RequestURI, t.ClientID, t.Status,
		t.CreatedAt.UnixMilli(), t.UpdatedAt.UnixMilli(), t.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("holder: insert ticket: %w", err)
	}
	return nil
}

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getTicket(ctx context.Context, q rowQuerier, ticketID string) (*Ticket, error) {
	var (
		t                           Ticket
		created, updated, expiresAt int64
	)
	err := q.QueryRowContext(ctx, `SELECT `+ticketColumns+` FROM consent_flow_tickets WHERE ticket_id = $1`, ticketID).
		Scan(&t.TicketID, &t.ApplicationID, &t.CompanyKey, &t.DocumentNumber, &t.RequestURI, &t.ClientID, &t.Status,
			&created, &updated, &expiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrTicketNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("holder: read ticket: %w", err)
	}
	t.CreatedAt, t.UpdatedAt, t.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC(), time.UnixMilli(expiresAt).UTC()
	return &t, nil
}

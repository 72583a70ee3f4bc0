package consentflow

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SQL of the interactions and their recorded steps.

// Steps returns an interaction's steps in order.
func (s *Interactions) Steps(ctx context.Context, id string) ([]Step, error) {
	rows, err := s.db.Read().QueryContext(ctx, `SELECT step, platform, os, os_version, created_at FROM holder_interaction_steps
		WHERE interaction_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("holder: read steps: %w", err)
	}
	defer rows.Close()
	var out []Step
	for rows.Next() {
		var st Step
		var at int64
		if err := rows.Scan(&st.Step, &st.Device.Platform, &st.Device.OS, &st.Device.OSVersion, &at); err != nil {
			return nil, err
		}
		st.CreatedAt = time.UnixMilli(at).UTC()
		out = append(out, st)
	}
	return out, rows.Err()
}

// queryer is a database or a transaction.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const interactionColumns = `id, application_id, consent_id, client_id, callback_id, request_uri, document, status, handoff,
	customer_id, debtor_account, created_at, updated_at, expires_at, redirect_uri`

func getInteraction(ctx context.Context, q queryer, column, value string) (*Interaction, error) {
	var r interactionRow
	err := q.QueryRowContext(ctx, `SELECT `+interactionColumns+` FROM holder_interactions WHERE `+column+` = $1`, value).Scan(r.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrInteractionNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("holder: read interaction: %w", err)
	}
	return r.interaction()
}

// interactionRow receives interactionColumns, each of them NULL when an
// outer join found no interaction (a redemption's statement).
type interactionRow struct {
	id, applicationID, consentID, clientID, callbackID, requestURI, document, status *string
	handoff                                                                          *int
	customerID, account                                                              *string
	created, updated, expires                                                        *int64
	redirectURI                                                                      *string
}

func (r *interactionRow) dest() []any {
	return []any{&r.id, &r.applicationID, &r.consentID, &r.clientID, &r.callbackID, &r.requestURI, &r.document, &r.status, &r.handoff,
		&r.customerID, &r.account, &r.created, &r.updated, &r.expires, &r.redirectURI}
}

// interaction is the row's interaction, nil when there was none.
func (r *interactionRow) interaction() (*Interaction, error) {
	if r.id == nil {
		return nil, nil
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	ms := func(p *int64) time.Time {
		if p == nil {
			return time.UnixMilli(0).UTC()
		}
		return time.UnixMilli(*p).UTC()
	}
	it := &Interaction{ID: *r.id, ApplicationID: str(r.applicationID), ConsentID: str(r.consentID), ClientID: str(r.clientID),
		CallbackID: str(r.callbackID), RequestURI: str(r.requestURI), Document: str(r.document), Status: str(r.status),
		Handoff: r.handoff != nil && *r.handoff == 1, CustomerID: str(r.customerID), RedirectURI: str(r.redirectURI),
		CreatedAt: ms(r.created), UpdatedAt: ms(r.updated), ExpiresAt: ms(r.expires)}
	if r.account != nil {
		it.DebtorAccount = &Account{}
		if err := json.Unmarshal([]byte(*r.account), it.DebtorAccount); err != nil {
			return nil, fmt.Errorf("holder: decode debtor account: %w", err)
		}
	}
	return it, nil
}

func insertInteraction(ctx context.Context, tx *sql.Tx, it *Interaction) error {
	handoff := 0
	if it.Handoff {
		handoff = 1
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO holder_interactions (`+interactionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, $10, $11, $12, $13)`,
		it.ID, it.ApplicationID, it.ConsentID, it.ClientID, it.CallbackID, it.RequestURI, it.Document, it.Status, handoff,
		it.CreatedAt.UnixMilli(), it.UpdatedAt.UnixMilli(), it.ExpiresAt.UnixMilli(), it.RedirectURI)
	if err != nil {
		return fmt.Errorf("holder: insert interaction: %w", err)
	}
	return nil
}

func updateInteraction(ctx context.Context, tx *sql.Tx, it *Interaction) error {
	var account any
	if it.DebtorAccount != nil {
		b, err := json.Marshal(it.DebtorAccount)
		if err != nil {
			return err
		}
		account = string(b)
	}
	var customer any
	if it.CustomerID != "" {
		customer = it.CustomerID
	}
	_, err := tx.ExecContext(ctx, `UPDATE holder_interactions SET status = $1, customer_id = $2, debtor_account = $3, updated_at = $4 WHERE id = $5`,
		it.Status, customer, account, it.UpdatedAt.UnixMilli(), it.ID)
	if err != nil {
		return fmt.Errorf("holder: update interaction: %w", err)
	}
	return nil
}

func insertStep(ctx context.Context, tx *sql.Tx, id, step string, d *Device, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO holder_interaction_steps (interaction_id, seq, step, platform, os, os_version, created_at)
		SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6 FROM holder_interaction_steps WHERE interaction_id = $1`,
		id, step, d.Platform, d.OS, d.OSVersion, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("holder: record %s step: %w", step, err)
	}
	return nil
}

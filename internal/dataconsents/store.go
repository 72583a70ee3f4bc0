package dataconsents

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

type querier interface {
	rowQuerier
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// rowQuerier reads one row; the journey's Find passes a consentflow.Querier.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const consentColumns = `id, application_id, status, document, business_document, permissions, is_linked, expires_at, due_at,
	rejection, holder_application_id, account_ids, created_at, authorised_at, status_updated_at`

func insertConsent(ctx context.Context, tx *sql.Tx, c *Consent) error {
	linked := 0
	if c.IsLinked {
		linked = 1
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO data_consents (`+consentColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, NULL, $10, NULL, $11)`,
		c.ID, c.ApplicationID, string(c.Status), c.Document, c.BusinessDocument, strings.Join(c.Permissions, " "), linked,
		nullTime(c.ExpiresAt), nullTime(c.DueAt), c.CreatedAt.UnixMilli(), c.StatusUpdatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("dataconsents: insert consent: %w", err)
	}
	return nil
}

// updateConsent writes c's mutable fields, provided the row is still in
// status from with expiry fromExpiry (so concurrent changes do not cross).
func updateConsent(ctx context.Context, tx *sql.Tx, c *Consent, from Status, fromExpiry time.Time) error {
	var rejection, accounts, holderApp any
	if c.Rejection != nil {
		b, err := json.Marshal(c.Rejection)
		if err != nil {
			return fmt.Errorf("dataconsents: encode rejection: %w", err)
		}
		rejection = string(b)
	}
	if c.AccountIDs != nil {
		b, err := json.Marshal(c.AccountIDs)
		if err != nil {
			return fmt.Errorf("dataconsents: encode account ids: %w", err)
		}
		accounts = string(b)
	}
	if c.HolderApplicationID != "" {
		holderApp = c.HolderApplicationID
	}
	res, err := tx.ExecContext(ctx, `UPDATE data_consents SET status = $1, expires_at = $2, due_at = $3, rejection = $4,
		holder_application_id = $5, account_ids = $6, authorised_at = $7, status_updated_at = $8
		WHERE id = $9 AND status = $10 AND COALESCE(expires_at, 0) = $11`,
		string(c.Status), nullTime(c.ExpiresAt), nullTime(c.DueAt), rejection, holderApp, accounts,
		nullTime(c.AuthorisedAt), c.StatusUpdatedAt.UnixMilli(), c.ID, string(from), msOrZero(fromExpiry))
	if err != nil {
		return fmt.Errorf("dataconsents: update consent: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("dataconsents: update consent: %w", err)
	} else if n != 1 {
		return ErrInvalidTransition
	}
	return nil
}

func scanConsent(scan func(...any) error) (*Consent, error) {
	var (
		c                                Consent
		status, perms                    string
		linked                           int
		expires, due, authorised         sql.NullInt64
		rejection, holderApp, accountIDs sql.NullString
		created, statusUpdated           int64
	)
	if err := scan(&c.ID, &c.ApplicationID, &status, &c.Document, &c.BusinessDocument, &perms, &linked, &expires, &due,
		&rejection, &holderApp, &accountIDs, &created, &authorised, &statusUpdated); err != nil {
		return nil, err
	}
	c.Status, c.Permissions, c.IsLinked = Status(status), strings.Fields(perms), linked == 1
	if rejection.Valid {
		c.Rejection = &Rejection{}
		if err := json.Unmarshal([]byte(rejection.String), c.Rejection); err != nil {
			return nil, fmt.Errorf("dataconsents: decode rejection: %w", err)
		}
	}
	if accountIDs.Valid {
		if err := json.Unmarshal([]byte(accountIDs.String), &c.AccountIDs); err != nil {
			return nil, fmt.Errorf("dataconsents: decode account ids: %w", err)
		}
	}
	c.HolderApplicationID = holderApp.String
	c.ExpiresAt, c.DueAt, c.AuthorisedAt = fromNull(expires), fromNull(due), fromNull(authorised)
	c.CreatedAt, c.StatusUpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(statusUpdated).UTC()
	return &c, nil
}

func getConsent(ctx context.Context, q rowQuerier, id string) (*Consent, error) {
	c, err := scanConsent(q.QueryRowContext(ctx, `SELECT `+consentColumns+` FROM data_consents WHERE id = $1`, id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("dataconsents: read consent: %w", err)
	}
	return c, nil
}

// customerConsents lists the consents a holder partner's customer authorised, newest first.
func customerConsents(ctx context.Context, q querier, holderAppID, document string) ([]*Consent, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+consentColumns+` FROM data_consents
		WHERE holder_application_id = $1 AND document = $2 AND status = $3 ORDER BY authorised_at DESC, id`,
		holderAppID, document, string(StatusAuthorised))
	if err != nil {
		return nil, fmt.Errorf("dataconsents: list customer consents: %w", err)
	}
	defer rows.Close()
	var out []*Consent
	for rows.Next() {
		c, err := scanConsent(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("dataconsents: list customer consents: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func insertExtension(ctx context.Context, tx *sql.Tx, e *Extension) error {
	user, err := json.Marshal(e.LoggedUser)
	if err != nil {
		return fmt.Errorf("dataconsents: encode loggedUser: %w", err)
	}
	var business any
	if e.BusinessEntity != nil {
		b, err := json.Marshal(e.BusinessEntity)
		if err != nil {
			return fmt.Errorf("dataconsents: encode businessEntity: %w", err)
		}
		business = string(b)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO data_consent_extensions (consent_id, seq, expires_at, previous_expires_at,
		logged_user, business_entity, customer_ip, user_agent, requested_at)
		SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7, $8 FROM data_consent_extensions WHERE consent_id = $1`,
		e.ConsentID, nullTime(e.ExpiresAt), nullTime(e.PreviousExpiresAt), string(user), business, e.CustomerIP, e.UserAgent,
		e.RequestedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("dataconsents: insert extension: %w", err)
	}
	return nil
}

// listExtensions returns a page of a consent's extensions, newest first, and their total.
func listExtensions(ctx context.Context, q querier, consentID string, limit, offset int) ([]*Extension, int, error) {
	var total int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM data_consent_extensions WHERE consent_id = $1`, consentID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("dataconsents: count extensions: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT expires_at, previous_expires_at, logged_user, business_entity, customer_ip, user_agent, requested_at
		FROM data_consent_extensions WHERE consent_id = $1 ORDER BY seq DESC LIMIT $2 OFFSET $3`, consentID, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("dataconsents: list extensions: %w", err)
	}
	defer rows.Close()
	var out []*Extension
	for rows.Next() {
		var (
			e                 = &Extension{ConsentID: consentID}
			expires, previous sql.NullInt64
			user              string
			business          sql.NullString
			requested         int64
		)
		if err := rows.Scan(&expires, &previous, &user, &business, &e.CustomerIP, &e.UserAgent, &requested); err != nil {
			return nil, 0, fmt.Errorf("dataconsents: list extensions: %w", err)
		}
		if err := json.Unmarshal([]byte(user), &e.LoggedUser); err != nil {
			return nil, 0, fmt.Errorf("dataconsents: decode extension loggedUser: %w", err)
		}
		if business.Valid {
			e.BusinessEntity = &Party{}
			if err := json.Unmarshal([]byte(business.String), e.BusinessEntity); err != nil {
				return nil, 0, fmt.Errorf("dataconsents: decode extension businessEntity: %w", err)
			}
		}
		e.ExpiresAt, e.PreviousExpiresAt, e.RequestedAt = fromNull(expires), fromNull(previous), time.UnixMilli(requested).UTC()
		out = append(out, e)
	}
	return out, total, rows.Err()
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromNull(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

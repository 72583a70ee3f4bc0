package directory

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

const softwareColumns = `org_id, software_id, org_name, org_number, client_name, roles, redirect_uris, webhook_uris, jwks, created_at, updated_at`

// save inserts sw, or replaces the record of the same organisation and
// software (keeping its created_at).
func (s *Sandbox) save(ctx context.Context, sw *Software) error {
	roles, _ := json.Marshal(sw.Roles)
	redirects, _ := json.Marshal(sw.RedirectURIs)
	hooks, _ := json.Marshal(sw.WebhookURIs)
	jwks, err := json.Marshal(sw.JWKS)
	if err != nil {
		return fmt.Errorf("directory: encode jwks: %w", err)
	}
	return s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO directory_software (`+softwareColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (org_id, software_id) DO UPDATE SET org_name = excluded.org_name, org_number = excluded.org_number,
  client_name = excluded.client_name, roles = excluded.roles, redirect_uris = excluded.redirect_uris,
  webhook_uris = excluded.webhook_uris, jwks = excluded.jwks, updated_at = excluded.updated_at`,
			sw.OrgID, sw.SoftwareID, sw.OrgName, sw.OrgNumber, sw.ClientName, string(roles), string(redirects), string(hooks),
			string(jwks), sw.CreatedAt.UnixMilli(), sw.UpdatedAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("directory: save software %s/%s: %w", sw.OrgID, sw.SoftwareID, err)
		}
		return nil
	})
}

// Software returns one software the sandbox issued a statement for, or
// ErrNotFound.
func (s *Sandbox) Software(ctx context.Context, orgID, softwareID string) (*Software, error) {
	row := s.db.Read().QueryRowContext(ctx, `SELECT `+softwareColumns+` FROM directory_software WHERE org_id = $1 AND software_id = $2`,
		orgID, softwareID)
	sw, err := scanSoftware(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return sw, err
}

// List returns every software the sandbox issued statements for, by
// organisation and software id.
func (s *Sandbox) List(ctx context.Context) ([]Software, error) {
	rows, err := s.db.Read().QueryContext(ctx, `SELECT `+softwareColumns+` FROM directory_software ORDER BY org_id, software_id`)
	if err != nil {
		return nil, fmt.Errorf("directory: list software: %w", err)
	}
	defer rows.Close()
	var list []Software
	for rows.Next() {
		sw, err := scanSoftware(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, *sw)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("directory: list software: %w", err)
	}
	return list, nil
}

func scanSoftware(row interface{ Scan(...any) error }) (*Software, error) {
	var (
		sw                            Software
		roles, redirects, hooks, jwks string
		created, updated              int64
	)
	if err := row.Scan(&sw.OrgID, &sw.SoftwareID, &sw.OrgName, &sw.OrgNumber, &sw.ClientName, &roles, &redirects, &hooks,
		&jwks, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		return nil, fmt.Errorf("directory: read software: %w", err)
	}
	for _, f := range []struct {
		raw string
		dst any
	}{{roles, &sw.Roles}, {redirects, &sw.RedirectURIs}, {hooks, &sw.WebhookURIs}, {jwks, &sw.JWKS}} {
		if err := json.Unmarshal([]byte(f.raw), f.dst); err != nil {
			return nil, fmt.Errorf("directory: software %s/%s: stored column: %w", sw.OrgID, sw.SoftwareID, err)
		}
	}
	sw.CreatedAt, sw.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return &sw, nil
}

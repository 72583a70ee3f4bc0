package auth

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

const appColumns = `id, client_id, name, company_key, scopes, redirect_urls, deep_link_url, disabled, sandbox_demo, created_at, updated_at, secret_hash,
	jwks, accept_plain_json, organisation_id, slug`

type scanner interface{ Scan(...any) error }

func scanApp(s scanner) (*Application, string, error) {
	var (
		a                 Application
		scopes, redirects string
		disabled, demo    int
		created, updated  int64
		secretHash, jwks  string
		plainJSON         int
	)
	if err := s.Scan(&a.ID, &a.ClientID, &a.Name, &a.CompanyKey, &scopes, &redirects, &a.DeepLinkURL,
		&disabled, &demo, &created, &updated, &secretHash, &jwks, &plainJSON, &a.OrganisationID, &a.Slug); err != nil {
		return nil, "", err
	}
	a.Scopes = strings.Fields(scopes)
	if err := json.Unmarshal([]byte(redirects), &a.RedirectURLs); err != nil {
		return nil, "", fmt.Errorf("auth: decode redirect URLs of %s: %w", a.ClientID, err)
	}
	a.Disabled, a.SandboxDemo, a.AcceptPlainJSON = disabled != 0, demo != 0, plainJSON != 0
	if jwks != "" {
		a.JWKS = json.RawMessage(jwks)
	}
	a.CreatedAt, a.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return &a, secretHash, nil
}

func insertApp(ctx context.Context, tx *sql.Tx, a *Application, secretHash string) error {
	redirects, err := json.Marshal(a.RedirectURLs)
	if err != nil {
		return err
	}
	if a.RedirectURLs == nil {
		redirects = []byte("[]")
	}
	// The slug is made from the name here, for every way an application is
	// created, and never changed after (see withFreeSlug).
	slug, err := withFreeSlug(ctx, tx, a.Name, func(slug string) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO applications (`+appColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			a.ID, a.ClientID, a.Name, a.CompanyKey, strings.Join(a.Scopes, " "), string(redirects), a.DeepLinkURL,
			boolInt(a.Disabled), boolInt(a.SandboxDemo), a.CreatedAt.UnixMilli(), a.UpdatedAt.UnixMilli(), secretHash,
			string(a.JWKS), boolInt(a.AcceptPlainJSON), a.OrganisationID, slug)
		return err
	})
	if err != nil {
		return fmt.Errorf("auth: insert application: %w", err)
	}
	a.Slug = slug
	return nil
}

func getApp(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, where string, arg any) (*Application, string, error) {
	a, hash, err := scanApp(q.QueryRowContext(ctx, `SELECT `+appColumns+` FROM applications WHERE `+where+` = $1`, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("auth: read application: %w", err)
	}
	return a, hash, nil
}

func listApps(ctx context.Context, db *store.DB) ([]*Application, error) {
	rows, err := db.Read().QueryContext(ctx, `SELECT `+appColumns+` FROM applications ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("auth: list applications: %w", err)
	}
	defer rows.Close()
	var out []*Application
	for rows.Next() {
		a, _, err := scanApp(rows)
		if err != nil {
			return nil, fmt.Errorf("auth: list applications: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

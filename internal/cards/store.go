package cards

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const cardColumns = `id, application_id, proxy, last_four, expiry_month, expiry_year, holder_name, phone_number,
	zip_code, address, number, neighborhood, complement, city, state, country, brand, status, created_at, updated_at`

type rowScanner interface{ Scan(...any) error }

func scanCard(r rowScanner) (*Card, error) {
	var (
		c                Card
		created, updated int64
	)
	err := r.Scan(&c.ID, &c.ApplicationID, &c.Proxy, &c.LastFour, &c.ExpiryMonth, &c.ExpiryYear, &c.HolderName, &c.PhoneNumber,
		&c.Address.ZipCode, &c.Address.Address, &c.Address.Number, &c.Address.Neighborhood, &c.Address.Complement,
		&c.Address.City, &c.Address.State, &c.Address.Country, &c.Brand, &c.Status, &created, &updated)
	if err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return &c, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// getCard finds an application's card by proxy. applicationID "" (operator
// tools) searches every application and refuses a proxy used by several.
func getCard(ctx context.Context, q querier, applicationID, proxy string) (*Card, error) {
	if applicationID != "" {
		c, err := scanCard(q.QueryRowContext(ctx, `SELECT `+cardColumns+` FROM cards WHERE application_id = $1 AND proxy = $2`, applicationID, proxy))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrCardNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("cards: read card: %w", err)
		}
		return c, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT `+cardColumns+` FROM cards WHERE proxy = $1`, proxy)
	if err != nil {
		return nil, fmt.Errorf("cards: read card: %w", err)
	}
	defer rows.Close()
	var found []*Card
	for rows.Next() {
		c, err := scanCard(rows)
		if err != nil {
			return nil, fmt.Errorf("cards: read card: %w", err)
		}
		found = append(found, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cards: read card: %w", err)
	}
	switch len(found) {
	case 0:
		return nil, ErrCardNotFound
	case 1:
		return found[0], nil
	}
	return nil, ErrAmbiguousProxy
}

func listCards(ctx context.Context, q querier, applicationID string) ([]*Card, error) {
	query, args := `SELECT `+cardColumns+` FROM cards ORDER BY created_at, proxy`, []any{}
	if applicationID != "" {
		query, args = `SELECT `+cardColumns+` FROM cards WHERE application_id = $1 ORDER BY created_at, proxy`, []any{applicationID}
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("cards: list: %w", err)
	}
	defer rows.Close()
	out := []*Card{}
	for rows.Next() {
		c, err := scanCard(rows)
		if err != nil {
			return nil, fmt.Errorf("cards: list: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func insertCard(ctx context.Context, tx *sql.Tx, c *Card, panSealed, panHash string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO cards (id, application_id, proxy, pan_sealed, pan_hash, last_four, expiry_month,
		expiry_year, holder_name, phone_number, zip_code, address, number, neighborhood, complement, city, state, country,
		brand, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`,
		c.ID, c.ApplicationID, c.Proxy, panSealed, panHash, c.LastFour, c.ExpiryMonth, c.ExpiryYear, c.HolderName,
		c.PhoneNumber, c.Address.ZipCode, c.Address.Address, c.Address.Number, c.Address.Neighborhood, c.Address.Complement,
		c.Address.City, c.Address.State, c.Address.Country, c.Brand, c.Status, c.CreatedAt.UnixMilli(), c.UpdatedAt.UnixMilli())
	return err
}

func listTokens(ctx context.Context, q querier, cardID string) ([]WalletTokenJSON, error) {
	rows, err := q.QueryContext(ctx, `SELECT token_ref, wallet, status, created_at, updated_at FROM wallet_tokens
		WHERE card_id = $1 ORDER BY created_at, token_ref`, cardID)
	if err != nil {
		return nil, fmt.Errorf("cards: list wallet tokens: %w", err)
	}
	defer rows.Close()
	out := []WalletTokenJSON{}
	for rows.Next() {
		var (
			t                WalletTokenJSON
			created, updated int64
		)
		if err := rows.Scan(&t.TokenUniqueReference, &t.Wallet, &t.Status, &created, &updated); err != nil {
			return nil, err
		}
		t.CreatedAt = time.UnixMilli(created).UTC().Format(bankly)
		t.UpdatedAt = time.UnixMilli(updated).UTC().Format(bankly)
		out = append(out, t)
	}
	return out, rows.Err()
}

const bankly = "2006-01-02T15:04:05"

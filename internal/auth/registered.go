package auth

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// RegisteredClient is the partner application of an Open Finance client
// that registered itself at Ponte's authorization server with a software
// statement (POST /register): its client_id is the one the authorization
// server generated, and it has no usable client secret, since the client
// authenticates with private_key_jwt at the authorization server only.
type RegisteredClient struct {
	ClientID       string
	Name           string
	OrganisationID string
	// SoftwareID is the statement's software_id; it becomes the company key.
	SoftwareID string
	// Scopes are the client's scopes; the application keeps those Ponte
	// knows (KnownScopes: payments, recurring-payments, consents).
	Scopes       []string
	RedirectURLs []string
	// JWKS are the client's public signing keys (see ParseJWKS); nil keeps
	// the application's current keys.
	JWKS json.RawMessage
}

// noSecret is the secret_hash of an application that has no client secret:
// it is not a hex SHA-256, so no secret ever matches it.
const noSecret = "-"

// SaveRegisteredTx creates, inside tx, the application of a dynamically
// registered client, or brings the existing one (same client_id) in step:
// name, organisation, scopes, redirect URLs and keys. The caller writes the
// authorization server's client in the same transaction.
func (s *Applications) SaveRegisteredTx(ctx context.Context, tx *sql.Tx, r RegisteredClient) (*Application, error) {
	if strings.TrimSpace(r.ClientID) == "" {
		return nil, fmt.Errorf("%w: client_id is required", ErrInvalid)
	}
	name := strings.TrimSpace(r.Name)
	if name == "" {
		name = "Open Finance client " + r.ClientID
	}
	if len(name) > 200 {
		name = name[:200]
	}
	if r.OrganisationID != "" && uuid.Validate(r.OrganisationID) != nil {
		return nil, fmt.Errorf("%w: organisation id %q must be a UUID", ErrInvalid, r.OrganisationID)
	}
	var jwks json.RawMessage
	if len(r.JWKS) > 0 {
		var err error
		if _, jwks, err = ParseJWKS(r.JWKS); err != nil {
			return nil, err
		}
	}
	var scopes []string
	for _, sc := range r.Scopes {
		if _, ok := KnownScopes[sc]; ok {
			scopes = append(scopes, sc)
		}
	}
	scopes = normalizeScopes(scopes)
	redirects := slices.Clone(r.RedirectURLs)
	if redirects == nil {
		redirects = []string{}
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	a, _, err := getApp(ctx, tx, "client_id", r.ClientID)
	switch {
	case errors.Is(err, ErrNotFound):
		companyKey := r.SoftwareID
		if !companyKeyPattern.MatchString(companyKey) {
			companyKey = "DCR"
		}
		a = &Application{ID: uuid.NewString(), ClientID: r.ClientID, Name: name, CompanyKey: companyKey, Scopes: scopes,
			RedirectURLs: redirects, JWKS: jwks, OrganisationID: r.OrganisationID, CreatedAt: now, UpdatedAt: now}
		if err := insertApp(ctx, tx, a, noSecret); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		if len(jwks) == 0 {
			jwks = a.JWKS
		}
		b, err := json.Marshal(redirects)
		if err != nil {
			return nil, err
		}
		_, err = tx.ExecContext(ctx, `UPDATE applications SET name = $1, scopes = $2, redirect_urls = $3, jwks = $4, organisation_id = $5,
updated_at = $6 WHERE id = $7`, name, strings.Join(scopes, " "), string(b), string(jwks), r.OrganisationID, now.UnixMilli(), a.ID)
		if err != nil {
			return nil, fmt.Errorf("auth: update registered application: %w", err)
		}
		a.Name, a.Scopes, a.RedirectURLs, a.JWKS, a.OrganisationID, a.UpdatedAt = name, scopes, redirects, jwks, r.OrganisationID, now
	}
	s.forget()
	return a, nil
}

// DisableTx disables, inside tx, the application whose client_id is
// clientID: its tokens are refused from now on (see Disable). An unknown
// client_id is ErrNotFound.
func (s *Applications) DisableTx(ctx context.Context, tx *sql.Tx, clientID string) error {
	res, err := tx.ExecContext(ctx, `UPDATE applications SET disabled = 1, updated_at = $1 WHERE client_id = $2`,
		s.clock.Now().UnixMilli(), clientID)
	if err != nil {
		return fmt.Errorf("auth: disable application: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return ErrNotFound
	}
	s.forget()
	return nil
}

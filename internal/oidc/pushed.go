package oidc

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/luikyv/go-oidc/pkg/goidc"
)

// RequestURIPrefix is the URN prefix of the request_uri values /oauth/par issues.
const RequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// ErrPushedRequestNotFound means a request_uri names no live pushed request
// of that client.
var ErrPushedRequestNotFound = errors.New("oidc: request_uri not found or expired")

// PushedRequest finds, through tx, the pushed authorization request that
// requestURI names — the full URN or its id part, as the holder partner may
// pass either — if it was issued to clientID less than RequestURILifetime
// seconds ago and has not been completed. Consent-flow tickets use it outside
// the sandbox (seed 000: the requestUri "expira em 60 segundos").
func (s *Storage) PushedRequest(ctx context.Context, tx *sql.Tx, requestURI, clientID string) (*goidc.AuthnSession, error) {
	if requestURI == "" || clientID == "" {
		return nil, ErrPushedRequestNotFound
	}
	if !strings.HasPrefix(requestURI, RequestURIPrefix) {
		requestURI = RequestURIPrefix + requestURI
	}
	var (
		data, owner string
		createdAt   int64
	)
	err := tx.QueryRowContext(ctx, `SELECT data, client_id, created_at FROM oidc_authn_sessions
		WHERE pushed_auth_req_id = $1 AND expires_at > $2`, requestURI, s.nowMS()).Scan(&data, &owner, &createdAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrPushedRequestNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("oidc: find pushed request: %w", err)
	}
	// The session outlives the request_uri once /oauth/authorize has taken
	// it up; the request_uri itself lives RequestURILifetime from the push.
	if owner != clientID || s.clock.Now().Sub(time.UnixMilli(createdAt)) >= RequestURILifetime*time.Second {
		return nil, ErrPushedRequestNotFound
	}
	var as goidc.AuthnSession
	if err := json.Unmarshal([]byte(data), &as); err != nil {
		return nil, fmt.Errorf("oidc: decode authn session: %w", err)
	}
	return &as, nil
}

// ConsentID returns the Ponte consent a session asks for (scope
// "consent:urn:ponte:…" or, for a recurring consent, the Automatic Payments
// "recurring-consent:urn:ponte:rc:…"), or "".
func ConsentID(as *goidc.AuthnSession) string {
	return ConsentIDIn(as.Scopes)
}

// ConsentIDIn returns the consent a space-separated scope list names with a
// consent-bound scope (either form), or "".
func ConsentIDIn(scopes string) string {
	for _, sc := range strings.Fields(scopes) {
		if id, ok := consentOf(sc); ok {
			return id
		}
	}
	return ""
}

// consentOf returns the consent id of a consent-bound scope. The recurring
// form is tried first: "recurring-consent:" does not start with "consent:",
// but keeping the order explicit says which prefix wins.
func consentOf(scope string) (string, bool) {
	if id, ok := strings.CutPrefix(scope, RecurringConsentScopePrefix); ok {
		return id, id != ""
	}
	if id, ok := strings.CutPrefix(scope, ConsentScopePrefix); ok {
		return id, id != ""
	}
	return "", false
}

// ClientName returns a registered client's display name.
func (s *Storage) ClientName(ctx context.Context, clientID string) (string, bool) {
	c, err := s.Clients().Client(ctx, clientID)
	if err != nil {
		return "", false
	}
	return c.Name, c.Name != ""
}

// ConsentScopeIn reports whether a space-separated scope list holds a
// consent-bound scope: consent:{consentId} or recurring-consent:{recurringConsentId}.
func ConsentScopeIn(scopes string) bool {
	return ConsentIDIn(scopes) != ""
}

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
// "consent:urn:ponte:…"), or "".
func ConsentID(as *goidc.AuthnSession) string {
	for _, sc := range strings.Fields(as.Scopes) {
		if id, ok := strings.CutPrefix(sc, "consent:"); ok {
			return id
		}
	}
	return ""
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
// consent:{consentId} scope.
func ConsentScopeIn(scopes string) bool {
	for _, sc := range strings.Fields(scopes) {
		if strings.HasPrefix(sc, "consent:") {
			return true
		}
	}
	return false
}

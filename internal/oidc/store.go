package oidc

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
)

// ErrNotFound is returned by the storage managers for an unknown, deleted or
// expired client or session.
var ErrNotFound = errors.New("oidc: not found")

// Storage holds go-oidc's clients, authorization sessions and grant sessions
// in Ponte's database (SQLite or PostgreSQL).
//
// Expiry is enforced on Ponte's clock as well as by go-oidc (which reads the
// wall clock): when a session is saved, the lifetime go-oidc gave it is
// measured from Ponte's clock, and lookups refuse rows past that instant. With
// the system clock both agree; with a fake clock tests can expire sessions.
type Storage struct {
	db    *store.DB
	clock clock.Clock
}

// NewStorage returns the storage managers backed by db.
func NewStorage(db *store.DB, c clock.Clock) *Storage { return &Storage{db: db, clock: c} }

// Clients is the goidc.ClientManager.
func (s *Storage) Clients() goidc.ClientManager { return clientManager{s} }

// AuthnSessions is the goidc.AuthnSessionManager.
func (s *Storage) AuthnSessions() goidc.AuthnSessionManager { return authnSessionManager{s} }

// GrantSessions is the goidc.GrantSessionManager.
func (s *Storage) GrantSessions() goidc.GrantSessionManager { return grantSessionManager{s} }

func (s *Storage) nowMS() int64 { return s.clock.Now().UnixMilli() }

// expiresAtMS maps go-oidc's wall-clock expiry (unix seconds, 0 = never) onto
// Ponte's clock.
func (s *Storage) expiresAtMS(expiresAt int) int64 {
	if expiresAt == 0 {
		return math.MaxInt64
	}
	remaining := time.Duration(expiresAt-goidc.TimestampNow()) * time.Second
	return s.clock.Now().Add(remaining).UnixMilli()
}

func hashKey(v string) string {
	if v == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// nullable stores "" as NULL so that UNIQUE columns allow many absent keys.
func nullable(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// --- clients ---

type clientManager struct{ s *Storage }

func (m clientManager) Save(ctx context.Context, c *goidc.Client) error {
	return m.s.db.Write(ctx, func(tx *sql.Tx) error { return m.saveTx(ctx, tx, c) })
}

// saveTx writes c inside tx. A registration access token (dynamic
// registration) is stored as a hash only, and the software_id column keeps
// one client per software statement's software (see registeredToken).
func (m clientManager) saveTx(ctx context.Context, tx *sql.Tx, c *goidc.Client) error {
	if c.ID == "" {
		return errors.New("oidc: client without id")
	}
	stored := *c
	stored.RegistrationToken = hashRegistrationToken(c.RegistrationToken)
	data, err := json.Marshal(&stored)
	if err != nil {
		return fmt.Errorf("oidc: encode client: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO oidc_clients (id, data, software_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
ON CONFLICT (id) DO UPDATE SET data = excluded.data, software_id = excluded.software_id, updated_at = excluded.updated_at`,
		c.ID, string(data), nullable(SoftwareID(c)), m.s.nowMS())
	return err
}

func (m clientManager) Client(ctx context.Context, id string) (*goidc.Client, error) {
	var data string
	err := m.s.db.Read().QueryRowContext(ctx, `SELECT data FROM oidc_clients WHERE id = $1`, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("oidc: load client: %w", err)
	}
	var c goidc.Client
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		return nil, fmt.Errorf("oidc: decode client %s: %w", id, err)
	}
	// Only the hash is stored: the plain token is given back to go-oidc's
	// comparison when the request presented the matching one.
	c.RegistrationToken = registeredToken(ctx, c.RegistrationToken)
	scopes := c.ScopeIDs
	initiatorPolicy(&c)
	if SoftwareID(&c) != "" {
		// A client registered with a software statement keeps the scopes its
		// statement's roles allowed (see registrar.scopes).
		c.ScopeIDs = scopes
	}
	return &c, nil
}

func (m clientManager) Delete(ctx context.Context, id string) error {
	return m.s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM oidc_clients WHERE id = $1`, id)
		return err
	})
}

// --- authorization sessions ---

type authnSessionManager struct{ s *Storage }

func (m authnSessionManager) Save(ctx context.Context, as *goidc.AuthnSession) error {
	if as.ID == "" {
		return errors.New("oidc: authn session without id")
	}
	stored := *as
	stored.AuthCode = "" // kept as a hash only
	data, err := json.Marshal(&stored)
	if err != nil {
		return fmt.Errorf("oidc: encode authn session: %w", err)
	}
	now, exp := m.s.nowMS(), m.s.expiresAtMS(as.ExpiresAtTimestamp)
	return m.s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO oidc_authn_sessions
(id, client_id, pushed_auth_req_id, callback_id, auth_code_hash, ciba_auth_id, data, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (id) DO UPDATE SET client_id = excluded.client_id, pushed_auth_req_id = excluded.pushed_auth_req_id,
callback_id = excluded.callback_id, auth_code_hash = excluded.auth_code_hash, ciba_auth_id = excluded.ciba_auth_id,
data = excluded.data, expires_at = excluded.expires_at`,
			as.ID, as.ClientID, nullable(as.PushedAuthReqID), nullable(as.CallbackID), nullable(hashKey(as.AuthCode)),
			nullable(as.CIBAAuthID), string(data), now, exp)
		return err
	})
}

func (m authnSessionManager) load(ctx context.Context, column, value string) (*goidc.AuthnSession, error) {
	if value == "" {
		return nil, ErrNotFound
	}
	var data string
	// column is one of this file's constants, never user input.
	err := m.s.db.Read().QueryRowContext(ctx,
		`SELECT data FROM oidc_authn_sessions WHERE `+column+` = $1 AND expires_at > $2`, value, m.s.nowMS()).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("oidc: load authn session: %w", err)
	}
	var as goidc.AuthnSession
	if err := json.Unmarshal([]byte(data), &as); err != nil {
		return nil, fmt.Errorf("oidc: decode authn session: %w", err)
	}
	return &as, nil
}

func (m authnSessionManager) SessionByCallbackID(ctx context.Context, id string) (*goidc.AuthnSession, error) {
	return m.load(ctx, "callback_id", id)
}

func (m authnSessionManager) SessionByAuthCode(ctx context.Context, code string) (*goidc.AuthnSession, error) {
	as, err := m.load(ctx, "auth_code_hash", hashKey(code))
	if err != nil {
		return nil, err
	}
	as.AuthCode = code
	return as, nil
}

// SessionByPushedAuthReqID finds a pushed request for /oauth/authorize only
// until /oauth/authorize has taken it up (given it a callback id): a
// request_uri opens one authorization (RFC 9126 §4, FAPI-BR). go-oidc
// clears it only when the flow ends, so while the user is still at the
// holder a second authorize would otherwise start the journey again.
// (PushedRequest, for consent-flow tickets, still finds it then.)
func (m authnSessionManager) SessionByPushedAuthReqID(ctx context.Context, id string) (*goidc.AuthnSession, error) {
	return m.load(ctx, "callback_id IS NULL AND pushed_auth_req_id", id)
}

func (m authnSessionManager) SessionByCIBAAuthID(ctx context.Context, id string) (*goidc.AuthnSession, error) {
	return m.load(ctx, "ciba_auth_id", id)
}

func (m authnSessionManager) Delete(ctx context.Context, id string) error {
	return m.s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM oidc_authn_sessions WHERE id = $1`, id)
		return err
	})
}

// --- grant sessions ---

type grantSessionManager struct{ s *Storage }

func (m grantSessionManager) Save(ctx context.Context, gs *goidc.GrantSession) error {
	if gs.ID == "" || gs.TokenID == "" {
		return errors.New("oidc: grant session without id or token id")
	}
	stored := *gs
	stored.TokenID, stored.RefreshToken, stored.AuthCode = "", "", "" // kept as hashes only
	now, exp := m.s.nowMS(), m.s.expiresAtMS(gs.ExpiresAtTimestamp)
	tokenExp := m.s.expiresAtMS(gs.LastTokenExpiresAtTimestamp)
	if until, ok := consentExpiry(gs.Store); ok && gs.RefreshToken != "" {
		// A refresh token lives until its consent's expiry, as the grant
		// handler last read it: at the code exchange, then at each refresh
		// (an extended data-sharing consent, an open-ended consent in use).
		// The row, and go-oidc's wall-clock copy of its expiry, stay
		// expiredRefreshMemory longer so that the grant handler, which
		// enforces until, can answer a late refresh with invalid_grant.
		exp = until + expiredRefreshMemory.Milliseconds()
		stored.ExpiresAtTimestamp = goidc.TimestampNow() + int((exp-now)/1000)
		tokenExp = min(tokenExp, until)
	}
	// The access token's own expiry, on Ponte's clock like the grant's:
	// with a refresh token the grant outlives each access token.
	tokenExp = min(tokenExp, exp)
	data, err := json.Marshal(&stored)
	if err != nil {
		return fmt.Errorf("oidc: encode grant session: %w", err)
	}
	return m.s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO oidc_grant_sessions
(id, client_id, token_id_hash, refresh_token_hash, auth_code_hash, data, created_at, expires_at, token_expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (id) DO UPDATE SET client_id = excluded.client_id, token_id_hash = excluded.token_id_hash,
refresh_token_hash = COALESCE(excluded.refresh_token_hash, oidc_grant_sessions.refresh_token_hash),
auth_code_hash = COALESCE(excluded.auth_code_hash, oidc_grant_sessions.auth_code_hash),
data = excluded.data, expires_at = excluded.expires_at, token_expires_at = excluded.token_expires_at`,
			gs.ID, gs.ClientID, hashKey(gs.TokenID), nullable(hashKey(gs.RefreshToken)), nullable(hashKey(gs.AuthCode)),
			string(data), now, exp, tokenExp)
		return err
	})
}

// load finds the grant session whose column is hash and whose expiry
// column (expires_at for the grant, token_expires_at for its access token)
// is still ahead on Ponte's clock.
func (m grantSessionManager) load(ctx context.Context, column, expiry, hash string) (*goidc.GrantSession, error) {
	if hash == "" {
		return nil, ErrNotFound
	}
	var data string
	// column and expiry are this file's constants, never user input.
	err := m.s.db.Read().QueryRowContext(ctx,
		`SELECT data FROM oidc_grant_sessions WHERE `+column+` = $1 AND `+expiry+` > $2`, hash, m.s.nowMS()).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("oidc: load grant session: %w", err)
	}
	var gs goidc.GrantSession
	if err := json.Unmarshal([]byte(data), &gs); err != nil {
		return nil, fmt.Errorf("oidc: decode grant session: %w", err)
	}
	return &gs, nil
}

// SessionByTokenID returns the grant session of the access token id while
// that token is live. The refresh token is not restored (only its hash is kept).
func (m grantSessionManager) SessionByTokenID(ctx context.Context, id string) (*goidc.GrantSession, error) {
	gs, err := m.load(ctx, "token_id_hash", "token_expires_at", hashKey(id))
	if err != nil {
		return nil, err
	}
	gs.TokenID = id
	return gs, nil
}

// SessionByRefreshToken returns the grant session of the refresh token. The
// access token id is not restored (only its hash is kept).
func (m grantSessionManager) SessionByRefreshToken(ctx context.Context, token string) (*goidc.GrantSession, error) {
	gs, err := m.load(ctx, "refresh_token_hash", "expires_at", hashKey(token))
	if err != nil {
		return nil, err
	}
	gs.RefreshToken = token
	return gs, nil
}

func (m grantSessionManager) Delete(ctx context.Context, id string) error {
	return m.s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM oidc_grant_sessions WHERE id = $1`, id)
		return err
	})
}

func (m grantSessionManager) DeleteByAuthCode(ctx context.Context, code string) error {
	if code == "" {
		return nil
	}
	return m.s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM oidc_grant_sessions WHERE auth_code_hash = $1`, hashKey(code))
		return err
	})
}

// Sweep deletes expired authorization and grant sessions.
func (s *Storage) Sweep(ctx context.Context) error {
	now := s.nowMS()
	return s.db.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM oidc_authn_sessions WHERE expires_at <= $1`, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM oidc_grant_sessions WHERE expires_at <= $1`, now)
		return err
	})
}

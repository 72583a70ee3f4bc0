package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/keyfile"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Applications manages partner applications.
type Applications struct {
	db    *store.DB
	clock clock.Clock

	// active caches enabled applications for token verification. Changes made
	// through this service clear it at once; changes made by another process
	// (the CLI, another instance) are seen within activeTTL.
	mu     sync.Mutex
	active map[string]activeEntry
}

type activeEntry struct {
	app     *Application
	fetched time.Time
}

// activeTTL bounds how long another process's change to an application
// (a disable, a scope change) may go unseen by this one.
const activeTTL = 2 * time.Second

func (s *Applications) forget() {
	s.mu.Lock()
	clear(s.active)
	s.mu.Unlock()
}

// NewApplications returns the application service.
func NewApplications(db *store.DB, c clock.Clock) *Applications {
	return &Applications{db: db, clock: c, active: map[string]activeEntry{}}
}

// Create registers an application and returns it with its client secret. The
// secret is stored only as a hash: this is the one time it can be read.
func (s *Applications) Create(ctx context.Context, n NewApplication) (*Application, string, error) {
	return s.create(ctx, n, false)
}

func (s *Applications) create(ctx context.Context, n NewApplication, demo bool) (*Application, string, error) {
	n.Scopes = normalizeScopes(n.Scopes)
	if err := n.Validate(); err != nil {
		return nil, "", err
	}
	secret, hash, err := newSecret()
	if err != nil {
		return nil, "", err
	}
	var jwks json.RawMessage
	if len(n.JWKS) > 0 {
		if _, jwks, err = ParseJWKS(n.JWKS); err != nil {
			return nil, "", err
		}
	}
	now := s.clock.Now().Truncate(1e6)
	a := &Application{
		ID: uuid.NewString(), ClientID: uuid.NewString(), Name: strings.TrimSpace(n.Name), CompanyKey: n.CompanyKey,
		Scopes: n.Scopes, RedirectURLs: n.RedirectURLs, DeepLinkURL: n.DeepLinkURL, SandboxDemo: demo,
		JWKS: jwks, AcceptPlainJSON: n.AcceptPlainJSON || demo, OrganisationID: n.OrganisationID,
		CreatedAt: now, UpdatedAt: now,
	}
	if a.RedirectURLs == nil {
		a.RedirectURLs = []string{}
	}
	if err := s.db.Write(ctx, func(tx *sql.Tx) error { return insertApp(ctx, tx, a, hash) }); err != nil {
		return nil, "", err
	}
	return a, secret, nil
}

// Get returns an application by client_id or internal id.
func (s *Applications) Get(ctx context.Context, idOrClientID string) (*Application, error) {
	a, _, err := s.getBy(ctx, "client_id", idOrClientID)
	if errors.Is(err, ErrNotFound) {
		a, _, err = s.getBy(ctx, "id", idOrClientID)
	}
	return a, err
}

// getBy reads an application by one column (a constant of this package)
// through a statement prepared once on the read pool: Get is on the hot
// path of every request that looks up its caller.
func (s *Applications) getBy(ctx context.Context, column, value string) (*Application, string, error) {
	st, err := s.db.ReadStmt(ctx, `SELECT `+appColumns+` FROM applications WHERE `+column+` = $1`)
	if err != nil {
		return nil, "", fmt.Errorf("auth: prepare application read: %w", err)
	}
	a, hash, err := scanApp(st.QueryRowContext(ctx, value))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("auth: read application: %w", err)
	}
	return a, hash, nil
}

// List returns every application, oldest first.
func (s *Applications) List(ctx context.Context) ([]*Application, error) { return listApps(ctx, s.db) }

// RotateSecret replaces the client secret; the old one stops working at once.
func (s *Applications) RotateSecret(ctx context.Context, idOrClientID string) (*Application, string, error) {
	a, err := s.Get(ctx, idOrClientID)
	if err != nil {
		return nil, "", err
	}
	secret, hash, err := newSecret()
	if err != nil {
		return nil, "", err
	}
	a.UpdatedAt = s.clock.Now().Truncate(time.Millisecond)
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE applications SET secret_hash = $1, updated_at = $2 WHERE id = $3`,
			hash, a.UpdatedAt.UnixMilli(), a.ID)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("auth: rotate secret: %w", err)
	}
	s.forget()
	return a, secret, nil
}

// Disable stops an application: its secret and every token it holds are refused from now on.
func (s *Applications) Disable(ctx context.Context, idOrClientID string) (*Application, error) {
	a, err := s.Get(ctx, idOrClientID)
	if err != nil {
		return nil, err
	}
	a.Disabled, a.UpdatedAt = true, s.clock.Now().Truncate(time.Millisecond)
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE applications SET disabled = 1, updated_at = $1 WHERE id = $2`, a.UpdatedAt.UnixMilli(), a.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("auth: disable application: %w", err)
	}
	s.forget()
	return a, nil
}

// SetJWKS registers the application's public JSON Web Key Set (see
// ParseJWKS for what is accepted), replacing any previous one; an empty jwks
// removes the keys. applicationID is the application's id or client_id. The
// change is visible at once on this instance and within the enabled-
// application cache's two seconds on others.
func (s *Applications) SetJWKS(ctx context.Context, applicationID string, jwks json.RawMessage) (*Application, error) {
	var stored json.RawMessage
	if len(bytes.TrimSpace(jwks)) > 0 {
		var err error
		if _, stored, err = ParseJWKS(jwks); err != nil {
			return nil, err
		}
	}
	return s.update(ctx, applicationID, "set JWKS", `jwks = $1`, string(stored), func(a *Application) { a.JWKS = stored })
}

// SetOrganisationID records the application's Open Finance organisation id
// (a UUID; "" clears it). applicationID is the application's id or client_id.
func (s *Applications) SetOrganisationID(ctx context.Context, applicationID, organisationID string) (*Application, error) {
	if organisationID != "" && uuid.Validate(organisationID) != nil {
		return nil, fmt.Errorf("%w: organisation id %q must be a UUID", ErrInvalid, organisationID)
	}
	return s.update(ctx, applicationID, "set organisation id", `organisation_id = $1`, organisationID,
		func(a *Application) { a.OrganisationID = organisationID })
}

// Rename changes the application's display name. Its slug stays: the
// interaction URLs its backend and app already use keep working.
// applicationID is the application's id or client_id.
func (s *Applications) Rename(ctx context.Context, applicationID, name string) (*Application, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return nil, fmt.Errorf("%w: name is required (at most 200 characters)", ErrInvalid)
	}
	return s.update(ctx, applicationID, "rename", `name = $1`, name, func(a *Application) { a.Name = name })
}

// SetAcceptPlainJSON says whether the application may send plain JSON bodies
// (application/json) where the Payments API requires signed JWTs.
// applicationID is the application's id or client_id.
func (s *Applications) SetAcceptPlainJSON(ctx context.Context, applicationID string, accept bool) (*Application, error) {
	return s.update(ctx, applicationID, "set accept_plain_json", `accept_plain_json = $1`, boolInt(accept),
		func(a *Application) { a.AcceptPlainJSON = accept })
}

// AddRedirectURL registers one more redirect URL for the application
// (absolute, no userinfo or fragment); an already registered one is kept
// as is. applicationID is the application's id or client_id.
func (s *Applications) AddRedirectURL(ctx context.Context, applicationID, redirectURL string) (*Application, error) {
	if err := checkAbsoluteURL(redirectURL); err != nil {
		return nil, fmt.Errorf("%w: redirect URL %q %v", ErrInvalid, redirectURL, err)
	}
	a, err := s.Get(ctx, applicationID)
	if err != nil {
		return nil, err
	}
	if slices.Contains(a.RedirectURLs, redirectURL) {
		return a, nil
	}
	urls := append(slices.Clone(a.RedirectURLs), redirectURL)
	b, err := json.Marshal(urls)
	if err != nil {
		return nil, err
	}
	return s.update(ctx, a.ID, "add redirect URL", `redirect_urls = $1`, string(b), func(a *Application) { a.RedirectURLs = urls })
}

// update sets one column ("col = $1") of an application and clears the
// enabled-application cache.
func (s *Applications) update(ctx context.Context, idOrClientID, what, set string, value any, apply func(*Application)) (*Application, error) {
	a, err := s.Get(ctx, idOrClientID)
	if err != nil {
		return nil, err
	}
	a.UpdatedAt = s.clock.Now().Truncate(time.Millisecond)
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE applications SET `+set+`, updated_at = $2 WHERE id = $3`, value, a.UpdatedAt.UnixMilli(), a.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("auth: %s: %w", what, err)
	}
	apply(a)
	s.forget()
	return a, nil
}

// Authenticate checks a client's credentials. Every failure — unknown client,
// wrong secret, disabled application — is the same ErrNotFound to the caller.
func (s *Applications) Authenticate(ctx context.Context, clientID, secret string) (*Application, error) {
	a, hash, err := s.getBy(ctx, "client_id", clientID)
	if errors.Is(err, ErrNotFound) {
		// Spend the same work as a real comparison so timing does not tell
		// registered client ids from unknown ones.
		subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(hashSecret("")))
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(hash)) != 1 || a.Disabled {
		return nil, ErrNotFound
	}
	return a, nil
}

// lookup returns an enabled application by client_id, for token verification
// on every request. Reading it from the database on every call was a tenth
// of a request's CPU, so it is cached for activeTTL.
func (s *Applications) lookup(ctx context.Context, clientID string) (*Application, error) {
	s.mu.Lock()
	e, ok := s.active[clientID]
	s.mu.Unlock()
	if ok && s.clock.Now().Sub(e.fetched) < activeTTL {
		return e.app, nil
	}
	st, err := s.db.ReadStmt(ctx, `SELECT `+appColumns+` FROM applications WHERE client_id = $1`)
	if err != nil {
		return nil, err
	}
	a, _, err := scanApp(st.QueryRowContext(ctx, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("auth: read application: %w", err)
	}
	if a.Disabled {
		return nil, ErrNotFound
	}
	s.mu.Lock()
	if len(s.active) >= 10000 {
		clear(s.active)
	}
	s.active[clientID] = activeEntry{app: a, fetched: s.clock.Now()}
	s.mu.Unlock()
	return a, nil
}

// DemoCredentials are the sandbox demo application's credentials.
type DemoCredentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// EnsureDemo makes sure the sandbox demo application exists, holds every known
// scope, and that its secret is readable from secretFile (mode 0600), so the
// same credentials are printed at every start. If the file was lost, the secret
// is rotated and the file written anew.
func (s *Applications) EnsureDemo(ctx context.Context, secretFile string) (*Application, string, error) {
	all := slices.Sorted(maps.Keys(KnownScopes))
	a, hash, err := getApp(ctx, s.db.Read(), "sandbox_demo", 1)
	switch {
	case errors.Is(err, ErrNotFound):
		a, secret, err := s.create(ctx, NewApplication{Name: "Ponte sandbox demo", CompanyKey: "DEMO", Scopes: all}, true)
		if store.IsUniqueViolation(err) {
			// Another instance created it at the same moment: use theirs.
			return s.EnsureDemo(ctx, secretFile)
		}
		if err != nil {
			return nil, "", fmt.Errorf("auth: create demo application: %w", err)
		}
		return a, secret, writeDemo(secretFile, DemoCredentials{a.ClientID, secret})
	case err != nil:
		return nil, "", err
	}
	if !slices.Equal(a.Scopes, all) || a.Disabled || !a.AcceptPlainJSON {
		// The demo application keeps every scope, stays enabled and may send
		// plain JSON bodies, also in a database made before those existed.
		a.Scopes, a.Disabled, a.AcceptPlainJSON, a.UpdatedAt = all, false, true, s.clock.Now()
		err := s.db.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE applications SET scopes = $1, disabled = 0, accept_plain_json = 1, updated_at = $2 WHERE id = $3`,
				strings.Join(all, " "), a.UpdatedAt.UnixMilli(), a.ID)
			return err
		})
		if err != nil {
			return nil, "", fmt.Errorf("auth: update demo application: %w", err)
		}
		s.forget()
	}
	var creds DemoCredentials
	if b, err := os.ReadFile(secretFile); err == nil && json.Unmarshal(b, &creds) == nil &&
		creds.ClientID == a.ClientID && subtle.ConstantTimeCompare([]byte(hashSecret(creds.ClientSecret)), []byte(hash)) == 1 {
		return a, creds.ClientSecret, nil
	}
	a, secret, err := s.RotateSecret(ctx, a.ID)
	if err != nil {
		return nil, "", err
	}
	return a, secret, writeDemo(secretFile, DemoCredentials{a.ClientID, secret})
}

func writeDemo(path string, c DemoCredentials) error {
	b, _ := json.MarshalIndent(c, "", "  ")
	return keyfile.WriteAtomic(path, b, 0o600)
}

// newSecret returns a 256-bit random secret and its hash. A plain SHA-256 is
// the right hash here: the secret is random and long, so there is no
// dictionary to slow down, and token requests stay cheap.
func newSecret() (secret, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("auth: random secret: %w", err)
	}
	secret = base64.RawURLEncoding.EncodeToString(b[:])
	return secret, hashSecret(secret), nil
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

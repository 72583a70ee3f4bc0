package auth

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/keyfile"
)

// DefaultTokenTTL is the access-token lifetime unless configured otherwise.
const DefaultTokenTTL = 300 * time.Second

// accessTokenType marks Ponte's access tokens (RFC 9068) so that no other JWT
// signed with the same key can be replayed as one.
const accessTokenType = "at+jwt"

// SigningKey is Ponte's token-signing key with its key id.
type SigningKey struct {
	Private *rsa.PrivateKey
	KeyID   string
	// Retired are the keys this one replaced (RotateSigningKey), newest
	// first: they sign nothing, but they verify and are published in the
	// JWKS, so tokens, ID tokens and signed answers they signed stay
	// verifiable until they expire.
	Retired []*SigningKey

	// path is the file the key was loaded from ("" when parsed): a token
	// naming a key id the set does not know makes it look at its files
	// again, and so does the JWKS now and then, so an instance not yet
	// restarted after a rotation verifies and publishes the new key once
	// its key set has it.
	path      string
	mu        sync.Mutex
	later     []*SigningKey // keys found in the files after loading
	missed    time.Time     // the last look for an unknown key id
	refreshed time.Time     // the last look for the JWKS
}

// How often the key files are looked at again: for an unknown key id (a
// bound on what tokens naming made-up ids can cost) and for the JWKS.
const (
	reloadOnMiss = time.Second
	reloadJWKS   = time.Minute
)

// RetiredDir is the directory of path's retired keys: beside it, named for
// it without its extension (signing-key.pem: signing-key.retired/), one
// <kid>.pem file per key.
func RetiredDir(path string) string {
	return strings.TrimSuffix(path, filepath.Ext(path)) + ".retired"
}

// LoadOrCreateKey reads the PEM (PKCS#8) RSA key at path, creating a 2048-bit
// key with mode 0600 if the file does not exist, and the retired keys in
// RetiredDir(path), if any. The key id is the key's RFC 7638 thumbprint, so
// it is stable for as long as the key is.
func LoadOrCreateKey(path string) (*SigningKey, error) {
	b, _, err := keyfile.LoadOrCreate(path, newKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("auth: signing key %s: %w", path, err)
	}
	return keyWithRetired(path, b)
}

// ReadKey reads the key at path and its retired keys without creating
// anything: a missing file is an error wrapping fs.ErrNotExist.
func ReadKey(path string) (*SigningKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: signing key: %w", err)
	}
	return keyWithRetired(path, b)
}

// keyWithRetired parses the current key read from path and loads the
// retired keys beside it.
func keyWithRetired(path string, pemBytes []byte) (*SigningKey, error) {
	key, err := parseKeyPEM(path, pemBytes)
	if err != nil {
		return nil, err
	}
	if key.Retired, err = loadRetired(RetiredDir(path), key.KeyID); err != nil {
		return nil, err
	}
	key.path = path
	return key, nil
}

// RotateSigningKey makes a new key current at path and retires the one
// there (which must exist) into RetiredDir(path). The old key is written to
// the retired directory before the new one replaces it, so a crash in
// between leaves the old key current and a copy retired, and running the
// rotation again finishes it. It returns the new key, its Retired listing
// the old one first.
func RotateSigningKey(path string) (*SigningKey, error) {
	old, err := ReadKey(path)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(old.Private)
	if err != nil {
		return nil, fmt.Errorf("auth: encode signing key: %w", err)
	}
	dir := RetiredDir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: retired keys: %w", err)
	}
	if err := keyfile.WriteAtomic(filepath.Join(dir, old.KeyID+".pem"),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("auth: retire signing key %s: %w", old.KeyID, err)
	}
	fresh, err := newKeyPEM()
	if err != nil {
		return nil, err
	}
	if err := keyfile.WriteAtomic(path, fresh, 0o600); err != nil {
		return nil, fmt.Errorf("auth: write new signing key %s: %w", path, err)
	}
	return ReadKey(path)
}

// ParseKey parses a PEM (PKCS#8) RSA private key, as LoadOrCreateKey
// writes it, without retired keys.
func ParseKey(b []byte) (*SigningKey, error) { return parseKeyPEM("key", b) }

func newKeyPEM() ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parseKeyPEM(path string, b []byte) (*SigningKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("auth: signing key %s is not PEM", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("auth: parse signing key %s: %w", path, err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("auth: signing key %s is not an RSA key", path)
	}
	return newSigningKey(key)
}

// loadRetired reads every *.pem in dir (none when dir does not exist),
// newest file first, leaving out the current key (a rotation interrupted
// after retiring it) and duplicates.
func loadRetired(dir, currentKID string) ([]*SigningKey, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth: retired keys %s: %w", dir, err)
	}
	type found struct {
		key *SigningKey
		mod time.Time
	}
	var keys []found
	seen := map[string]bool{currentKID: true}
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".pem" {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("auth: retired key: %w", err)
		}
		k, err := parseKeyPEM(path, b)
		if err != nil {
			return nil, err
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("auth: retired key %s: %w", path, err)
		}
		if !seen[k.KeyID] {
			seen[k.KeyID] = true
			keys = append(keys, found{k, info.ModTime()})
		}
	}
	slices.SortStableFunc(keys, func(a, b found) int { return b.mod.Compare(a.mod) })
	out := make([]*SigningKey, len(keys))
	for i, f := range keys {
		out[i] = f.key
	}
	return out, nil
}

func newSigningKey(key *rsa.PrivateKey) (*SigningKey, error) {
	thumb, err := (&jose.JSONWebKey{Key: &key.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("auth: key thumbprint: %w", err)
	}
	return &SigningKey{Private: key, KeyID: base64.RawURLEncoding.EncodeToString(thumb)}, nil
}

// JWKS returns the public key set: the current key first, then the retired
// ones, then any found in the key files since (looked for at most once a
// minute).
func (k *SigningKey) JWKS() jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{}
	for _, key := range k.all(reloadJWKS, &k.refreshed) {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &key.Private.PublicKey, KeyID: key.KeyID, Algorithm: string(jose.PS256), Use: "sig"})
	}
	return set
}

// all is the current key, the retired ones and those found later, looking
// in the key files again first when *last is older than every.
func (k *SigningKey) all(every time.Duration, last *time.Time) []*SigningKey {
	out := append([]*SigningKey{k}, k.Retired...)
	if k.path == "" {
		return out
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if now := time.Now(); now.Sub(*last) >= every {
		*last = now
		if fresh, err := ReadKey(k.path); err == nil {
			for _, f := range append([]*SigningKey{fresh}, fresh.Retired...) {
				if !slices.ContainsFunc(append(out, k.later...), func(x *SigningKey) bool { return x.KeyID == f.KeyID }) {
					k.later = append(k.later, f)
				}
			}
		}
	}
	return append(out, k.later...)
}

// verifier returns the public key of key id kid: the current key's, a
// retired one's, or one the key files have since loading.
func (k *SigningKey) verifier(kid string) (*rsa.PublicKey, bool) {
	find := func(keys []*SigningKey) (*rsa.PublicKey, bool) {
		for _, key := range keys {
			if key.KeyID == kid {
				return &key.Private.PublicKey, true
			}
		}
		return nil, false
	}
	if pub, ok := find(append([]*SigningKey{k}, k.Retired...)); ok {
		return pub, true
	}
	k.mu.Lock()
	pub, ok := find(k.later)
	k.mu.Unlock()
	if ok {
		return pub, true
	}
	return find(k.all(reloadOnMiss, &k.missed))
}

// Tokens issues and verifies access tokens.
type Tokens struct {
	key    *SigningKey
	signer jose.Signer
	issuer string
	ttl    time.Duration
	clock  clock.Clock
	apps   *Applications

	// verified remembers tokens whose signature and claims already checked
	// out, until they expire: a partner reuses one token for many calls, and
	// the RSA verification was a sixth of a request's CPU. The application is
	// still looked up on every call, so disabling it takes effect at once.
	mu       sync.Mutex
	verified map[string]accessClaims
}

// maxVerified bounds the cache; when full it starts over.
const maxVerified = 10000

// NewTokens returns the token service. issuer is the public base URL.
func NewTokens(key *SigningKey, issuer string, ttl time.Duration, c clock.Clock, apps *Applications) (*Tokens, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: key.Private},
		(&jose.SignerOptions{}).WithType(accessTokenType).WithHeader(jose.HeaderKey("kid"), key.KeyID))
	if err != nil {
		return nil, fmt.Errorf("auth: signer: %w", err)
	}
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	return &Tokens{key: key, signer: signer, issuer: issuer, ttl: ttl, clock: c, apps: apps, verified: map[string]accessClaims{}}, nil
}

// TTL is the lifetime of issued tokens.
func (t *Tokens) TTL() time.Duration { return t.ttl }

type accessClaims struct {
	jwt.Claims
	AuthorizedParty string        `json:"azp"`
	Scope           string        `json:"scope"`
	Confirmation    *confirmation `json:"cnf,omitempty"`
}

// confirmation is the RFC 7800 cnf claim of a certificate-bound token (RFC 8705 §3.1).
type confirmation struct {
	X5tS256 string `json:"x5t#S256"`
}

// Issue signs an access token for app holding scopes.
func (t *Tokens) Issue(app *Application, scopes []string) (string, error) {
	return t.IssueBound(app, scopes, "")
}

// IssueBound signs an access token for app holding scopes, bound (RFC 8705)
// to the client certificate whose thumbprint (httpx.CertThumbprint) is
// certThumbprint: the token is then only accepted on requests presenting that
// certificate. An empty thumbprint issues an unbound token.
func (t *Tokens) IssueBound(app *Application, scopes []string, certThumbprint string) (string, error) {
	now := t.clock.Now()
	c := accessClaims{
		Claims: jwt.Claims{
			Issuer: t.issuer, Subject: app.ClientID, ID: uuid.NewString(),
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(t.ttl)),
		},
		AuthorizedParty: app.ClientID,
		Scope:           strings.Join(scopes, " "),
	}
	if certThumbprint != "" {
		c.Confirmation = &confirmation{X5tS256: certThumbprint}
	}
	raw, err := jwt.Signed(t.signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("auth: sign access token: %w", err)
	}
	return raw, nil
}

// VerifyAccessToken implements httpx.TokenVerifier. The token must be one of
// Ponte's (type, key id of the current or a retired key, PS256 signature, issuer), unexpired, and belong to an
// application that is still enabled; its effective scopes are those it was
// issued with that the application still holds. A certificate-bound token's
// thumbprint is returned in the principal for httpx.RequireScope to check
// against the request's client certificate.
func (t *Tokens) VerifyAccessToken(ctx context.Context, raw string) (*httpx.Principal, error) {
	now := t.clock.Now()
	c, ok := t.cached(raw)
	if !ok {
		var err error
		if c, err = t.verify(raw, now); err != nil {
			return nil, err
		}
		t.remember(raw, c)
	}
	// RFC 7519 §4.1.4: the token is invalid from its exp on (go-jose allows exp itself).
	if !now.Before(c.Expiry.Time()) {
		return nil, httpx.ErrInvalidToken
	}
	app, err := t.apps.lookup(ctx, c.AuthorizedParty)
	if errors.Is(err, ErrNotFound) {
		return nil, httpx.ErrInvalidToken
	}
	if err != nil {
		return nil, fmt.Errorf("auth: verify token: %w", err)
	}
	var scopes []string
	for _, s := range strings.Fields(c.Scope) {
		if slices.Contains(app.Scopes, s) {
			scopes = append(scopes, s)
		}
	}
	p := &httpx.Principal{ApplicationID: app.ID, ClientID: app.ClientID, CompanyKey: app.CompanyKey, Scopes: scopes}
	if c.Confirmation != nil {
		p.CertThumbprint = c.Confirmation.X5tS256
	}
	return p, nil
}

// verify checks a token's signature and claims.
func (t *Tokens) verify(raw string, now time.Time) (accessClaims, error) {
	var c accessClaims
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.PS256})
	if err != nil || len(tok.Headers) != 1 {
		return c, httpx.ErrInvalidToken
	}
	h := tok.Headers[0]
	pub, ok := t.key.verifier(h.KeyID)
	if !ok || h.ExtraHeaders[jose.HeaderType] != accessTokenType {
		return c, httpx.ErrInvalidToken
	}
	if err := tok.Claims(pub, &c); err != nil {
		return c, httpx.ErrInvalidToken
	}
	if c.Expiry == nil || !now.Before(c.Expiry.Time()) || c.AuthorizedParty == "" ||
		(c.Confirmation != nil && c.Confirmation.X5tS256 == "") ||
		c.ValidateWithLeeway(jwt.Expected{Issuer: t.issuer, Time: now}, 0) != nil {
		return c, httpx.ErrInvalidToken
	}
	return c, nil
}

func (t *Tokens) cached(raw string) (accessClaims, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.verified[raw]
	return c, ok
}

func (t *Tokens) remember(raw string, c accessClaims) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.verified) >= maxVerified {
		clear(t.verified)
	}
	t.verified[raw] = c
}

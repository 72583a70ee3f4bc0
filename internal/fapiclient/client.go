// Package fapiclient is Ponte acting as an Open Finance client (the ITP) at
// a brand — an account holder's authorization server and consent APIs:
// discovery, client_credentials with private_key_jwt, consents created with
// signed JWT bodies, pushed authorization requests (PAR + JAR + PKCE), and
// the checks of the hybrid-flow callback (id_token signature, iss, aud, exp,
// nonce, c_hash, s_hash) before the code is exchanged. It speaks only
// standard FAPI-BR, so the brand can be Ponte's own holder side (the
// sandbox) or another institution.
package fapiclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
)

// Client talks to one brand as one registered client.
type Client struct {
	// Issuer is the brand's authorization server issuer; discovery is at
	// Issuer + "/.well-known/openid-configuration".
	Issuer string
	// APIBase is the base URL of the brand's Open Finance APIs.
	APIBase string
	// ClientID is Ponte's client_id at the brand.
	ClientID string
	// OrganisationID is Ponte's organisation id at the Open Finance
	// Directory: the iss of the request bodies it signs and the aud the
	// brand's signed answers must name. "" falls back to ClientID.
	OrganisationID string
	// BrandOrganisationID is the brand's organisation id: the iss its signed
	// answers must carry. "" (a brand registered before organisation ids)
	// leaves iss unchecked and also accepts answers addressed to ClientID,
	// as such brands addressed them.
	BrandOrganisationID string
	// Key signs client assertions, request objects and request bodies (PS256).
	Key   *rsa.PrivateKey
	KeyID string
	// RedirectURI is Ponte's callback registered at the brand.
	RedirectURI string
	// HTTP carries the requests (with Ponte's client certificate when the
	// brand requires mutual TLS).
	HTTP  *http.Client
	Clock clock.Clock
	// DecryptionKeys are Ponte's encryption keys: an id_token the brand
	// encrypted to one of them is decrypted before its checks (idtoken.go).
	DecryptionKeys []DecryptionKey
	// RequireEncryptedIDToken refuses plain id_tokens: Ponte registered an
	// encryption key at this brand, so its id_tokens come encrypted.
	RequireEncryptedIDToken bool
	// JWKSRefetchInterval bounds how often the brand's JWKS is fetched again
	// when a token or answer names a kid the cached set lacks; 0 means
	// DefaultJWKSRefetchInterval.
	JWKSRefetchInterval time.Duration

	mu   sync.Mutex
	disc *discovery
}

// DefaultJWKSRefetchInterval is how often, at most, a client fetches a
// brand's JWKS again for an unknown kid: a brand that rotates its signing
// key is seen at its first token signed with the new key, and a flood of
// tokens naming a kid the brand never published costs one fetch per
// interval.
const DefaultJWKSRefetchInterval = 30 * time.Second

// discovery is a brand's discovery document and keys, shared by a client
// and the clients WithRedirectURI derives from it, so a refetch by one is
// seen by all.
type discovery struct {
	mu   sync.Mutex
	meta *Metadata
	jwks *jose.JSONWebKeySet
	// refetched is when the keys were last fetched again for an unknown kid.
	refetched time.Time
	// refetch makes callers that meet the same new kid wait for one fetch
	// rather than each fetch (or each be refused within the interval).
	refetch sync.Mutex
}

// key is the cached key with kid, or nil.
func (d *discovery) key(kid string) *jose.JSONWebKey {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.jwks == nil {
		return nil
	}
	if keys := d.jwks.Key(kid); len(keys) > 0 {
		return &keys[0]
	}
	return nil
}

// shared is the client's discovery cache, created on first use.
func (c *Client) shared() *discovery {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.disc == nil {
		c.disc = &discovery{}
	}
	return c.disc
}

// WithRedirectURI returns a client for the same brand and registration that
// sends redirectURI; it shares the discovery cache (and its refetches).
func (c *Client) WithRedirectURI(redirectURI string) *Client {
	d := c.shared()
	return &Client{Issuer: c.Issuer, APIBase: c.APIBase, ClientID: c.ClientID, OrganisationID: c.OrganisationID,
		BrandOrganisationID: c.BrandOrganisationID, Key: c.Key, KeyID: c.KeyID,
		RedirectURI: redirectURI, HTTP: c.HTTP, Clock: c.Clock, DecryptionKeys: c.DecryptionKeys,
		RequireEncryptedIDToken: c.RequireEncryptedIDToken, JWKSRefetchInterval: c.JWKSRefetchInterval, disc: d}
}

// Metadata is the part of the brand's discovery document Ponte uses.
type Metadata struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	PAREndpoint           string   `json:"pushed_authorization_request_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	ResponseTypes         []string `json:"response_types_supported"`
	MTLSAliases           struct {
		TokenEndpoint string `json:"token_endpoint"`
		PAREndpoint   string `json:"pushed_authorization_request_endpoint"`
	} `json:"mtls_endpoint_aliases"`
}

// Errors of the client.
var (
	// ErrBrand means the brand answered something Ponte cannot accept
	// (an unexpected status, a malformed or unsigned body).
	ErrBrand = errors.New("fapiclient: unexpected answer from the brand")
	// ErrCallback means a callback failed its checks: forged, replayed or
	// not for this request.
	ErrCallback = errors.New("fapiclient: callback refused")
)

// DeniedError is a callback carrying the brand's OAuth error (the user
// cancelled, the consent expired, ...).
type DeniedError struct {
	Code, Description string
}

func (e *DeniedError) Error() string {
	return "fapiclient: authorization refused: " + e.Code + " " + e.Description
}

// Discover reads (once) the brand's discovery document and JWKS.
func (c *Client) Discover(ctx context.Context) (*Metadata, error) {
	d := c.shared()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.meta != nil {
		return d.meta, nil
	}
	var m Metadata
	if err := c.getJSON(ctx, strings.TrimSuffix(c.Issuer, "/")+"/.well-known/openid-configuration", &m); err != nil {
		return nil, fmt.Errorf("fapiclient: discovery: %w", err)
	}
	if m.Issuer != strings.TrimSuffix(c.Issuer, "/") {
		return nil, fmt.Errorf("%w: discovery names issuer %q, want %q", ErrBrand, m.Issuer, c.Issuer)
	}
	if m.TokenEndpoint == "" || m.PAREndpoint == "" || m.AuthorizationEndpoint == "" || m.JWKSURI == "" {
		return nil, fmt.Errorf("%w: discovery lacks token, PAR, authorization or jwks endpoints", ErrBrand)
	}
	var set jose.JSONWebKeySet
	if err := c.getJSON(ctx, m.JWKSURI, &set); err != nil {
		return nil, fmt.Errorf("fapiclient: jwks: %w", err)
	}
	d.meta, d.jwks = &m, &set
	return d.meta, nil
}

// errUnknownKey: the brand's keys, fetched again if the interval allowed,
// have no key with the kid.
var errUnknownKey = errors.New("unknown key")

// brandKey is the brand's public key with kid. A kid the cached JWKS lacks
// makes the client fetch the brand's JWKS again (the brand may have rotated
// its signing key since), at most once per JWKSRefetchInterval; the fetched
// set replaces the cached one. Call Discover first.
func (c *Client) brandKey(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	d := c.shared()
	if k := d.key(kid); k != nil {
		return k, nil
	}
	d.refetch.Lock()
	defer d.refetch.Unlock()
	if k := d.key(kid); k != nil { // fetched while this one waited
		return k, nil
	}
	interval := c.JWKSRefetchInterval
	if interval <= 0 {
		interval = DefaultJWKSRefetchInterval
	}
	now := c.Clock.Now()
	d.mu.Lock()
	meta, last := d.meta, d.refetched
	refetch := meta != nil && (last.IsZero() || !now.Before(last.Add(interval)) || now.Before(last))
	if refetch {
		d.refetched = now // a failed fetch counts too: a brand that fails is not asked on every token
	}
	d.mu.Unlock()
	if !refetch {
		return nil, fmt.Errorf("%w %q", errUnknownKey, kid)
	}
	var set jose.JSONWebKeySet
	if err := c.getJSON(ctx, meta.JWKSURI, &set); err != nil {
		return nil, fmt.Errorf("%w %q (fetching the brand's JWKS again failed: %v)", errUnknownKey, kid, err)
	}
	d.mu.Lock()
	d.jwks = &set
	d.mu.Unlock()
	if k := d.key(kid); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w %q", errUnknownKey, kid)
}

// tokenEndpoint prefers the mutual-TLS alias when the brand publishes one.
func (m *Metadata) tokenEndpoint() string {
	if m.MTLSAliases.TokenEndpoint != "" {
		return m.MTLSAliases.TokenEndpoint
	}
	return m.TokenEndpoint
}

func (m *Metadata) parEndpoint() string {
	if m.MTLSAliases.PAREndpoint != "" {
		return m.MTLSAliases.PAREndpoint
	}
	return m.PAREndpoint
}

func (c *Client) getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: GET %s: status %d", ErrBrand, u, resp.StatusCode)
	}
	return json.Unmarshal(b, out)
}

func (c *Client) sign(claims any, typ string) (string, error) {
	opts := (&jose.SignerOptions{}).WithHeader("kid", c.KeyID)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: c.Key}, opts)
	if err != nil {
		return "", fmt.Errorf("fapiclient: signer: %w", err)
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// assertion is a private_key_jwt client assertion (RFC 7523) for aud.
func (c *Client) assertion(aud string) (string, error) {
	now := c.Clock.Now()
	return c.sign(jwt.Claims{
		Issuer: c.ClientID, Subject: c.ClientID, Audience: jwt.Audience{aud}, ID: uuid.NewString(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
	}, "JWT")
}

// Token gets an access token with client_credentials and private_key_jwt.
func (c *Client) Token(ctx context.Context, scope string) (string, error) {
	m, err := c.Discover(ctx)
	if err != nil {
		return "", err
	}
	tok, err := c.tokenRequest(ctx, m, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// TokenResponse is the token endpoint's answer.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
	IDToken     string `json:"id_token"`
	// RefreshToken is absent when the brand issues none (many issue one
	// only for long-lived consents).
	RefreshToken string `json:"refresh_token"`
}

func (c *Client) tokenRequest(ctx context.Context, m *Metadata, form url.Values) (*TokenResponse, error) {
	a, err := c.assertion(m.Issuer)
	if err != nil {
		return nil, err
	}
	form.Set("client_id", c.ClientID)
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", a)
	var tok TokenResponse
	status, body, err := c.post(ctx, m.tokenEndpoint(), "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		var oauthErr struct {
			Error string `json:"error"`
		}
		if status >= 400 && status < 500 && json.Unmarshal(body, &oauthErr) == nil && oauthErr.Error != "" {
			return nil, &TokenError{Status: status, Code: oauthErr.Error}
		}
		if status == http.StatusOK {
			// The body may hold tokens: it is not repeated in the error.
			return nil, fmt.Errorf("%w: token endpoint: status 200 without an access token", ErrBrand)
		}
		return nil, fmt.Errorf("%w: token endpoint: status %d: %.300s", ErrBrand, status, body)
	}
	return &tok, nil
}

func (c *Client) post(ctx context.Context, u, contentType string, body []byte, header http.Header) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("fapiclient: POST %s: %w", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("fapiclient: POST %s: %w", u, err)
	}
	return resp.StatusCode, b, nil
}

// Consent is a consent as the brand answered it.
type Consent struct {
	ID     string
	Status string
	// Data is the response's data object, as the brand signed it.
	Data json.RawMessage
}

// APIError is a brand's refusal of a consent request, in the Open Finance
// error shape.
type APIError struct {
	Status int
	Errors []struct {
		Code   string `json:"code"`
		Title  string `json:"title"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

func (e *APIError) Error() string {
	if len(e.Errors) == 0 {
		return fmt.Sprintf("fapiclient: brand refused the request: status %d", e.Status)
	}
	return fmt.Sprintf("fapiclient: brand refused the request: status %d %s: %s", e.Status, e.Errors[0].Code, e.Errors[0].Detail)
}

// CreateConsent creates a consent at the brand's API path (e.g.
// "/open-banking/payments/v4/consents") with a signed JWT body whose claims
// are body ({"data": ...}) plus aud (the URL called), iss (Ponte's
// organisation id),
// iat and jti; the brand's signed answer is verified against its JWKS.
// idempotencyKey is sent as x-idempotency-key.
func (c *Client) CreateConsent(ctx context.Context, token, path string, body json.RawMessage, idempotencyKey string) (*Consent, error) {
	status, resp, err := c.postJWT(ctx, token, path, body, idempotencyKey)
	if err != nil {
		return nil, err
	}
	return c.consentAnswer(ctx, status, http.StatusCreated, resp)
}

// postJWT sends body ({"data": ...}) to the brand's API path as FAPI-BR
// signed requests go: its claims plus aud (the URL called), iss (Ponte's
// organisation id, as the security guide's message signing says), iat and
// a fresh jti, signed PS256, as application/jwt with the
// bearer token, x-fapi-interaction-id and x-idempotency-key.
func (c *Client) postJWT(ctx context.Context, token, path string, body json.RawMessage, idempotencyKey string) (int, []byte, error) {
	if _, err := c.Discover(ctx); err != nil {
		return 0, nil, err
	}
	var claims map[string]any
	if err := json.Unmarshal(body, &claims); err != nil {
		return 0, nil, fmt.Errorf("fapiclient: request body: %w", err)
	}
	endpoint := strings.TrimSuffix(c.APIBase, "/") + path
	claims["aud"], claims["iss"], claims["iat"], claims["jti"] = endpoint, c.organisation(), c.Clock.Now().Unix(), uuid.NewString()
	signed, err := c.sign(claims, "JWT")
	if err != nil {
		return 0, nil, err
	}
	header := http.Header{}
	header.Set("Authorization", "Bearer "+token)
	header.Set("Accept", "application/jwt")
	header.Set("x-fapi-interaction-id", uuid.NewString())
	header.Set("x-idempotency-key", idempotencyKey)
	return c.post(ctx, endpoint, "application/jwt", []byte(signed), header)
}

// GetConsent reads a consent at the brand (path is the consent's URL path).
func (c *Client) GetConsent(ctx context.Context, token, path string) (*Consent, error) {
	if _, err := c.Discover(ctx); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.APIBase, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/jwt")
	req.Header.Set("x-fapi-interaction-id", uuid.NewString())
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fapiclient: GET consent: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return c.consentAnswer(ctx, resp.StatusCode, http.StatusOK, b)
}

// consentAnswer verifies a consent response: a JWS signed by the brand
// (addressed to Ponte) on success, the Open Finance error shape (signed or
// not) otherwise.
func (c *Client) consentAnswer(ctx context.Context, status, want int, body []byte) (*Consent, error) {
	raw, err := c.signedAnswer(ctx, status, want, body)
	if err != nil {
		return nil, err
	}
	var data struct {
		ConsentID          string `json:"consentId"`
		RecurringConsentID string `json:"recurringConsentId"`
		Status             string `json:"status"`
	}
	if err := json.Unmarshal(raw, &data); err != nil {
		return nil, fmt.Errorf("%w: consent data: %v", ErrBrand, err)
	}
	id := data.ConsentID
	if id == "" {
		id = data.RecurringConsentID
	}
	if id == "" || data.Status == "" {
		return nil, fmt.Errorf("%w: the consent answer lacks its id or status", ErrBrand)
	}
	return &Consent{ID: id, Status: data.Status, Data: raw}, nil
}

// organisation is the name Ponte's signed messages carry as iss and the
// brand's answers as aud.
func (c *Client) organisation() string {
	if c.OrganisationID != "" {
		return c.OrganisationID
	}
	return c.ClientID
}

// signedAnswer verifies a signed Open Finance response and returns its data
// member: a JWS signed by the brand, issued by the brand's organisation
// (iss) and addressed to Ponte's (aud) when the status is want, the Open
// Finance error shape (signed or not) as an *APIError otherwise. An answer
// naming another organisation is refused like a bad signature.
func (c *Client) signedAnswer(ctx context.Context, status, want int, body []byte) (json.RawMessage, error) {
	payload := body
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] != '{' {
		var err error
		if payload, err = c.verifyJWS(ctx, string(trimmed)); err != nil {
			return nil, err
		}
	} else if status == want {
		return nil, fmt.Errorf("%w: the answer is not signed", ErrBrand)
	}
	if status != want {
		apiErr := &APIError{Status: status}
		_ = json.Unmarshal(payload, apiErr)
		return nil, apiErr
	}
	var answer struct {
		Aud  any             `json:"aud"`
		Iss  any             `json:"iss"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(payload, &answer); err != nil {
		return nil, fmt.Errorf("%w: answer: %v", ErrBrand, err)
	}
	if c.BrandOrganisationID != "" && answer.Iss != c.BrandOrganisationID {
		return nil, fmt.Errorf("%w: the answer is issued by %v, not the brand's organisation %s", ErrBrand, answer.Iss, c.BrandOrganisationID)
	}
	if !audienceHas(answer.Aud, c.organisation()) && (c.BrandOrganisationID != "" || !audienceHas(answer.Aud, c.ClientID)) {
		return nil, fmt.Errorf("%w: the answer is addressed to %v, not to Ponte's organisation %s", ErrBrand, answer.Aud, c.organisation())
	}
	if len(answer.Data) == 0 {
		return nil, fmt.Errorf("%w: the answer has no data", ErrBrand)
	}
	return answer.Data, nil
}

func (c *Client) verifyJWS(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.PS256})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: malformed JWS", ErrBrand)
	}
	key, err := c.brandKey(ctx, jws.Signatures[0].Header.KeyID)
	if err != nil {
		return nil, fmt.Errorf("%w: signed with an %v", ErrBrand, err)
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: bad signature", ErrBrand)
	}
	return payload, nil
}

func audienceHas(aud any, want string) bool {
	switch v := aud.(type) {
	case string:
		return v == want
	case []any:
		for _, a := range v {
			if s, ok := a.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// AuthRequest is one authorization request Ponte pushes for a user.
type AuthRequest struct {
	// Scope, e.g. "openid payments consent:{consentId}".
	Scope string
	// State, Nonce and Verifier are secrets Ponte keeps to check the callback.
	State, Nonce, Verifier string
	// ResponseMode is "" (fragment, the hybrid flow's default) or a JARM mode.
	ResponseMode string
}

// NewAuthRequest returns a request for scope with fresh random state, nonce
// and PKCE verifier.
func NewAuthRequest(scope string) AuthRequest {
	return AuthRequest{Scope: scope, State: random(32), Nonce: random(32), Verifier: random(48)}
}

func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("fapiclient: crypto/rand failed: %v", err)) // never on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Push sends the signed request object to the brand's PAR endpoint and
// returns the URL to send the user's browser to.
func (c *Client) Push(ctx context.Context, ar AuthRequest) (string, error) {
	m, err := c.Discover(ctx)
	if err != nil {
		return "", err
	}
	now := c.Clock.Now()
	sum := sha256.Sum256([]byte(ar.Verifier))
	claims := map[string]any{
		"iss": c.ClientID, "aud": m.Issuer, "jti": uuid.NewString(),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"client_id": c.ClientID, "response_type": "code id_token", "redirect_uri": c.RedirectURI,
		"scope": ar.Scope, "state": ar.State, "nonce": ar.Nonce,
		"code_challenge": base64.RawURLEncoding.EncodeToString(sum[:]), "code_challenge_method": "S256",
	}
	if ar.ResponseMode != "" {
		claims["response_mode"] = ar.ResponseMode
	}
	request, err := c.sign(claims, "oauth-authz-req+jwt")
	if err != nil {
		return "", err
	}
	a, err := c.assertion(m.Issuer)
	if err != nil {
		return "", err
	}
	form := url.Values{"client_id": {c.ClientID}, "request": {request},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
	status, body, err := c.post(ctx, m.parEndpoint(), "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
	if err != nil {
		return "", err
	}
	var par struct {
		RequestURI string `json:"request_uri"`
	}
	if status != http.StatusCreated || json.Unmarshal(body, &par) != nil || par.RequestURI == "" {
		return "", fmt.Errorf("%w: PAR: status %d: %.300s", ErrBrand, status, body)
	}
	return m.AuthorizationEndpoint + "?" + url.Values{"client_id": {c.ClientID}, "request_uri": {par.RequestURI}}.Encode(), nil
}

// Callback is what came back to Ponte's redirect URI.
type Callback struct {
	Code, IDToken, State, Error, ErrorDescription string
}

// ExchangeCode redeems the authorization code (PKCE verifier, private_key_jwt)
// and checks the id_token of the answer when there is one (checkTokenIDToken).
func (c *Client) ExchangeCode(ctx context.Context, code string, ar AuthRequest) (*TokenResponse, error) {
	m, err := c.Discover(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := c.tokenRequest(ctx, m, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {c.RedirectURI}, "code_verifier": {ar.Verifier}})
	if err != nil {
		return nil, err
	}
	if err := c.checkTokenIDToken(ctx, m, tok.IDToken, ar); err != nil {
		return nil, err
	}
	return tok, nil
}

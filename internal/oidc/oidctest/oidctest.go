// Package oidctest plays an Open Finance initiator against Ponte's
// authorization server in tests: it generates a PS256 key, registers the
// client, signs request objects and private_key_jwt client assertions.
package oidctest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/oidc"
)

// Initiator is a registered test client and its private key.
type Initiator struct {
	ClientID    string
	RedirectURI string
	Key         *rsa.PrivateKey
	KeyID       string
	// Issuer is the authorization server's issuer (Ponte's public URL).
	Issuer string
}

// NewInitiator generates a key and registers clientID with storage.
func NewInitiator(t testing.TB, storage *oidc.Storage, issuer, clientID string) *Initiator {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	in := &Initiator{ClientID: clientID, RedirectURI: "https://initiator.example/" + clientID + "/callback", Key: key, KeyID: clientID + "-key", Issuer: issuer}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: in.KeyID, Algorithm: string(jose.PS256), Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storage.RegisterInitiator(context.Background(), oidc.Initiator{
		ClientID: clientID, Name: "Test initiator " + clientID, JWKS: jwks, RedirectURIs: []string{in.RedirectURI},
	}); err != nil {
		t.Fatalf("register %s: %v", clientID, err)
	}
	return in
}

func (in *Initiator) sign(t testing.TB, claims any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: in.Key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", in.KeyID))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// ClientAssertion is a private_key_jwt assertion (RFC 7523) for the issuer.
func (in *Initiator) ClientAssertion(t testing.TB) string {
	now := time.Now()
	return in.sign(t, jwt.Claims{
		Issuer: in.ClientID, Subject: in.ClientID, Audience: jwt.Audience{in.Issuer}, ID: uuid.NewString(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
	})
}

// Request is what the initiator asks for in its request object.
type Request struct {
	ConsentID string // scope consent:{ConsentID}
	State     string
	Nonce     string
	Verifier  string // PKCE code_verifier; S256 challenge derived from it
	// ResponseMode is "" (the hybrid flow's default, fragment) or a JARM
	// mode such as "jwt" or "fragment.jwt".
	ResponseMode string
	// Scope is the scope asked for; "" asks "openid payments consent:{ConsentID}".
	Scope string
	// ResponseType is the response_type asked for; "" asks the hybrid "code id_token".
	ResponseType string
}

// NewRequest returns a request with random state, nonce and verifier.
func NewRequest(consentID string) Request {
	return Request{ConsentID: consentID, State: uuid.NewString(), Nonce: uuid.NewString(), Verifier: uuid.NewString() + uuid.NewString()}
}

// RequestObject signs the request object (JAR, FAPI: nbf and exp within an hour).
func (in *Initiator) RequestObject(t testing.TB, req Request) string {
	now := time.Now()
	sum := sha256.Sum256([]byte(req.Verifier))
	scope := req.Scope
	if scope == "" {
		scope = "openid payments consent:" + req.ConsentID
	}
	claims := map[string]any{
		"iss": in.ClientID, "aud": in.Issuer, "jti": uuid.NewString(),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"client_id": in.ClientID, "response_type": "code id_token", "redirect_uri": in.RedirectURI,
		"scope": scope, "state": req.State, "nonce": req.Nonce,
		"code_challenge": base64.RawURLEncoding.EncodeToString(sum[:]), "code_challenge_method": "S256",
	}
	if req.ResponseMode != "" {
		claims["response_mode"] = req.ResponseMode
	}
	if req.ResponseType != "" {
		claims["response_type"] = req.ResponseType
	}
	return in.sign(t, claims)
}

// ExchangeCode redeems an authorization code at POST /oauth/token
// (authorization_code, PKCE verifier, private_key_jwt) and returns the
// response status and JSON body.
func (in *Initiator) ExchangeCode(t testing.TB, c *http.Client, baseURL, code string, req Request) (int, map[string]any) {
	t.Helper()
	return in.token(t, c, baseURL, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {in.RedirectURI}, "code_verifier": {req.Verifier},
	})
}

// Refresh redeems a refresh token at POST /oauth/token (refresh_token,
// private_key_jwt) and returns the response status and JSON body.
func (in *Initiator) Refresh(t testing.TB, c *http.Client, baseURL, refreshToken string) (int, map[string]any) {
	t.Helper()
	return in.token(t, c, baseURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

// token posts form, with the client's private_key_jwt authentication, to
// POST /oauth/token and returns the response status and JSON body.
func (in *Initiator) token(t testing.TB, c *http.Client, baseURL string, form url.Values) (int, map[string]any) {
	t.Helper()
	form.Set("client_id", in.ClientID)
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", in.ClientAssertion(t))
	resp, err := c.Post(baseURL+oidc.PathToken, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("token response: %v", err)
	}
	return resp.StatusCode, out
}

// PAR pushes the signed request to POST /oauth/par and returns the response.
func (in *Initiator) PAR(t testing.TB, c *http.Client, baseURL string, req Request) *http.Response {
	t.Helper()
	form := url.Values{
		"client_id":             {in.ClientID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {in.ClientAssertion(t)},
		"request":               {in.RequestObject(t, req)},
	}
	resp, err := c.Post(baseURL+oidc.PathPAR, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// NoRedirects is an HTTP client that returns redirects instead of following them.
func NoRedirects() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// ClientCredentials asks POST /oauth/token for an access token with the
// client_credentials grant and private_key_jwt, and returns the response
// status and JSON body.
func (in *Initiator) ClientCredentials(t testing.TB, c *http.Client, baseURL, scope string) (int, map[string]any) {
	t.Helper()
	return in.token(t, c, baseURL, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
}

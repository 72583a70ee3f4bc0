package payments

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/idempotency"
)

// Message signing (FAPI-BR "Assinaturas", Payments API 4.0.0 item 1.2).
//
// A signed request body is a compact JWS, Content-Type application/jwt,
// header alg PS256 and the kid of a key in the calling application's
// registered JWKS, whose claims are the body ({"data": ...}) plus:
//
//   - aud: the URL of the endpoint called, under Ponte's public URL —
//     BaseURL + "/open-banking/payments/v4/consents" for POST /consents,
//     compared exactly (a string or an array containing it);
//   - iss: the calling application's organisation id at the Open Finance
//     Directory (Caller.Organisation); an application registered before
//     organisation ids, with none recorded, keeps signing with its
//     client_id until the operator sets one;
//   - iat: NumericDate, at most IATTolerance (60 s) before or after Ponte's
//     clock;
//   - jti: 1–MaxJTILength characters, never reused by the application within
//     JTIWindow (24 h).
//
// A malformed JWS, another algorithm, an unknown kid or a bad signature is
// 400 BAD_SIGNATURE; a missing or invalid aud, iss, iat or jti, and a reused
// jti, are 403 INVALID_CLIENT — both application/json, as the specification's
// BadRequestPayments and Forbidden responses are.
//
// Responses are signed (application/jwt, PS256 with Ponte's signing key, kid
// its RFC 7638 thumbprint, typ JWT) — every 200, 201 and 422, whatever the
// request's Accept says, as the official files declare them — with claims
// aud = the caller's organisation id (Caller.Organisation), iss = Ponte's
// organisation id, iat, a new jti, and the response's data, links and meta
// (or errors and meta for a 422). Only an application that opted into plain
// JSON (auth.Application.AcceptPlainJSON, a Ponte extension) gets JSON, and
// then only when it neither signed its request nor asked for application/jwt.

// Media types of request and response bodies.
const (
	MediaTypeJWT  = "application/jwt"
	MediaTypeJSON = "application/json"
)

// Error codes of the security checks (Payments API 4.0.0 items 1.2.3, 1.2.4).
const (
	CodeBadSignature  = "BAD_SIGNATURE"
	CodeInvalidClient = "INVALID_CLIENT"
)

// Limits of signed request bodies.
const (
	// IATTolerance is how far a request's iat may be from Ponte's clock, either way.
	IATTolerance = 60 * time.Second
	// JTIWindow is how long a jti stays used for its application.
	JTIWindow = 24 * time.Hour
	// MaxJTILength bounds a jti (the specification asks for a UUID v4).
	MaxJTILength = 128
)

// ErrJTIReused means the application already sent a request with this jti
// within JTIWindow.
var ErrJTIReused = errors.New("payments: jti already used")

// Caller is the application calling the Payments API, as its registration
// stands now: its JWKS verifies its signed bodies.
type Caller struct {
	ApplicationID string
	ClientID      string
	// OrganisationID is the application's Open Finance organisation id; ""
	// for an application registered before organisation ids.
	OrganisationID  string
	JWKS            json.RawMessage
	AcceptPlainJSON bool
	// Disabled: the application was disabled (its tokens are refused within
	// the token verifier's cache bound); a consent create refuses it at once.
	Disabled bool
}

// Organisation is the name the caller's signed messages carry: the iss
// Ponte expects in its requests and the aud of Ponte's answers. It is the
// organisation id, as the security guide's message signing says; an
// application without one (registered before Ponte knew organisation ids)
// keeps its client_id, so existing integrations work until the operator
// records the organisation ('ponte apps set --org-id').
func (c *Caller) Organisation() string {
	if c.OrganisationID != "" {
		return c.OrganisationID
	}
	return c.ClientID
}

// Callers looks up the calling application by client_id.
type Callers interface {
	Caller(ctx context.Context, clientID string) (*Caller, error)
}

// CachedCallers is Callers that also keep, per instance, the callers they
// read, and can check one in a write's statement on PostgreSQL: a consent
// create then decides on the cached caller and writes only if its
// application's row still says the same (see CreateInput.Unchanged), so a
// revoked key or a changed flag still applies to the very next request.
type CachedCallers interface {
	Callers
	// Cached is the caller last read for clientID, if any (never a
	// disabled one).
	Cached(clientID string) (*Caller, bool)
	// Unchanged is a boolean SQL expression, its arguments added through
	// q, true when c's application is enabled and its row still has c's
	// client_id, organisation id, keys and plain-JSON flag.
	Unchanged(q *idempotency.Query, c *Caller) string
}

// Signer signs response payloads as a compact JWS.
type Signer interface {
	Sign(payload []byte) (*jose.JSONWebSignature, error)
}

// NewSigner returns a PS256 signer for responses with Ponte's key and key id.
func NewSigner(key *rsa.PrivateKey, keyID string) (Signer, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), keyID))
	if err != nil {
		return nil, fmt.Errorf("payments: response signer: %w", err)
	}
	return s, nil
}

// signedRequest is a verified signed body.
type signedRequest struct {
	JTI     string
	Request *ConsentRequest
}

// Expectations are what a signed body's claims must say: aud the URL
// called, iss the caller's organisation (Caller.Organisation), iat near Now.
type Expectations struct {
	Audience string
	Issuer   string
	Now      time.Time
}

// BadSignature is the 400 BAD_SIGNATURE answer to a signed body Ponte
// cannot verify.
func BadSignature(detail string) *ValidationError {
	return &ValidationError{Status: http.StatusBadRequest, Problems: []Problem{{Code: CodeBadSignature, Detail: detail}}}
}

// InvalidClient is the 403 INVALID_CLIENT answer to a signed body whose
// claims (aud, iss, iat, jti) are wrong.
func InvalidClient(detail string) *ValidationError {
	return &ValidationError{Status: http.StatusForbidden, Problems: []Problem{{Code: CodeInvalidClient, Detail: detail}}}
}

// decodeSigned verifies a compact JWS body against keys and want, and decodes
// its data as decodeCreate does. The jti is returned for the caller to record.
func decodeSigned(body []byte, keys *jose.JSONWebKeySet, want Expectations) (*signedRequest, *ValidationError) {
	payload, jti, verr := VerifySigned(body, keys, want)
	if verr != nil {
		return nil, verr
	}
	req, verr := decodeCreate(payload)
	if verr != nil {
		return nil, verr
	}
	return &signedRequest{JTI: jti, Request: req}, nil
}

// VerifySigned checks a signed request body (a compact JWS, PS256, the kid
// of a key in keys) and its claims against want, and returns the payload and
// its jti for the caller to record. Signature problems are 400
// BAD_SIGNATURE, claim problems 403 INVALID_CLIENT. Every Open Finance API
// with signed bodies (payments, recurring consents) verifies through it.
func VerifySigned(body []byte, keys *jose.JSONWebKeySet, want Expectations) ([]byte, string, *ValidationError) {
	compact := string(bytes.TrimSpace(body))
	if compact == "" {
		return nil, "", BadSignature("Corpo da requisição vazio: esperado um JWS compacto assinado (PS256).")
	}
	// Compact only: the JSON serializations would carry claims past the
	// edge's bad-text check, which reads the compact form.
	jws, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{jose.PS256})
	if err != nil {
		return nil, "", BadSignature("O corpo não é um JWS compacto assinado com PS256.")
	}
	if len(jws.Signatures) != 1 {
		return nil, "", BadSignature("O JWS deve ter exatamente uma assinatura.")
	}
	h := jws.Signatures[0].Header
	if typ, ok := h.ExtraHeaders[jose.HeaderType].(string); ok && typ != "JWT" {
		return nil, "", BadSignature("Cabeçalho typ do JWS deve ser JWT.")
	}
	if h.KeyID == "" {
		return nil, "", BadSignature("Cabeçalho kid do JWS não informado.")
	}
	var key *jose.JSONWebKey
	if keys != nil {
		if found := keys.Key(h.KeyID); len(found) > 0 {
			key = &found[0]
		}
	}
	if key == nil {
		return nil, "", BadSignature("A chave " + strconv.Quote(h.KeyID) + " não está no JWKS registrado da aplicação.")
	}
	if _, ok := key.Key.(*rsa.PublicKey); !ok {
		return nil, "", BadSignature("A chave " + strconv.Quote(h.KeyID) + " não é RSA: PS256 exige uma chave RSA.")
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, "", BadSignature("Assinatura do JWS inválida.")
	}
	if verr := checkClaims(payload, want); verr != nil {
		return nil, "", verr
	}
	var c struct {
		JTI string `json:"jti"`
	}
	_ = json.Unmarshal(payload, &c) // checked by checkClaims
	return payload, c.JTI, nil
}

// checkClaims checks aud, iss, iat and jti (item 1.2.4.1): any problem is a
// 403 INVALID_CLIENT naming the claim.
func checkClaims(payload []byte, want Expectations) *ValidationError {
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil || claims == nil {
		return InvalidClient("As claims do JWS não são um objeto JSON.")
	}
	var (
		iss, jti string
		aud      any
		iat      json.Number
	)
	missing := func(name string) *ValidationError {
		return InvalidClient("Claim " + name + " obrigatória não informada.")
	}
	invalid := func(name, why string) *ValidationError {
		return InvalidClient("Claim " + name + " inválida: " + why)
	}
	raw, ok := claims["aud"]
	if !ok || isNull(raw) {
		return missing("aud")
	}
	if json.Unmarshal(raw, &aud) != nil || !audienceHas(aud, want.Audience) {
		return invalid("aud", "deve ser a URL do endpoint chamado, "+want.Audience+".")
	}
	if raw, ok = claims["iss"]; !ok || isNull(raw) {
		return missing("iss")
	}
	if json.Unmarshal(raw, &iss) != nil || iss != want.Issuer {
		return invalid("iss", "deve ser o identificador da organização (organisationId) da aplicação que chama.")
	}
	if raw, ok = claims["iat"]; !ok || isNull(raw) {
		return missing("iat")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&iat) != nil {
		return invalid("iat", "deve ser um NumericDate (segundos desde 1970).")
	}
	secs, err := iat.Float64()
	if err != nil || secs < 0 || secs > 1e11 {
		return invalid("iat", "deve ser um NumericDate (segundos desde 1970).")
	}
	whole := math.Floor(secs)
	issued := time.Unix(int64(whole), int64((secs-whole)*1e9))
	switch {
	case issued.Before(want.Now.Add(-IATTolerance)):
		return invalid("iat", fmt.Sprintf("emitida há mais de %d segundos.", int(IATTolerance.Seconds())))
	case issued.After(want.Now.Add(IATTolerance)):
		return invalid("iat", fmt.Sprintf("emitida mais de %d segundos no futuro.", int(IATTolerance.Seconds())))
	}
	if raw, ok = claims["jti"]; !ok || isNull(raw) {
		return missing("jti")
	}
	if json.Unmarshal(raw, &jti) != nil || jti == "" || len(jti) > MaxJTILength {
		return invalid("jti", fmt.Sprintf("deve ser um texto de 1 a %d caracteres.", MaxJTILength))
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// audienceHas reports whether aud (a string or an array of strings) names want.
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

// SignedBody wraps a JSON object response body in the claims of a signed
// response (aud, iss, iat, jti first, then the body's own members) and signs it.
func SignedBody(signer Signer, body []byte, audience, issuer string, now time.Time) ([]byte, error) {
	body = bytes.TrimSpace(body)
	if len(body) < 2 || body[0] != '{' {
		return nil, errors.New("payments: sign response: body is not a JSON object")
	}
	head, err := json.Marshal(struct {
		Aud string `json:"aud"`
		Iss string `json:"iss"`
		Iat int64  `json:"iat"`
		Jti string `json:"jti"`
	}{audience, issuer, now.Unix(), uuid.NewString()})
	if err != nil {
		return nil, fmt.Errorf("payments: sign response: %w", err)
	}
	payload := make([]byte, 0, len(head)+len(body))
	payload = append(payload, head[:len(head)-1]...)
	if rest := bytes.TrimSpace(body[1:]); len(rest) > 0 && rest[0] != '}' {
		payload = append(payload, ',')
	}
	payload = append(payload, body[1:]...)
	jws, err := signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("payments: sign response: %w", err)
	}
	compact, err := jws.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("payments: sign response: %w", err)
	}
	return []byte(compact), nil
}

// KeyCache keeps applications' parsed key sets by content, so a JWKS is
// parsed once per change rather than once per request. The zero value is ready.
type KeyCache struct {
	mu   sync.Mutex
	sets map[[sha256.Size]byte]*jose.JSONWebKeySet
}

// maxKeySets bounds the cache; when full it starts over.
const maxKeySets = 1000

// Get returns the parsed key set of raw.
func (c *KeyCache) Get(raw json.RawMessage) (*jose.JSONWebKeySet, error) {
	sum := sha256.Sum256(raw)
	c.mu.Lock()
	set, ok := c.sets[sum]
	c.mu.Unlock()
	if ok {
		return set, nil
	}
	set = &jose.JSONWebKeySet{}
	if err := json.Unmarshal(raw, set); err != nil {
		return nil, fmt.Errorf("payments: parse registered JWKS: %w", err)
	}
	c.mu.Lock()
	if c.sets == nil || len(c.sets) >= maxKeySets {
		c.sets = map[[sha256.Size]byte]*jose.JSONWebKeySet{}
	}
	c.sets[sum] = set
	c.mu.Unlock()
	return set, nil
}

package recurring

import (
	"bytes"
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

	"github.com/ponte-ofb/ponte/internal/payments"
)

// Signed bodies follow the same rules as Payments v4 (see internal/payments,
// jws.go, whose verification and signing helpers are unexported there): a
// compact JWS, header alg PS256 and the kid of a key in the calling
// application's registered JWKS; claims aud (the URL called: the collection
// for POST, the consent for PATCH), iss (the caller's client_id), iat
// (±payments.IATTolerance), jti (1–payments.MaxJTILength characters, unused
// by the application within payments.JTIWindow) and data. Signature problems
// are 400 BAD_SIGNATURE, claim problems 403 INVALID_CLIENT, both JSON.
// Answers to signed requests are signed with Ponte's key: aud the caller's
// client_id, iss Ponte's public URL, iat, a new jti, then the body's members.

// expectations are what a signed body's claims must say.
type expectations struct {
	Audience string
	Issuer   string
	Now      time.Time
}

func badSignature(detail string) *payments.ValidationError {
	return &payments.ValidationError{Status: http.StatusBadRequest, Problems: []payments.Problem{{Code: payments.CodeBadSignature, Detail: detail}}}
}

func invalidClient(detail string) *payments.ValidationError {
	return &payments.ValidationError{Status: http.StatusForbidden, Problems: []payments.Problem{{Code: payments.CodeInvalidClient, Detail: detail}}}
}

// verifySigned checks a compact JWS body against keys and want, and returns
// its payload and jti.
func verifySigned(body []byte, keys *jose.JSONWebKeySet, want expectations) ([]byte, string, *payments.ValidationError) {
	compact := string(bytes.TrimSpace(body))
	if compact == "" {
		return nil, "", badSignature("Corpo da requisição vazio: esperado um JWS compacto assinado (PS256).")
	}
	jws, err := jose.ParseSigned(compact, []jose.SignatureAlgorithm{jose.PS256})
	if err != nil {
		return nil, "", badSignature("O corpo não é um JWS compacto assinado com PS256.")
	}
	if len(jws.Signatures) != 1 {
		return nil, "", badSignature("O JWS deve ter exatamente uma assinatura.")
	}
	h := jws.Signatures[0].Header
	if typ, ok := h.ExtraHeaders[jose.HeaderType].(string); ok && typ != "JWT" {
		return nil, "", badSignature("Cabeçalho typ do JWS deve ser JWT.")
	}
	if h.KeyID == "" {
		return nil, "", badSignature("Cabeçalho kid do JWS não informado.")
	}
	var key *jose.JSONWebKey
	if keys != nil {
		if found := keys.Key(h.KeyID); len(found) > 0 {
			key = &found[0]
		}
	}
	if key == nil {
		return nil, "", badSignature("A chave " + strconv.Quote(h.KeyID) + " não está no JWKS registrado da aplicação.")
	}
	if _, ok := key.Key.(*rsa.PublicKey); !ok {
		return nil, "", badSignature("A chave " + strconv.Quote(h.KeyID) + " não é RSA: PS256 exige uma chave RSA.")
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, "", badSignature("Assinatura do JWS inválida.")
	}
	jti, verr := checkClaims(payload, want)
	if verr != nil {
		return nil, "", verr
	}
	return payload, jti, nil
}

// checkClaims checks aud, iss, iat and jti: any problem is a 403
// INVALID_CLIENT naming the claim. It returns the jti.
func checkClaims(payload []byte, want expectations) (string, *payments.ValidationError) {
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil || claims == nil {
		return "", invalidClient("As claims do JWS não são um objeto JSON.")
	}
	missing := func(name string) *payments.ValidationError {
		return invalidClient("Claim " + name + " obrigatória não informada.")
	}
	invalid := func(name, why string) *payments.ValidationError {
		return invalidClient("Claim " + name + " inválida: " + why)
	}
	present := func(name string) (json.RawMessage, bool) {
		raw, ok := claims[name]
		return raw, ok && string(bytes.TrimSpace(raw)) != "null"
	}
	raw, ok := present("aud")
	if !ok {
		return "", missing("aud")
	}
	var aud any
	if json.Unmarshal(raw, &aud) != nil || !audienceHas(aud, want.Audience) {
		return "", invalid("aud", "deve ser a URL do endpoint chamado, "+want.Audience+".")
	}
	if raw, ok = present("iss"); !ok {
		return "", missing("iss")
	}
	var iss string
	if json.Unmarshal(raw, &iss) != nil || iss != want.Issuer {
		return "", invalid("iss", "deve ser o client_id da aplicação que chama.")
	}
	if raw, ok = present("iat"); !ok {
		return "", missing("iat")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var iat json.Number
	if dec.Decode(&iat) != nil {
		return "", invalid("iat", "deve ser um NumericDate (segundos desde 1970).")
	}
	secs, err := iat.Float64()
	if err != nil || secs < 0 || secs > 1e11 {
		return "", invalid("iat", "deve ser um NumericDate (segundos desde 1970).")
	}
	whole := math.Floor(secs)
	issued := time.Unix(int64(whole), int64((secs-whole)*1e9))
	switch {
	case issued.Before(want.Now.Add(-payments.IATTolerance)):
		return "", invalid("iat", fmt.Sprintf("emitida há mais de %d segundos.", int(payments.IATTolerance.Seconds())))
	case issued.After(want.Now.Add(payments.IATTolerance)):
		return "", invalid("iat", fmt.Sprintf("emitida mais de %d segundos no futuro.", int(payments.IATTolerance.Seconds())))
	}
	if raw, ok = present("jti"); !ok {
		return "", missing("jti")
	}
	var jti string
	if json.Unmarshal(raw, &jti) != nil || jti == "" || len(jti) > payments.MaxJTILength {
		return "", invalid("jti", fmt.Sprintf("deve ser um texto de 1 a %d caracteres.", payments.MaxJTILength))
	}
	return jti, nil
}

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

// signedBody wraps a JSON object response body in the claims of a signed
// response (aud, iss, iat, jti first, then the body's own members) and signs it.
func signedBody(signer payments.Signer, body []byte, audience, issuer string, now time.Time) ([]byte, error) {
	body = bytes.TrimSpace(body)
	if len(body) < 2 || body[0] != '{' {
		return nil, errors.New("recurring: sign response: body is not a JSON object")
	}
	head, err := json.Marshal(struct {
		Aud string `json:"aud"`
		Iss string `json:"iss"`
		Iat int64  `json:"iat"`
		Jti string `json:"jti"`
	}{audience, issuer, now.Unix(), uuid.NewString()})
	if err != nil {
		return nil, fmt.Errorf("recurring: sign response: %w", err)
	}
	payload := make([]byte, 0, len(head)+len(body))
	payload = append(payload, head[:len(head)-1]...)
	if rest := bytes.TrimSpace(body[1:]); len(rest) > 0 && rest[0] != '}' {
		payload = append(payload, ',')
	}
	payload = append(payload, body[1:]...)
	jws, err := signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("recurring: sign response: %w", err)
	}
	compact, err := jws.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("recurring: sign response: %w", err)
	}
	return []byte(compact), nil
}

// keyCache keeps applications' parsed key sets by content.
type keyCache struct {
	mu   sync.Mutex
	sets map[[sha256.Size]byte]*jose.JSONWebKeySet
}

const maxKeySets = 1000

func (c *keyCache) get(raw json.RawMessage) (*jose.JSONWebKeySet, error) {
	sum := sha256.Sum256(raw)
	c.mu.Lock()
	set, ok := c.sets[sum]
	c.mu.Unlock()
	if ok {
		return set, nil
	}
	set = &jose.JSONWebKeySet{}
	if err := json.Unmarshal(raw, set); err != nil {
		return nil, fmt.Errorf("recurring: parse registered JWKS: %w", err)
	}
	c.mu.Lock()
	if c.sets == nil || len(c.sets) >= maxKeySets {
		c.sets = map[[sha256.Size]byte]*jose.JSONWebKeySet{}
	}
	c.sets[sum] = set
	c.mu.Unlock()
	return set, nil
}

package fapiclient

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DecryptionKey is one of Ponte's own encryption keys as an initiator:
// brands Ponte registered its public part with encrypt their id_tokens to it
// (FAPI-BR: RSA-OAEP with A256GCM, the signed id_token nested inside).
type DecryptionKey struct {
	KeyID string
	Key   *rsa.PrivateKey
}

// IDTokenKeyAlg and IDTokenContentAlg are the only algorithms of an
// encrypted id_token Ponte accepts, the two FAPI-BR allows.
const (
	IDTokenKeyAlg     = jose.RSA_OAEP
	IDTokenContentAlg = jose.A256GCM
)

// maxIDToken bounds the id_token Ponte parses (a nested, encrypted one
// signed with a 4096-bit key is under 4 KiB).
const maxIDToken = 16 << 10

// IDTokenClaims are the claims of an id_token Ponte checks.
type IDTokenClaims struct {
	jwt.Claims
	Nonce string `json:"nonce"`
	CHash string `json:"c_hash"`
	SHash string `json:"s_hash"`
}

// IDTokenOpener opens the id_tokens of one brand: an encrypted one (JWE
// compact, five parts) is decrypted with Ponte's keys first, then the
// signed one (JWS compact, three parts) is verified against the brand's keys.
type IDTokenOpener struct {
	// BrandKeys are the brand's public keys (its jwks_uri).
	BrandKeys *jose.JSONWebKeySet
	// BrandKey, when set, finds the brand's key by kid instead of BrandKeys:
	// a Client's, which fetches the brand's JWKS again for a kid it lacks.
	BrandKey func(kid string) (*jose.JSONWebKey, error)
	// DecryptionKeys are Ponte's encryption keys. A JWE names its key by
	// kid; one without kid is tried with each (a rotated-out key keeps
	// decrypting the tokens a brand encrypted before it read the new one).
	DecryptionKeys []DecryptionKey
	// RequireEncryption refuses a plain signed id_token: set when Ponte
	// registered an encryption key at the brand, so a token that reaches
	// Ponte unencrypted was not meant to travel so.
	RequireEncryption bool
}

// Open decrypts (when it is a JWE) and verifies raw, returning its claims;
// it checks no claim. Every failure wraps ErrCallback with the reason.
func (o IDTokenOpener) Open(raw string) (*IDTokenClaims, error) {
	if len(raw) > maxIDToken {
		return nil, fmt.Errorf("%w: id_token is larger than %d bytes", ErrCallback, maxIDToken)
	}
	signed := raw
	switch strings.Count(raw, ".") {
	case 4:
		var err error
		if signed, err = o.decrypt(raw); err != nil {
			return nil, err
		}
	case 2:
		if o.RequireEncryption {
			return nil, fmt.Errorf("%w: id_token is not encrypted, but Ponte registered an encryption key at this brand", ErrCallback)
		}
	default:
		return nil, fmt.Errorf("%w: id_token is neither a signed JWT nor an encrypted one", ErrCallback)
	}
	tok, err := jwt.ParseSigned(signed, []jose.SignatureAlgorithm{jose.PS256})
	if err != nil || len(tok.Headers) != 1 {
		return nil, fmt.Errorf("%w: id_token is not a PS256 JWT", ErrCallback)
	}
	key, err := o.brandKey(tok.Headers[0].KeyID)
	if err != nil {
		return nil, err
	}
	var claims IDTokenClaims
	if err := tok.Claims(key.Key, &claims); err != nil {
		return nil, fmt.Errorf("%w: id_token signature", ErrCallback)
	}
	return &claims, nil
}

// brandKey is the brand's key with kid (ErrCallback when none).
func (o IDTokenOpener) brandKey(kid string) (*jose.JSONWebKey, error) {
	if o.BrandKey != nil {
		key, err := o.BrandKey(kid)
		if err != nil {
			return nil, fmt.Errorf("%w: id_token signed with an unknown key", ErrCallback)
		}
		return key, nil
	}
	if o.BrandKeys == nil {
		return nil, fmt.Errorf("%w: the brand's keys are unknown", ErrCallback)
	}
	keys := o.BrandKeys.Key(kid)
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: id_token signed with an unknown key", ErrCallback)
	}
	return &keys[0], nil
}

// decrypt opens a nested JWT's encryption: RSA-OAEP and A256GCM only, a
// content type of JWT when one is given, a key of Ponte's.
func (o IDTokenOpener) decrypt(raw string) (string, error) {
	jwe, err := jose.ParseEncryptedCompact(raw, []jose.KeyAlgorithm{IDTokenKeyAlg}, []jose.ContentEncryption{IDTokenContentAlg})
	if err != nil {
		return "", fmt.Errorf("%w: id_token is not a JWE encrypted with %s and %s (FAPI-BR's algorithms)", ErrCallback, IDTokenKeyAlg, IDTokenContentAlg)
	}
	// RFC 7519 §5.2: a nested JWT says cty JWT (media types compare without case).
	if cty, ok := jwe.Header.ExtraHeaders[jose.HeaderContentType]; ok {
		if s, _ := cty.(string); !strings.EqualFold(s, "JWT") {
			return "", fmt.Errorf("%w: encrypted id_token has content type %v, not JWT", ErrCallback, cty)
		}
	}
	if len(o.DecryptionKeys) == 0 {
		return "", fmt.Errorf("%w: id_token is encrypted but Ponte has no encryption key (--itp-encryption-key)", ErrCallback)
	}
	kid := jwe.Header.KeyID
	for _, k := range o.DecryptionKeys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if plain, err := jwe.Decrypt(k.Key); err == nil {
			if strings.Count(string(plain), ".") != 2 {
				return "", fmt.Errorf("%w: encrypted id_token does not hold a signed JWT", ErrCallback)
			}
			return string(plain), nil
		}
		if kid != "" {
			return "", fmt.Errorf("%w: id_token cannot be decrypted with Ponte's key %q", ErrCallback, kid)
		}
	}
	if kid != "" {
		return "", fmt.Errorf("%w: id_token is encrypted to a key Ponte does not have (kid %q)", ErrCallback, kid)
	}
	return "", fmt.Errorf("%w: id_token cannot be decrypted with any of Ponte's keys", ErrCallback)
}

// idTokenOpener is the opener for this client's brand (after Discover): a
// kid the brand's cached keys lack makes it fetch them again (brandKey).
func (c *Client) idTokenOpener(ctx context.Context) IDTokenOpener {
	return IDTokenOpener{DecryptionKeys: c.DecryptionKeys, RequireEncryption: c.RequireEncryptedIDToken,
		BrandKey: func(kid string) (*jose.JSONWebKey, error) { return c.brandKey(ctx, kid) }}
}

// checkIssued checks the claims every id_token from the brand carries: its
// issuer, Ponte as an audience, an expiry not past (30 s leeway), and the
// request's nonce.
func (c *Client) checkIssued(m *Metadata, claims *IDTokenClaims, nonce string) error {
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: m.Issuer, AnyAudience: jwt.Audience{c.ClientID}, Time: c.Clock.Now()}, 30*time.Second); err != nil {
		return fmt.Errorf("id_token: %v", err)
	}
	if claims.Expiry == nil {
		return errors.New("id_token has no exp")
	}
	if claims.Nonce != nonce {
		return errors.New("id_token nonce does not match")
	}
	return nil
}

// VerifyCallback checks a hybrid-flow callback against the request it answers
// and returns the authorization code: state matches; an OAuth error becomes a
// DeniedError; otherwise the id_token, decrypted first when the brand
// encrypted it to Ponte's key (RSA-OAEP, A256GCM), is signed by the brand
// (PS256, its JWKS), issued by it (iss) to Ponte (aud), unexpired, with the
// request's nonce, and c_hash/s_hash of the code and state. Anything else is
// ErrCallback.
func (c *Client) VerifyCallback(ctx context.Context, cb Callback, ar AuthRequest) (string, error) {
	if cb.State == "" || cb.State != ar.State {
		return "", fmt.Errorf("%w: state does not match the request", ErrCallback)
	}
	if cb.Error != "" {
		return "", &DeniedError{Code: cb.Error, Description: cb.ErrorDescription}
	}
	m, err := c.Discover(ctx)
	if err != nil {
		return "", err
	}
	if cb.Code == "" || cb.IDToken == "" {
		return "", fmt.Errorf("%w: code and id_token are required", ErrCallback)
	}
	claims, err := c.idTokenOpener(ctx).Open(cb.IDToken)
	if err != nil {
		return "", err
	}
	if err := c.checkIssued(m, claims, ar.Nonce); err != nil {
		return "", fmt.Errorf("%w: %v", ErrCallback, err)
	}
	if claims.CHash != halfHash(cb.Code) || claims.SHash != halfHash(cb.State) {
		return "", fmt.Errorf("%w: c_hash or s_hash does not match", ErrCallback)
	}
	return cb.Code, nil
}

// checkTokenIDToken checks the id_token of the token endpoint's answer, when
// there is one, as the callback's is checked (decryption, signature, iss,
// aud, exp; nonce when present, as OIDC Core §3.3.2.12 allows it absent).
func (c *Client) checkTokenIDToken(ctx context.Context, m *Metadata, raw string, ar AuthRequest) error {
	if raw == "" {
		return nil
	}
	claims, err := c.idTokenOpener(ctx).Open(raw)
	if err != nil {
		return fmt.Errorf("%w: token endpoint: %v", ErrBrand, err)
	}
	nonce := ar.Nonce
	if claims.Nonce == "" {
		nonce = ""
	}
	if err := c.checkIssued(m, claims, nonce); err != nil {
		return fmt.Errorf("%w: token endpoint: %v", ErrBrand, err)
	}
	return nil
}

// halfHash is OIDC's hash for PS256: the left half of SHA-256, base64url.
func halfHash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

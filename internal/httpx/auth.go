package httpx

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
)

// Principal is the partner application a request acts for, from its access token.
type Principal struct {
	ApplicationID string
	ClientID      string
	CompanyKey    string
	Scopes        []string
	// CertThumbprint is the token's RFC 8705 confirmation claim
	// (cnf.x5t#S256): when set, the request must present that client
	// certificate over mutual TLS. Empty for tokens not bound to a certificate.
	CertThumbprint string
}

// HasScope reports whether the principal holds scope.
func (p *Principal) HasScope(scope string) bool { return slices.Contains(p.Scopes, scope) }

// ErrInvalidToken is what a TokenVerifier returns for any token it refuses.
// Callers never learn why: expired, forged and revoked tokens look the same.
var ErrInvalidToken = errors.New("invalid access token")

// TokenVerifier checks a bearer access token and says whom it represents.
type TokenVerifier interface {
	VerifyAccessToken(ctx context.Context, raw string) (*Principal, error)
}

// PrincipalFrom returns the authenticated principal of the request.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey).(*Principal)
	return p
}

// RequireScope admits requests bearing a valid access token that holds scope:
// a missing or invalid token is a 401, a valid one without the scope a 403,
// both in the family's error shape with an RFC 6750 WWW-Authenticate header.
// A certificate-bound token (Principal.CertThumbprint, RFC 8705) is also a
// 401 invalid_token unless the request presents that verified client
// certificate over mutual TLS.
func RequireScope(v TokenVerifier, scope string, errs ErrorWriter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer`)
			errs.WriteError(w, r, &Error{Status: http.StatusUnauthorized, Message: "missing bearer access token"})
			return
		}
		p, err := v.VerifyAccessToken(r.Context(), raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				errs.WriteError(w, r, &Error{Status: http.StatusServiceUnavailable, Message: "could not verify access token, try again"})
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			errs.WriteError(w, r, &Error{Status: http.StatusUnauthorized, Message: "invalid or expired access token"})
			return
		}
		if p.CertThumbprint != "" && !certMatches(r, p.CertThumbprint) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="certificate-bound token"`)
			errs.WriteError(w, r, &Error{Status: http.StatusUnauthorized,
				Message: "invalid_token: the access token is bound to a client certificate this request did not present"})
			return
		}
		if !p.HasScope(scope) {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+scope+`"`)
			errs.WriteError(w, r, &Error{Status: http.StatusForbidden, Message: "access token lacks the scope " + scope})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
}

func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// ClientCertificate returns the client certificate the request presented over
// mutual TLS, or nil when there is none. Only a certificate the TLS layer
// verified against the configured client CAs counts.
func ClientCertificate(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates[0]
}

// CertThumbprint is the RFC 8705 §3.1 thumbprint of cert: the unpadded
// base64url SHA-256 of its DER encoding (the x5t#S256 confirmation value).
func CertThumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// certMatches reports whether the request presented the certificate whose
// thumbprint is want.
func certMatches(r *http.Request, want string) bool {
	cert := ClientCertificate(r)
	return cert != nil && subtle.ConstantTimeCompare([]byte(CertThumbprint(cert)), []byte(want)) == 1
}

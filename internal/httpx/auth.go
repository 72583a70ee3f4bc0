package httpx

import (
	"context"
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

package oidc

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/luikyv/go-oidc/pkg/goidc"
)

// MaxRequestObjectLifetime is the longest a request object may live from
// its nbf to its exp, in seconds: FAPI 1 Advanced §5.2.2-13, which FAPI-BR
// keeps ("exp ... no longer than 60 minutes after the nbf").
const MaxRequestObjectLifetime = 60 * 60

// requestObjectLifetime refuses, with invalid_request_object, a pushed
// request whose request object's exp is more than MaxRequestObjectLifetime
// after its nbf. go-oidc v0.13.0 only checks that nbf is at most an hour
// past and exp at most an hour ahead, which lets a request object live two
// hours. The claims are read unverified: this can only refuse more, and
// go-oidc then checks the signature and every other claim of what passes.
func requestObjectLifetime(next http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form, err := peekForm(r) // a body that cannot be read is go-oidc's to refuse
		if err == nil {
			if nbf, exp, ok := requestObjectTimes(form.Get("request")); ok && exp-nbf > MaxRequestObjectLifetime {
				oerr := goidc.NewError(goidc.ErrorCodeInvalidResquestObject,
					"the request object's exp is more than 60 minutes after its nbf")
				logger.InfoContext(r.Context(), "authorization server: request refused", "err", oerr)
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Cache-Control", "no-store")
				w.WriteHeader(oerr.StatusCode())
				_ = json.NewEncoder(w).Encode(oerr)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// requestObjectTimes returns the nbf and exp (Unix seconds) of a compact
// PS256 JWS request object, unverified; ok is false when it is not one or
// lacks either claim (go-oidc refuses those with its own errors).
func requestObjectTimes(raw string) (nbf, exp int64, ok bool) {
	if raw == "" {
		return 0, 0, false
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.PS256})
	if err != nil {
		return 0, 0, false
	}
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil || c.NotBefore == nil || c.Expiry == nil {
		return 0, 0, false
	}
	return int64(*c.NotBefore), int64(*c.Expiry), true
}

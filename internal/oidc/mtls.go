package oidc

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/luikyv/go-oidc/pkg/goidc"
	"github.com/luikyv/go-oidc/pkg/provider"

	"github.com/ponte-ofb/ponte/internal/httpx"
)

// withMutualTLS turns on go-oidc's mutual TLS and certificate-bound tokens
// (RFC 8705) when enabled, and changes nothing otherwise. One listener serves
// both kinds of request, so the mTLS endpoint aliases are the issuer's own
// endpoints. Tokens are bound whenever the token request presents a verified
// client certificate; CertificatePolicy requires one on the grants that
// reach go-oidc (authorization_code, refresh_token) and on PAR.
func withMutualTLS(enabled bool, issuer string) provider.Option {
	return func(p *provider.Provider) error {
		if !enabled {
			return nil
		}
		if err := provider.WithMTLS(issuer, clientCert)(p); err != nil {
			return err
		}
		return provider.WithTLSCertTokenBinding()(p)
	}
}

// errNoClientCert is what clientCert returns for a request without a
// verified client certificate.
var errNoClientCert = errors.New("oidc: no verified client certificate")

// clientCert is the goidc.ClientCertFunc: the request's client certificate,
// as verified by the TLS layer against the configured client CAs.
func clientCert(r *http.Request) (*x509.Certificate, error) {
	if cert := httpx.ClientCertificate(r); cert != nil {
		return cert, nil
	}
	return nil, errNoClientCert
}

// CertificatePolicy is FAPI-BR's mutual-TLS rule for the routes a client
// certificate is required on, for a listener that takes requests with and
// without one (browsers on the user-facing pages must not be prompted). Use
// it only when Ponte serves mutual TLS.
type CertificatePolicy struct {
	Logger *slog.Logger
	// ResourcePrefix is the path prefix of the resource APIs the tokens of
	// this server are for (Open Finance Brasil: "/open-banking/").
	ResourcePrefix string
	// ResourceErrors writes a refusal on those APIs in their family's shape.
	ResourceErrors httpx.ErrorWriter
}

// certRequirement says which error family refuses a request that lacks the
// client certificate it needs.
type certRequirement int

const (
	certOptional certRequirement = iota
	certResource                 // the resource APIs: their error shape
	certOAuth                    // the authorization server: RFC 6749 §5.2 errors
)

// clientAssertionType is the client_assertion_type of private_key_jwt (RFC 7523).
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Handler wraps next so that requests without a verified client certificate
// are refused with 401 on:
//
//   - every path under ResourcePrefix, written by ResourceErrors;
//   - PAR and the registration routes (/register, /register/{client_id}),
//     with an RFC 6749 invalid_client error;
//   - POST /oauth/token for the grants of Open Finance initiators
//     (authorization_code, refresh_token) and for any client authenticating
//     with private_key_jwt (client_assertion), refused the same way.
//
// Everything else takes requests with or without a certificate: the pages a
// browser opens (/oauth/authorize, the WebView, the hosted pages), discovery
// and JWKS, health and metrics, and the partner APIs, including
// client_credentials with a client secret. A token bound to a certificate
// (cnf) is still only accepted with that certificate, on every route
// (httpx.RequireScope).
func (p CertificatePolicy) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if httpx.ClientCertificate(r) != nil {
			next.ServeHTTP(w, r)
			return
		}
		need, err := p.needs(r)
		if err != nil {
			httpx.WriteJSON(w, r, http.StatusBadRequest, oauthError{"invalid_request", "cannot read the request body"})
			return
		}
		const refusal = "a client certificate is required: connect with mutual TLS"
		switch need {
		case certResource:
			p.Logger.InfoContext(r.Context(), "refused: client certificate required", "method", r.Method, "path", r.URL.Path)
			p.ResourceErrors.WriteError(w, r, &httpx.Error{Status: http.StatusUnauthorized, Message: refusal})
		case certOAuth:
			p.Logger.InfoContext(r.Context(), "refused: client certificate required", "method", r.Method, "path", r.URL.Path)
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Pragma", "no-cache")
			httpx.WriteJSON(w, r, http.StatusUnauthorized, oauthError{"invalid_client", refusal})
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// oauthError is the RFC 6749 §5.2 error body.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// needs classifies r. For the token endpoint it reads the form body (up to
// maxTokenForm) and puts it back for the handler.
func (p CertificatePolicy) needs(r *http.Request) (certRequirement, error) {
	path := r.URL.Path
	switch {
	case p.ResourcePrefix != "" && strings.HasPrefix(path, p.ResourcePrefix):
		return certResource, nil
	case path == PathPAR:
		return certOAuth, nil
	case path == PathRegister || strings.HasPrefix(path, PathRegister+"/"):
		// DCR-BR: registration and management only over mutual TLS.
		return certOAuth, nil
	case path == PathToken && r.Method == http.MethodPost:
		form, err := peekForm(r)
		if err != nil {
			return certOptional, err
		}
		for _, v := range []url.Values{form, r.URL.Query()} {
			switch v.Get("grant_type") {
			case string(goidc.GrantAuthorizationCode), string(goidc.GrantRefreshToken):
				return certOAuth, nil
			}
			if v.Has("client_assertion") || v.Get("client_assertion_type") == clientAssertionType {
				return certOAuth, nil
			}
		}
	}
	return certOptional, nil
}

// peekForm parses the start of r's body (up to maxTokenForm) as a form
// without consuming it. A malformed body parses as far as it goes: refusing
// it is the handler's job.
func peekForm(r *http.Request) (url.Values, error) {
	if r.Body == nil {
		return url.Values{}, nil
	}
	head, err := io.ReadAll(io.LimitReader(r.Body, maxTokenForm+1))
	if err != nil {
		return nil, fmt.Errorf("oidc: read token request: %w", err)
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
	form, _ := url.ParseQuery(string(head))
	return form, nil
}

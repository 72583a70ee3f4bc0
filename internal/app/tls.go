package app

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/payments"
)

// FAPICipherSuites are the TLS 1.2 cipher suites FAPI-BR allows. TLS 1.3
// suites are not configurable in Go and are all AEAD.
var FAPICipherSuites = []uint16{
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
}

// ServerTLSConfig is the TLS configuration of cfg: TLS 1.2 or later, the
// FAPI-BR cipher suites, no session resumption and, with --client-ca, client
// certificates verified against those authorities when the client sends one.
// Client certificates are asked for, not demanded, during the handshake so
// that browsers on the user-facing pages are not prompted; the routes that
// need one refuse the request without it (RequireClientCertificate). It
// returns nil when cfg does not serve TLS.
func ServerTLSConfig(cfg config.Config) (*tls.Config, error) {
	if !cfg.TLS() {
		return nil, nil
	}
	cert, err := config.LoadServerCertificate(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{
		Certificates:           []tls.Certificate{cert},
		MinVersion:             tls.VersionTLS12,
		CipherSuites:           FAPICipherSuites,
		SessionTicketsDisabled: true,
	}
	if cfg.ClientCAFile != "" {
		if tc.ClientCAs, err = config.LoadClientCAs(cfg.ClientCAFile); err != nil {
			return nil, err
		}
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return tc, nil
}

// useTLS prepares srv for cfg: under TLS it gets the TLS configuration, and
// under mutual TLS its handler refuses requests that need a client
// certificate and lack one. It reports whether srv must serve TLS.
func (a *App) useTLS(srv *http.Server) (bool, error) {
	tc, err := ServerTLSConfig(a.Config)
	if err != nil || tc == nil {
		return false, err
	}
	srv.TLSConfig = tc
	if a.Config.MutualTLS() {
		srv.Handler = a.RequireClientCertificate(srv.Handler)
	}
	return true, nil
}

// serveOn serves srv on ln, over TLS when useTLS said so.
func serveOn(srv *http.Server, ln net.Listener, useTLS bool) error {
	if useTLS {
		if err := srv.ServeTLS(ln, "", ""); err != nil {
			return fmt.Errorf("serve https: %w", err)
		}
		return nil
	}
	if err := srv.Serve(ln); err != nil {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// certRequirement says which error family refuses a request that lacks the
// client certificate it needs.
type certRequirement int

const (
	certOptional    certRequirement = iota
	certOpenFinance                 // Open Finance Brasil resource APIs: their error shape
	certOAuth                       // authorization server endpoints: RFC 6749 §5.2 errors
)

// openFinancePrefix is the path prefix of the Open Finance Brasil resource APIs.
const openFinancePrefix = "/open-banking/"

// clientAssertionType is the client_assertion_type of private_key_jwt (RFC 7523).
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxPeekedForm bounds how much of a token request body is read to classify
// it; the token handlers apply the same limit.
const maxPeekedForm = 64 << 10

// RequireClientCertificate wraps next so that, under mutual TLS, the Open
// Finance routes refuse requests without a verified client certificate with
// 401. These routes are:
//
//   - every path under /open-banking/ (Payments API v4 and whatever follows),
//     refused in the Open Finance error shape;
//   - /oauth/par, refused with an RFC 6749 invalid_client error;
//   - POST /oauth/token for the grants of Open Finance initiators
//     (authorization_code, refresh_token) and for any client authenticating
//     with private_key_jwt (client_assertion), refused the same way.
//
// Everything else takes requests with or without a certificate: the pages a
// browser opens (/oauth/authorize, the WebView, the hosted pages, /static/),
// discovery and JWKS, health and metrics, and the partner (Bankly, card,
// webhook) APIs, including client_credentials with a client secret. A token
// bound to a certificate (cnf) is still only accepted with that certificate,
// on every route (httpx.RequireScope).
func (a *App) RequireClientCertificate(next http.Handler) http.Handler {
	ofb := payments.ErrorWriter{Clock: a.Clock}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if httpx.ClientCertificate(r) != nil {
			next.ServeHTTP(w, r)
			return
		}
		need, err := certNeeded(r)
		if err != nil {
			httpx.WriteJSON(w, r, http.StatusBadRequest, oauthError{"invalid_request", "cannot read the request body"})
			return
		}
		switch need {
		case certOpenFinance:
			a.Logger.InfoContext(r.Context(), "refused: client certificate required", "method", r.Method, "path", r.URL.Path)
			id := r.Header.Get(payments.InteractionHeader)
			if _, err := uuid.Parse(id); err != nil || len(id) != 36 { // the canonical form only
				id = uuid.NewString()
			}
			w.Header().Set(payments.InteractionHeader, id)
			ofb.WriteError(w, r, &httpx.Error{Status: http.StatusUnauthorized,
				Message: "a client certificate is required: connect with mutual TLS"})
		case certOAuth:
			a.Logger.InfoContext(r.Context(), "refused: client certificate required", "method", r.Method, "path", r.URL.Path)
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Pragma", "no-cache")
			httpx.WriteJSON(w, r, http.StatusUnauthorized, oauthError{"invalid_client",
				"a client certificate is required: connect with mutual TLS"})
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

// certNeeded classifies r. For the token endpoint it reads the form body
// (up to maxPeekedForm) and puts it back for the handler.
func certNeeded(r *http.Request) (certRequirement, error) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, openFinancePrefix):
		return certOpenFinance, nil
	case p == oidc.PathPAR:
		return certOAuth, nil
	case p == oidc.PathToken && r.Method == http.MethodPost:
		form, err := peekForm(r)
		if err != nil {
			return certOptional, err
		}
		for _, v := range []url.Values{form, r.URL.Query()} {
			switch v.Get("grant_type") {
			case "authorization_code", "refresh_token":
				return certOAuth, nil
			}
			if v.Has("client_assertion") || v.Get("client_assertion_type") == clientAssertionType {
				return certOAuth, nil
			}
		}
	}
	return certOptional, nil
}

// peekForm parses the start of r's body as a form without consuming it.
// A malformed body parses as far as it goes: refusing it is the handler's job.
func peekForm(r *http.Request) (url.Values, error) {
	if r.Body == nil {
		return url.Values{}, nil
	}
	head, err := io.ReadAll(io.LimitReader(r.Body, maxPeekedForm+1))
	if err != nil {
		return nil, fmt.Errorf("read token request: %w", err)
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
	form, _ := url.ParseQuery(string(head))
	return form, nil
}

package oidc

import (
	"crypto/x509"
	"errors"
	"net/http"

	"github.com/luikyv/go-oidc/pkg/provider"

	"github.com/ponte-ofb/ponte/internal/httpx"
)

// withMutualTLS turns on go-oidc's mutual TLS and certificate-bound tokens
// (RFC 8705) when enabled, and changes nothing otherwise. One listener serves
// both kinds of request, so the mTLS endpoint aliases are the issuer's own
// endpoints. Tokens are bound whenever the token request presents a verified
// client certificate; internal/app requires one on the grants that reach
// go-oidc (authorization_code, refresh_token) and on PAR.
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

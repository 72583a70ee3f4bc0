package app

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	"github.com/ponte-ofb/ponte/internal/config"
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
// need one refuse the request without it (oidc.CertificatePolicy). It
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

// useTLS gives srv the TLS configuration when Ponte serves TLS, and reports
// whether it does. Under mutual TLS, the routes that need a client
// certificate refuse requests without one in the handler New built
// (oidc.CertificatePolicy).
func (a *App) useTLS(srv *http.Server) (bool, error) {
	tc, err := ServerTLSConfig(a.Config)
	if err != nil || tc == nil {
		return false, err
	}
	srv.TLSConfig = tc
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

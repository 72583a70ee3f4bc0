package app

import (
	"net/http"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/oidc"
)

// wireAuthorizationServer mounts the holder-side authorization server
// (internal/oidc) beside Ponte's partner token endpoint: the partner handler
// keeps its routes, except that POST /oauth/token is shared — the dispatcher
// sends authorization_code/refresh_token requests to the authorization server
// and everything else (client_credentials) to the partner handler.
func (a *App) wireAuthorizationServer(mux *http.ServeMux, key *auth.SigningKey, partner *auth.Handler) error {
	partnerMux := http.NewServeMux()
	partner.Register(partnerMux)
	srv, err := oidc.New(oidc.Config{
		Issuer: a.Config.PublicURL, Key: key, Logger: a.Logger,
		Storage: oidc.NewStorage(a.DB, a.Clock),
	})
	if err != nil {
		return err
	}
	a.AuthServer = srv
	srv.Mount(mux, partnerMux)
	// The partner handler's other routes.
	mux.Handle("GET /.well-known/jwks.json", partnerMux)
	return nil
}

package app

import (
	"context"
	"net/http"
	"strings"
	"sync"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
	"github.com/ponte-ofb/ponte/internal/holder"
)

// wireDataConsents builds the Consents API v3 data-sharing consent service
// (holder side), registers its timer jobs on a.Jobs and its routes on mux,
// and returns the service (for the WebView journey and the data APIs, which
// call Grant on every request). Bodies of this API are plain JSON, so key
// signs nothing here; it is taken for symmetry with the other consent APIs.
// "Meus compartilhamentos" is registered too; it reads a.Tickets and
// a.pages at request time (they are wired after this).
func (a *App) wireDataConsents(mux *http.ServeMux, key *auth.SigningKey) (*dataconsents.Service, error) {
	_ = key
	svc := dataconsents.NewService(a.DB, a.Clock, a.Logger, a.Config.PublicURL)
	svc.Register(a.Jobs)
	(&dataconsents.Handler{Service: svc, Verifier: resourceTokens{a}, Logger: a.Logger}).Register(mux)
	var (
		once    sync.Once
		sharing *dataconsents.SharingHandler
	)
	handler := func() *dataconsents.SharingHandler {
		once.Do(func() {
			sharing = &dataconsents.SharingHandler{Service: svc, Tickets: a.Tickets, Names: appNames{a.Apps, a.AuthServer.Storage()}, Pages: a.pages,
				Logger: a.Logger, SecureCookies: strings.HasPrefix(a.Config.PublicURL, "https://")}
		})
		return sharing
	}
	mux.HandleFunc("GET "+dataconsents.PathMySharing, func(w http.ResponseWriter, r *http.Request) { handler().ServePage(w, r) })
	mux.HandleFunc("GET "+dataconsents.PathMySharingRevoke, func(w http.ResponseWriter, r *http.Request) { handler().ServeConfirm(w, r) })
	mux.HandleFunc("POST "+dataconsents.PathMySharingRevoke, func(w http.ResponseWriter, r *http.Request) { handler().ServeRevoke(w, r) })
	return svc, nil
}

// appNames names receiving institutions as the WebView named them when the
// user authorised: the application's registration with the authorization
// server (holder.ClientNames), else the application's own name.
type appNames struct {
	apps    *auth.Applications
	clients holder.ClientNames
}

// AppName implements dataconsents.AppNames.
func (n appNames) AppName(ctx context.Context, applicationID string) string {
	app, err := n.apps.Get(ctx, applicationID)
	if err != nil {
		return ""
	}
	if name, ok := n.clients.ClientName(ctx, app.ClientID); ok && name != "" {
		return name
	}
	return app.Name
}

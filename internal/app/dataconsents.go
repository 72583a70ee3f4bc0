package app

import (
	"context"
	"html/template"
	"net/http"
	"strings"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
	"github.com/ponte-ofb/ponte/internal/httpx"
)

// registerDataConsents registers the Consents API v3 data-sharing consent
// routes of svc (holder side) and "Meus compartilhamentos", the page where a
// customer, sent by the partner with a ticket, sees and revokes what they
// share.
func registerDataConsents(b base, mux *http.ServeMux, svc *dataconsents.Service, verifier httpx.TokenVerifier,
	tickets *consentflow.Tickets, names dataconsents.AppNames, pages *template.Template) {
	(&dataconsents.Handler{Service: svc, Verifier: verifier, Logger: b.logger}).Register(mux)
	sharing := &dataconsents.SharingHandler{Service: svc, Tickets: tickets, Names: names, Pages: pages,
		Logger: b.logger, SecureCookies: strings.HasPrefix(b.cfg.PublicURL, "https://")}
	mux.HandleFunc("GET "+dataconsents.PathMySharing, sharing.ServePage)
	mux.HandleFunc("GET "+dataconsents.PathMySharingRevoke, sharing.ServeConfirm)
	mux.HandleFunc("POST "+dataconsents.PathMySharingRevoke, sharing.ServeRevoke)
}

// appNames names receiving institutions as the WebView named them when the
// user authorised: the application's registration with the authorization
// server (consentflow.ClientNames), else the application's own name.
type appNames struct {
	apps    *auth.Applications
	clients consentflow.ClientNames
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

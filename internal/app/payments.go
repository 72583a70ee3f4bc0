package app

import (
	"context"
	"net/http"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/payments"
)

// wirePayments builds the Payments API v4 consent service (holder side),
// registers its jobs (consent expiry, used-jti sweep) on a.Jobs and its
// routes on mux, and returns the service (for the WebView journey to
// authorise or reject consents). Call after wireWebhooks, which creates the
// job queue, and after the signing key file exists (New loads it first):
// responses to signed requests are signed with that key.
func (a *App) wirePayments(mux *http.ServeMux) *payments.Service {
	svc := payments.NewService(a.DB, a.Clock, a.Logger, a.Config.PublicURL)
	svc.Register(a.Jobs)
	h := &payments.Handler{Service: svc, Verifier: a.Tokens, Logger: a.Logger, Callers: paymentCallers{a.Apps}}
	// New has just loaded (or created) this key file, so this reads the same
	// key; should it fail all the same, signed requests get a logged 500.
	if key, err := auth.LoadOrCreateKey(a.Config.SigningKeyFile); err != nil {
		a.Logger.Error("payments: no response signing key: signed requests will fail", "err", err)
	} else if h.Signer, err = payments.NewSigner(key.Private, key.KeyID); err != nil {
		a.Logger.Error("payments: no response signer: signed requests will fail", "err", err)
	}
	h.Register(mux)
	return svc
}

// paymentCallers reads the calling application's keys and plain-JSON flag
// straight from the database, so a key registered or revoked (on any
// instance, or with the CLI) applies to the very next request.
type paymentCallers struct{ apps *auth.Applications }

// Caller implements payments.Callers.
func (c paymentCallers) Caller(ctx context.Context, clientID string) (*payments.Caller, error) {
	a, err := c.apps.Get(ctx, clientID)
	if err != nil {
		return nil, err
	}
	return &payments.Caller{ApplicationID: a.ID, ClientID: a.ClientID, JWKS: a.JWKS, AcceptPlainJSON: a.AcceptPlainJSON}, nil
}

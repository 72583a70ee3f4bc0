package app

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/payments"
)

// wirePayments builds the Payments API v4 consent service (holder side),
// registers its jobs (consent expiry, used-jti sweep) on a.Jobs and its
// routes on mux, and returns the service (for the WebView journey to
// authorise or reject consents). Call after wireWebhooks, which creates the
// job queue. Responses to signed requests are signed with key, Ponte's
// signing key.
func (a *App) wirePayments(mux *http.ServeMux, key *auth.SigningKey) (*payments.Service, error) {
	svc := payments.NewService(a.DB, a.Clock, a.Logger, a.Config.PublicURL)
	svc.Register(a.Jobs)
	h := &payments.Handler{Service: svc, Verifier: resourceTokens{a}, Logger: a.Logger, Callers: paymentCallers{a.Apps}}
	signer, err := payments.NewSigner(key.Private, key.KeyID)
	if err != nil {
		return nil, fmt.Errorf("payments: response signer: %w", err)
	}
	h.Signer = signer
	h.Register(mux)
	return svc, nil
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

package app

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/payments"
)

// registerPayments registers the Payments API v4 consent routes of svc
// (holder side). Access tokens are verified with verifier; responses to
// signed requests are signed with key, Ponte's signing key.
func registerPayments(b base, mux *http.ServeMux, svc *payments.Service, verifier httpx.TokenVerifier, apps *auth.Applications,
	key *auth.SigningKey) error {
	signer, err := payments.NewSigner(key.Private, key.KeyID)
	if err != nil {
		return fmt.Errorf("payments: response signer: %w", err)
	}
	(&payments.Handler{Service: svc, Verifier: verifier, Logger: b.logger, Callers: paymentCallers{apps}, Signer: signer}).Register(mux)
	return nil
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

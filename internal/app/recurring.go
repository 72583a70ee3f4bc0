package app

import (
	"fmt"
	"net/http"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/recurring"
)

// wireRecurring builds the Automatic Payments v2 recurring-consent service
// for sweeping accounts (holder side), registers its jobs (consent timers,
// used-jti sweep) on a.Jobs and its routes on mux, and returns the service
// (for the WebView journey to authorise or reject consents). Call after
// wirePayments. Callers are read like the payments API's (paymentCallers);
// responses to signed requests are signed with key, Ponte's signing key.
func (a *App) wireRecurring(mux *http.ServeMux, key *auth.SigningKey) (*recurring.Service, error) {
	svc := recurring.NewService(a.DB, a.Clock, a.Logger, a.Config.PublicURL)
	svc.Register(a.Jobs)
	signer, err := payments.NewSigner(key.Private, key.KeyID)
	if err != nil {
		return nil, fmt.Errorf("recurring: response signer: %w", err)
	}
	h := &recurring.Handler{Service: svc, Verifier: resourceTokens{a}, Logger: a.Logger, Callers: paymentCallers{a.Apps}, Signer: signer}
	h.Register(mux)
	return svc, nil
}

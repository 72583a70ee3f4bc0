package app

import (
	"fmt"
	"net/http"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/recurring"
)

// registerRecurring registers the Automatic Payments v2 recurring-consent
// routes of svc (sweeping accounts, holder side). Callers are read like the
// payments API's (paymentCallers); responses to signed requests are signed
// with key, Ponte's signing key.
func registerRecurring(b base, mux *http.ServeMux, svc *recurring.Service, verifier httpx.TokenVerifier, apps *auth.Applications,
	key *auth.SigningKey) error {
	signer, err := payments.NewSigner(key.Private, key.KeyID)
	if err != nil {
		return fmt.Errorf("recurring: response signer: %w", err)
	}
	(&recurring.Handler{Service: svc, Verifier: verifier, Logger: b.logger, Callers: paymentCallers{apps}, Signer: signer}).Register(mux)
	return nil
}

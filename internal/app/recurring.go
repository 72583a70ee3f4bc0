package app

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/recurring"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

// registerRecurring registers the Automatic Payments v2 recurring-consent
// routes of svc (sweeping accounts, holder side). Callers are read like the
// payments API's (paymentCallers); responses to signed requests are signed
// with key, Ponte's signing key.
func registerRecurring(b base, mux *http.ServeMux, svc *recurring.Service, verifier httpx.TokenVerifier, callers *paymentCallers,
	key *auth.SigningKey) error {
	signer, err := payments.NewSigner(key.Private, key.KeyID)
	if err != nil {
		return fmt.Errorf("recurring: response signer: %w", err)
	}
	(&recurring.Handler{Service: svc, Verifier: verifier, Logger: b.logger, Callers: callers, Signer: signer,
		OrganisationID: b.cfg.OrganisationID}).Register(mux)
	return nil
}

// recurringPaymentEvents turns sweeping payment status changes into webhook
// events: ids, status and rejection code only (one event per payment and
// status, whatever retries happen).
type recurringPaymentEvents struct{ w *webhooks.Emitter }

// EmitPaymentEvent implements recurring.PaymentEvents.
func (e recurringPaymentEvents) EmitPaymentEvent(ctx context.Context, tx *sql.Tx, ev recurring.PaymentEvent) error {
	data := map[string]any{"recurringPaymentId": ev.PaymentID, "recurringConsentId": ev.ConsentID, "endToEndId": ev.EndToEndID,
		"status": string(ev.Status)}
	if ev.RejectionCode != "" {
		data["rejectionReason"] = ev.RejectionCode
	}
	return e.w.Emit(ctx, tx, webhooks.Event{
		ID:            "recurring-payment-" + ev.PaymentID + "-" + string(ev.Status),
		ApplicationID: ev.ApplicationID, Context: recurring.EventContext, Name: recurring.EventPaymentStatusChanged,
		EntityID: ev.PaymentID, Time: ev.At, Data: data,
	})
}

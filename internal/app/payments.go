package app

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"sync"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

// registerPayments registers the Payments API v4 routes of svc (holder
// side): consents and Pix payments. Access tokens are verified with
// verifier; responses are signed with key, Ponte's signing key, and name
// Ponte's organisation id as their issuer. Every Pix payment status change becomes a webhook event for
// the holder partner owning the debtor account.
func registerPayments(b base, mux *http.ServeMux, svc *payments.Service, verifier httpx.TokenVerifier, apps *auth.Applications,
	key *auth.SigningKey, events *webhooks.Emitter) error {
	signer, err := payments.NewSigner(key.Private, key.KeyID)
	if err != nil {
		return fmt.Errorf("payments: response signer: %w", err)
	}
	svc.Events = pixPaymentEvents{w: events, holders: &accountHolders{}}
	(&payments.Handler{Service: svc, Verifier: verifier, Logger: b.logger, Callers: paymentCallers{apps}, Signer: signer,
		OrganisationID: b.cfg.OrganisationID}).Register(mux)
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
	return &payments.Caller{ApplicationID: a.ID, ClientID: a.ClientID, OrganisationID: a.OrganisationID, JWKS: a.JWKS,
		AcceptPlainJSON: a.AcceptPlainJSON}, nil
}

// PixPaymentEventName is the webhook event of every Pix payment status
// change (Context "Payments"); its data says which status.
const PixPaymentEventName = "PIX_PAYMENT_STATUS_CHANGED"

// pixPaymentEvents turns Pix payment status changes into webhook events for
// the holder partner application whose customer owns the debtor account:
// ids, status, amount and the rejection code, never a document.
type pixPaymentEvents struct {
	w       *webhooks.Emitter
	holders *accountHolders
}

// accountHolders remembers which application holds an account: an account
// never changes holder (its customer belongs to one application), and the
// settlement worker would otherwise look it up for every payment.
type accountHolders struct {
	mu sync.Mutex
	m  map[string]string
}

// maxAccountHolders bounds the memory; when full it starts over.
const maxAccountHolders = 100_000

func (h *accountHolders) get(ctx context.Context, tx *sql.Tx, a payments.Account) (string, bool, error) {
	key := a.ISPB + "/" + customers.NormalizeIssuer(a.Issuer) + "/" + a.Number
	h.mu.Lock()
	app, ok := h.m[key]
	h.mu.Unlock()
	if ok {
		return app, true, nil
	}
	app, _, ok, err := customers.AccountHolder(ctx, tx, a.ISPB, a.Issuer, a.Number)
	if err != nil || !ok {
		return "", false, err
	}
	h.mu.Lock()
	if h.m == nil || len(h.m) >= maxAccountHolders {
		h.m = map[string]string{}
	}
	h.m[key] = app
	h.mu.Unlock()
	return app, true, nil
}

// EmitPixPaymentEvent implements payments.PaymentEvents.
func (e pixPaymentEvents) EmitPixPaymentEvent(ctx context.Context, tx *sql.Tx, ev payments.PaymentEvent) error {
	w, ok, err := e.event(ctx, tx, ev)
	if err != nil || !ok {
		return err
	}
	return e.w.Emit(ctx, tx, w)
}

// EmitPixPaymentEvents implements payments.BatchPaymentEvents: one
// webhooks.EmitAll, which reads each partner's subscriptions once.
func (e pixPaymentEvents) EmitPixPaymentEvents(ctx context.Context, tx *sql.Tx, evs []payments.PaymentEvent) error {
	ws := make([]webhooks.Event, 0, len(evs))
	for _, ev := range evs {
		w, ok, err := e.event(ctx, tx, ev)
		if err != nil {
			return err
		}
		if ok {
			ws = append(ws, w)
		}
	}
	return e.w.EmitAll(ctx, tx, ws)
}

// event is ev's webhook event; ok is false when no partner holds the
// debtor account (nobody to tell).
func (e pixPaymentEvents) event(ctx context.Context, tx *sql.Tx, ev payments.PaymentEvent) (webhooks.Event, bool, error) {
	holder, ok, err := e.holders.get(ctx, tx, ev.DebtorAccount)
	if err != nil || !ok {
		return webhooks.Event{}, false, err
	}
	data := map[string]any{
		"paymentId": ev.PaymentID, "consentId": ev.ConsentID, "endToEndId": ev.EndToEndID, "status": string(ev.Status),
		"amount": fmt.Sprintf("%d.%02d", ev.AmountCents/100, ev.AmountCents%100), "currency": "BRL",
		"statusUpdateDateTime": ev.At.UTC().Format("2006-01-02T15:04:05Z"),
	}
	if ev.Rejection != nil {
		data["rejectionReason"] = map[string]any{"code": ev.Rejection.Code}
	}
	return webhooks.Event{
		ID:            "pix-payment-" + ev.PaymentID + "-" + string(ev.Status), // one per status change, whatever retries happen
		ApplicationID: holder, Context: "Payments", Name: PixPaymentEventName, EntityID: ev.PaymentID, Data: data,
	}, true, nil
}

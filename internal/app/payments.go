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
	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

// registerPayments registers the Payments API v4 routes of svc (holder
// side): consents and Pix payments. Access tokens are verified with
// verifier; responses are signed with key, Ponte's signing key, and name
// Ponte's organisation id as their issuer. Every Pix payment status change becomes a webhook event for
// the holder partner owning the debtor account.
func registerPayments(b base, mux *http.ServeMux, svc *payments.Service, verifier httpx.TokenVerifier, callers *paymentCallers,
	key *auth.SigningKey, events *webhooks.Emitter) error {
	signer, err := payments.NewSigner(key.Private, key.KeyID)
	if err != nil {
		return fmt.Errorf("payments: response signer: %w", err)
	}
	svc.Events = pixPaymentEvents{w: events, holders: &accountHolders{}}
	(&payments.Handler{Service: svc, Verifier: verifier, Logger: b.logger, Callers: callers, Signer: signer,
		OrganisationID: b.cfg.OrganisationID}).Register(mux)
	return nil
}

// paymentCallers reads the calling application's keys and plain-JSON flag
// straight from the database, so a key registered or revoked (on any
// instance, or with the CLI) applies to the very next request. It also
// keeps the callers it read (payments.CachedCallers): a consent create on
// PostgreSQL decides on the cached one and its statement writes only if
// the application's row still says the same (Unchanged); otherwise it reads
// again and decides again, so the very next request still sees a change.
type paymentCallers struct {
	apps *auth.Applications

	mu     sync.Mutex
	cached map[string]*payments.Caller // by client_id
}

// maxPaymentCallers bounds the cache; when full it starts over.
const maxPaymentCallers = 10_000

func newPaymentCallers(apps *auth.Applications) *paymentCallers {
	return &paymentCallers{apps: apps, cached: map[string]*payments.Caller{}}
}

// Caller implements payments.Callers.
func (c *paymentCallers) Caller(ctx context.Context, clientID string) (*payments.Caller, error) {
	a, err := c.apps.Get(ctx, clientID)
	if err != nil {
		c.forget(clientID)
		return nil, err
	}
	caller := &payments.Caller{ApplicationID: a.ID, ClientID: a.ClientID, OrganisationID: a.OrganisationID, JWKS: a.JWKS,
		AcceptPlainJSON: a.AcceptPlainJSON, Disabled: a.Disabled}
	if a.Disabled || a.ClientID != clientID {
		// Only callers found by client_id, enabled, are reused.
		c.forget(clientID)
		return caller, nil
	}
	c.mu.Lock()
	if len(c.cached) >= maxPaymentCallers {
		clear(c.cached)
	}
	c.cached[clientID] = caller
	c.mu.Unlock()
	return caller, nil
}

func (c *paymentCallers) forget(clientID string) {
	c.mu.Lock()
	delete(c.cached, clientID)
	c.mu.Unlock()
}

// Cached implements payments.CachedCallers.
func (c *paymentCallers) Cached(clientID string) (*payments.Caller, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	caller, ok := c.cached[clientID]
	return caller, ok
}

// Unchanged implements payments.CachedCallers: the row is compared column
// by column, not by updated_at, which two changes within one millisecond
// (or instances whose clocks differ) would leave equal.
func (c *paymentCallers) Unchanged(q *idempotency.Query, caller *payments.Caller) string {
	plain := 0
	if caller.AcceptPlainJSON {
		plain = 1
	}
	return `EXISTS (SELECT 1 FROM applications WHERE id = ` + q.Arg(caller.ApplicationID) + ` AND client_id = ` + q.Arg(caller.ClientID) +
		` AND disabled = 0 AND accept_plain_json = ` + q.Arg(plain) + ` AND organisation_id = ` + q.Arg(caller.OrganisationID) +
		` AND jwks = ` + q.Arg(string(caller.JWKS)) + `)`
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

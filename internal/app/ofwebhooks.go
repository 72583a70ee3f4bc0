package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/ofwebhook"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/recurring"
)

// wireOFWebhooks wires the Open Finance webhooks (issue 16 §5c). Holder
// side: the status changes of payment consents, Pix payments, recurring
// consents and sweeping payments that the webhook convention lists become
// notifications, in the change's transaction, for initiators that
// registered webhook URIs, posted by jobs over mutual TLS with Ponte's
// transport certificate (--transport-cert), trusting the system's roots and
// --transport-ca's. Initiator side: the receiving
// routes, which read the named payments at their brand at once. It wraps the
// payment events pay and rec already have, so call it after those are set.
func wireOFWebhooks(b base, mux *http.ServeMux, jobq *jobs.Client, pay *payments.Service, rec *recurring.Service, flow *itpflow.Flow) error {
	var cert *tls.Certificate
	if b.cfg.TransportCertFile != "" {
		c, err := tls.LoadX509KeyPair(b.cfg.TransportCertFile, b.cfg.TransportKeyFile)
		if err != nil {
			return fmt.Errorf("app: --transport-cert: %w", err)
		}
		cert = &c
	} else if !b.cfg.Sandbox() {
		b.logger.Warn("Open Finance webhooks: --transport-cert is not set; initiators that require mutual TLS will refuse the notifications")
	}
	var roots *x509.CertPool // nil: the system's
	if b.cfg.TransportCAFile != "" {
		var err error
		if roots, err = config.LoadTransportCAs(b.cfg.TransportCAFile); err != nil {
			return err
		}
	}
	ofwebhook.NewDeliverer(ofwebhook.Options{DB: b.db, Clock: b.clock, Logger: b.logger, Certificate: cert, RootCAs: roots,
		Sandbox: b.cfg.Sandbox()}).Register(jobq)
	n := &ofwebhook.Notifier{Clock: b.clock, Recipients: webhookRecipients{}}
	pay.Events = ofPixEvents{next: pay.Events, n: n}
	pay.ConsentEvents = ofConsentEvents{n}
	rec.Events = ofRecurringEvents{next: rec.Events, n: n}
	rec.ConsentEvents = ofConsentEvents{n}
	(&itpflow.WebhookHandler{Payments: flow.Payments, Logger: b.logger, Clock: b.clock}).Register(mux)
	return nil
}

// webhookRecipients reads an initiator's webhook URIs from its Open Finance
// client registration (oidc.WebhookURIs), through the caller's transaction.
type webhookRecipients struct{}

// WebhookURIs implements ofwebhook.Recipients. An application that is no
// Open Finance client has none.
func (webhookRecipients) WebhookURIs(ctx context.Context, tx *sql.Tx, applicationID string) ([]string, error) {
	var data string
	err := tx.QueryRowContext(ctx, `SELECT c.data FROM applications a JOIN oidc_clients c ON c.id = a.client_id WHERE a.id = $1`,
		applicationID).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c goidc.Client
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		return nil, fmt.Errorf("decode client: %w", err)
	}
	return oidc.WebhookURIs(&c), nil
}

// ofPixNotified are the Pix payment statuses the convention notifies.
var ofPixNotified = map[string]bool{"ACSC": true, "RJCT": true, "CANC": true, "PATC": true, "PDNG": true, "SCHD": true}

// ofPixEvents adds the Open Finance notification to every Pix payment
// status change next already turns into a partner webhook event.
type ofPixEvents struct {
	next payments.PaymentEvents
	n    *ofwebhook.Notifier
}

func pixNotification(ev payments.PaymentEvent) (ofwebhook.Notification, bool) {
	return ofwebhook.Notification{ApplicationID: ev.ApplicationID, Resource: ofwebhook.PixPayment, ID: ev.PaymentID,
		Status: string(ev.Status), At: ev.At}, ofPixNotified[string(ev.Status)]
}

// EmitPixPaymentEvent implements payments.PaymentEvents.
func (e ofPixEvents) EmitPixPaymentEvent(ctx context.Context, tx *sql.Tx, ev payments.PaymentEvent) error {
	if e.next != nil {
		if err := e.next.EmitPixPaymentEvent(ctx, tx, ev); err != nil {
			return err
		}
	}
	if no, ok := pixNotification(ev); ok {
		return e.n.Notify(ctx, tx, no)
	}
	return nil
}

// EmitPixPaymentEvents implements payments.BatchPaymentEvents (the
// settlement worker's batch): one Notify for the batch.
func (e ofPixEvents) EmitPixPaymentEvents(ctx context.Context, tx *sql.Tx, evs []payments.PaymentEvent) error {
	switch next := e.next.(type) {
	case payments.BatchPaymentEvents:
		if err := next.EmitPixPaymentEvents(ctx, tx, evs); err != nil {
			return err
		}
	case nil:
	default:
		for _, ev := range evs {
			if err := next.EmitPixPaymentEvent(ctx, tx, ev); err != nil {
				return err
			}
		}
	}
	ns := make([]ofwebhook.Notification, 0, len(evs))
	for _, ev := range evs {
		if no, ok := pixNotification(ev); ok {
			ns = append(ns, no)
		}
	}
	return e.n.Notify(ctx, tx, ns...)
}

// ofRecurringEvents adds the Open Finance notification to sweeping payment
// status changes: the final statuses and the ones the Pix arrangement
// notifies (SCHD, PDNG).
type ofRecurringEvents struct {
	next recurring.PaymentEvents
	n    *ofwebhook.Notifier
}

// EmitPaymentEvent implements recurring.PaymentEvents.
func (e ofRecurringEvents) EmitPaymentEvent(ctx context.Context, tx *sql.Tx, ev recurring.PaymentEvent) error {
	if e.next != nil {
		if err := e.next.EmitPaymentEvent(ctx, tx, ev); err != nil {
			return err
		}
	}
	if !ofPixNotified[string(ev.Status)] {
		return nil
	}
	return e.n.Notify(ctx, tx, ofwebhook.Notification{ApplicationID: ev.ApplicationID, Resource: ofwebhook.RecurringPayment,
		ID: ev.PaymentID, Status: string(ev.Status), At: ev.At})
}

// ofConsentEvents notifies the consent changes the convention lists:
// REJECTED, CONSUMED, AUTHORISED when reached from PARTIALLY_ACCEPTED (the
// initiator is waiting for the other approvers) and, for recurring
// consents, REVOKED.
type ofConsentEvents struct{ n *ofwebhook.Notifier }

func consentNotified(from, to string) bool {
	switch to {
	case "REJECTED", "CONSUMED", "REVOKED":
		return true
	case "AUTHORISED":
		return from == "PARTIALLY_ACCEPTED"
	}
	return false
}

// ConsentChanged implements payments.ConsentEvents.
func (e ofConsentEvents) ConsentChanged(ctx context.Context, tx *sql.Tx, ev payments.ConsentEvent) error {
	if !consentNotified(string(ev.From), string(ev.To)) {
		return nil
	}
	return e.n.Notify(ctx, tx, ofwebhook.Notification{ApplicationID: ev.ApplicationID, Resource: ofwebhook.PaymentConsent,
		ID: ev.ConsentID, Status: string(ev.To), At: ev.At})
}

// ConsentsChanged implements payments.BatchConsentEvents (the consents a
// settlement batch consumed): one Notify, reading each initiator's webhook
// URIs once.
func (e ofConsentEvents) ConsentsChanged(ctx context.Context, tx *sql.Tx, evs []payments.ConsentEvent) error {
	ns := make([]ofwebhook.Notification, 0, len(evs))
	for _, ev := range evs {
		if consentNotified(string(ev.From), string(ev.To)) {
			ns = append(ns, ofwebhook.Notification{ApplicationID: ev.ApplicationID, Resource: ofwebhook.PaymentConsent,
				ID: ev.ConsentID, Status: string(ev.To), At: ev.At})
		}
	}
	return e.n.Notify(ctx, tx, ns...)
}

// RecurringConsentChanged implements recurring.ConsentEvents.
func (e ofConsentEvents) RecurringConsentChanged(ctx context.Context, tx *sql.Tx, ev recurring.ConsentEvent) error {
	if !consentNotified(string(ev.From), string(ev.To)) {
		return nil
	}
	return e.n.Notify(ctx, tx, ofwebhook.Notification{ApplicationID: ev.ApplicationID, Resource: ofwebhook.RecurringConsent,
		ID: ev.ConsentID, Status: string(ev.To), At: ev.At})
}

// sandboxWebhookURIs are the webhook base URLs Ponte-as-initiator registers
// at its own sandbox brand: its public URL, where the receiving routes are.
func sandboxWebhookURIs(publicURL string) []string {
	return []string{strings.TrimRight(publicURL, "/")}
}

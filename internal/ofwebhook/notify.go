// Package ofwebhook is the holder side of the Open Finance Brasil webhooks
// (Convenção de Webhook; API Webhook 1.2.0): when a payment consent, a Pix
// payment, a recurring consent or a recurring payment reaches one of the
// statuses the convention lists, every webhook URI the initiator registered
// (its client's webhook_uris) gets
//
//	POST {uri}/open-banking/webhook/v1/{resource}/{id}
//	x-webhook-interaction-id: <new UUID per attempt>
//	{"data":{"timestamp":"2026-12-07T14:30:00Z"}}
//
// over mutual TLS with Ponte's transport certificate, and must answer 202.
// The notification carries no data: the initiator reads the resource.
//
// Notifier records the notification (one delivery and its job per URI) in
// the transaction of the status change; Deliverer is the job handler that
// posts it, retrying on internal/webhooks' schedule behind its SSRF guard
// (internal/webhooks.GuardedTransport) and logging every attempt.
package ofwebhook

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

// JobKind is the jobs kind of an Open Finance webhook delivery.
const JobKind = "ofwebhook.deliver"

// PathPrefix opens every notification path after the initiator's base URL.
const PathPrefix = "/open-banking/webhook/v1/"

// Resource names what a notification is about: the path between PathPrefix
// and the id, with the version of the API Ponte serves it in.
type Resource string

// The resources Ponte notifies about.
const (
	PaymentConsent   Resource = "payments/v4/consents"
	PixPayment       Resource = "payments/v4/pix/payments"
	RecurringConsent Resource = "automatic-payments/v2/recurring-consents"
	RecurringPayment Resource = "automatic-payments/v2/pix/recurring-payments"
)

// Delivery statuses (those of internal/webhooks, without cancelled).
const (
	StatusPending   = "pending"
	StatusFailed    = "failed"
	StatusDelivered = "delivered"
	StatusExhausted = "exhausted"
)

// Notification is one status change an initiator is told about.
type Notification struct {
	// ApplicationID is the initiator: the partner application whose Open
	// Finance client registration names the webhook URIs.
	ApplicationID string
	Resource      Resource
	// ID is the resource's id (paymentId, consentId, ...).
	ID string
	// Status is the status reached; with Resource and ID it identifies the
	// change, so recording it twice notifies once.
	Status string
	// At is when the change happened (the body's timestamp).
	At time.Time
}

// Recipients finds an initiator's webhook base URLs, reading through tx
// (the caller's transaction: never the pool while it is held).
type Recipients interface {
	WebhookURIs(ctx context.Context, tx *sql.Tx, applicationID string) ([]string, error)
}

// Notifier records notifications for delivery.
type Notifier struct {
	Clock      clock.Clock
	Recipients Recipients
}

// body is the notification body (RequestBodyWebhook).
type body struct {
	Data struct {
		Timestamp string `json:"timestamp"`
	} `json:"data"`
}

// TimestampLayout is the body's timestamp: RFC 3339, UTC, no fraction.
const TimestampLayout = "2006-01-02T15:04:05Z"

type deliveryJob struct {
	DeliveryID string `json:"deliveryId"`
}

// Notify records ns in tx, the caller's transaction: for each notification,
// one delivery and its job per webhook URI of the initiator; nothing for an
// initiator without webhook URIs. The URIs of an application are read once
// per call.
func (n *Notifier) Notify(ctx context.Context, tx *sql.Tx, ns ...Notification) error {
	if len(ns) == 0 {
		return nil
	}
	c := n.Clock
	if c == nil {
		c = clock.System{}
	}
	now := c.Now()
	uris := map[string][]string{}
	for _, no := range ns {
		if no.ApplicationID == "" || no.ID == "" || no.Resource == "" || no.Status == "" {
			return fmt.Errorf("ofwebhook: notification %+v lacks application, resource, id or status", no)
		}
		list, ok := uris[no.ApplicationID]
		if !ok {
			var err error
			if list, err = n.Recipients.WebhookURIs(ctx, tx, no.ApplicationID); err != nil {
				return fmt.Errorf("ofwebhook: webhook URIs of %s: %w", no.ApplicationID, err)
			}
			uris[no.ApplicationID] = list
		}
		if len(list) == 0 {
			continue
		}
		at := no.At
		if at.IsZero() {
			at = now
		}
		var b body
		b.Data.Timestamp = at.UTC().Format(TimestampLayout)
		raw, err := json.Marshal(b)
		if err != nil {
			return err
		}
		key := string(no.Resource) + "/" + no.ID + "/" + no.Status
		for _, base := range list {
			if err := insertDelivery(ctx, tx, now, no, key, NotificationURL(base, no.Resource, no.ID), raw); err != nil {
				return err
			}
		}
	}
	return nil
}

// NotificationURL is the URL a notification about resource id goes to at
// the webhook base URL base.
func NotificationURL(base string, r Resource, id string) string {
	return strings.TrimRight(base, "/") + PathPrefix + string(r) + "/" + id
}

// insertDelivery writes a pending delivery and its job, unless this change
// was already recorded for this URL.
func insertDelivery(ctx context.Context, tx *sql.Tx, now time.Time, no Notification, key, url string, raw []byte) error {
	var exists int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM of_webhook_deliveries WHERE event_key = $1 AND url = $2`, key, url).Scan(&exists)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("ofwebhook: look up delivery: %w", err)
	}
	id := uuid.NewString()
	jobID, err := jobs.Enqueue(ctx, tx, now, jobs.Job{Kind: JobKind, Payload: deliveryJob{DeliveryID: id}, MaxAttempts: webhooks.MaxAttempts})
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO of_webhook_deliveries (id, application_id, event_key, resource, resource_id,
			resource_status, url, body, job_id, status, attempts, next_attempt_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $11, $11)`,
		id, no.ApplicationID, key, string(no.Resource), no.ID, no.Status, url, string(raw), jobID, StatusPending, now.UnixMilli()); err != nil {
		return fmt.Errorf("ofwebhook: store delivery: %w", err)
	}
	return nil
}

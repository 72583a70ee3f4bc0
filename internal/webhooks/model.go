// Package webhooks delivers Ponte's events to partner endpoints, signed per
// Standard Webhooks (https://www.standardwebhooks.com): partner applications
// subscribe URLs, domain services emit events inside their own transactions,
// and a durable job (internal/jobs) delivers each event to each matching
// subscription at least once, retrying with backoff for about three days.
//
// Three parts:
//   - Emitter.Emit records an event and one delivery (and its job) per
//     matching subscription, in the caller's transaction.
//   - Deliverer is the job handler: it POSTs the stored body with the
//     webhook-id, webhook-timestamp and webhook-signature headers, logs every
//     attempt, and decides between done, retry, give up and disable (410).
//   - Service and Handler are the partner API: subscriptions (secrets shown
//     once, sealed at rest with internal/vault, rotation with a 24 h overlap)
//     and the delivery log with manual retry.
//
// Outside sandbox mode, subscription URLs must be https and must not reach
// loopback, private, link-local (cloud metadata), CGNAT, multicast or other
// special-purpose addresses: checked when subscribing, and again on the
// address actually dialed at each delivery, so DNS rebinding cannot bypass it.
//
// Not yet built: retention of the event and delivery log (rows are kept until
// deleted by hand), re-enabling a subscription that was disabled (create a new
// one), and idempotency keys on subscription creation (the stored response
// would hold the secret in clear).
package webhooks

import (
	"errors"
	"github.com/ponte-ofb/ponte/internal/validation"
	"regexp"
	"time"

	"github.com/ponte-ofb/ponte/internal/httpx"
)

// Scopes of the webhook routes.
const (
	ScopeRead  = "webhooks.read"
	ScopeWrite = "webhooks.write"
)

// JobKind is the jobs kind of a webhook delivery.
const JobKind = "webhooks.deliver"

// Delivery statuses.
const (
	StatusPending   = "pending"   // waiting for its first attempt, or re-queued by hand
	StatusFailed    = "failed"    // the last attempt failed; the next is at nextAttemptAt
	StatusDelivered = "delivered" // a 2xx was received
	StatusExhausted = "exhausted" // every attempt failed; retry it by hand
	StatusCancelled = "cancelled" // not delivered: the subscription was disabled or deleted
)

// Subscription statuses as the API shows them.
const (
	SubscriptionEnabled  = "ENABLED"
	SubscriptionDisabled = "DISABLED"
)

// Limits.
const (
	maxURLLength         = 2048
	maxEventsPerFilter   = 50
	maxBodyBytes         = 64 << 10 // Standard Webhooks advises < 20 kB; thin payloads are far smaller
	secretBytes          = 32
	secretPrefix         = "whsec_"
	previousSecretWindow = 24 * time.Hour
	defaultPageLimit     = 50
	maxPageLimit         = 200
)

// RotationOverlap is how long a rotated-out secret still signs deliveries.
const RotationOverlap = previousSecretWindow

// eventNamePattern: event names and contexts are identifiers such as
// CARD_WAS_ADDED_TO_WALLET or Card.
var eventNamePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.]{0,99}$`)

// Errors of the service.
var (
	ErrNotFound     = errors.New("webhooks: not found")
	ErrNotRetryable = errors.New("webhooks: delivery cannot be retried")
	ErrCardData     = errors.New("webhooks: event data looks like it holds a card number; events carry ids and statuses only")
)

// FieldError names one invalid field and what is wrong with it.
type FieldError = validation.FieldError

// ValidationError lists every invalid field or query parameter at once; the
// handler maps it to the Bankly 400 that names each field.
type ValidationError = validation.Error

// Subscription is a partner's webhook endpoint.
type Subscription struct {
	ID                      string
	ApplicationID           string
	URL                     string
	Events                  []string // empty: every event
	Disabled                bool
	DisabledReason          string
	PreviousSecretExpiresAt time.Time // zero when no rotation overlap is running
	CreatedAt               time.Time
	UpdatedAt               time.Time
}

// Matches reports whether the subscription wants events named name.
func (s *Subscription) Matches(name string) bool {
	if len(s.Events) == 0 {
		return true
	}
	for _, e := range s.Events {
		if e == name {
			return true
		}
	}
	return false
}

// SubscriptionJSON is a subscription as the API shows it. Secret is set only
// in the responses of create and rotate-secret.
type SubscriptionJSON struct {
	ID                      string            `json:"id"`
	URL                     string            `json:"url"`
	Events                  []string          `json:"events"`
	Status                  string            `json:"status"`
	DisabledReason          string            `json:"disabledReason,omitempty"`
	PreviousSecretExpiresAt *httpx.BanklyTime `json:"previousSecretExpiresAt,omitempty"`
	CreatedAt               httpx.BanklyTime  `json:"createdAt"`
	UpdatedAt               httpx.BanklyTime  `json:"updatedAt"`
	Secret                  string            `json:"secret,omitempty"`
}

// JSON returns the subscription as the API shows it, without a secret.
func (s *Subscription) JSON(now time.Time) SubscriptionJSON {
	out := SubscriptionJSON{
		ID: s.ID, URL: s.URL, Events: s.Events, Status: SubscriptionEnabled, DisabledReason: s.DisabledReason,
		CreatedAt: httpx.BanklyTime(s.CreatedAt), UpdatedAt: httpx.BanklyTime(s.UpdatedAt),
	}
	if out.Events == nil {
		out.Events = []string{}
	}
	if s.Disabled {
		out.Status = SubscriptionDisabled
	}
	if s.PreviousSecretExpiresAt.After(now) {
		t := httpx.BanklyTime(s.PreviousSecretExpiresAt)
		out.PreviousSecretExpiresAt = &t
	}
	return out
}

// CreateSubscription is the body of POST /webhooks/v1/subscriptions.
type CreateSubscription struct {
	URL    string   `json:"url" required:"true"`
	Events []string `json:"events"`
}

// Delivery is one event on its way to one subscription, with its attempts.
type Delivery struct {
	ID             string
	ApplicationID  string
	SubscriptionID string
	EventID        string
	EventName      string
	JobID          string
	Status         string
	Attempts       int
	LastStatusCode int // 0: none
	LastError      string
	NextAttemptAt  time.Time
	DeliveredAt    time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Log            []Attempt
}

// Attempt is one POST of a delivery.
type Attempt struct {
	Attempt     int
	StatusCode  int // 0: no HTTP response (refused, connection error, timeout)
	Error       string
	Duration    time.Duration
	AttemptedAt time.Time
}

// DeliveryJSON is a delivery as the API shows it.
type DeliveryJSON struct {
	ID             string            `json:"id"`
	SubscriptionID string            `json:"subscriptionId"`
	EventID        string            `json:"eventId"`
	EventName      string            `json:"eventName"`
	Status         string            `json:"status"`
	AttemptCount   int               `json:"attemptCount"`
	LastStatusCode *int              `json:"lastStatusCode,omitempty"`
	LastError      string            `json:"lastError,omitempty"`
	NextAttemptAt  *httpx.BanklyTime `json:"nextAttemptAt,omitempty"`
	DeliveredAt    *httpx.BanklyTime `json:"deliveredAt,omitempty"`
	CreatedAt      httpx.BanklyTime  `json:"createdAt"`
	UpdatedAt      httpx.BanklyTime  `json:"updatedAt"`
	Attempts       []AttemptJSON     `json:"attempts"`
}

// AttemptJSON is one attempt as the API shows it.
type AttemptJSON struct {
	Attempt     int              `json:"attempt"`
	StatusCode  *int             `json:"statusCode,omitempty"`
	Error       string           `json:"error,omitempty"`
	DurationMS  int64            `json:"durationMs"`
	AttemptedAt httpx.BanklyTime `json:"attemptedAt"`
}

// JSON returns the delivery as the API shows it.
func (d *Delivery) JSON() DeliveryJSON {
	out := DeliveryJSON{
		ID: d.ID, SubscriptionID: d.SubscriptionID, EventID: d.EventID, EventName: d.EventName, Status: d.Status,
		AttemptCount: d.Attempts, LastError: d.LastError,
		CreatedAt: httpx.BanklyTime(d.CreatedAt), UpdatedAt: httpx.BanklyTime(d.UpdatedAt), Attempts: []AttemptJSON{},
	}
	if d.LastStatusCode != 0 {
		c := d.LastStatusCode
		out.LastStatusCode = &c
	}
	if !d.NextAttemptAt.IsZero() && (d.Status == StatusPending || d.Status == StatusFailed) {
		t := httpx.BanklyTime(d.NextAttemptAt)
		out.NextAttemptAt = &t
	}
	if !d.DeliveredAt.IsZero() {
		t := httpx.BanklyTime(d.DeliveredAt)
		out.DeliveredAt = &t
	}
	for _, a := range d.Log {
		aj := AttemptJSON{Attempt: a.Attempt, Error: a.Error, DurationMS: a.Duration.Milliseconds(), AttemptedAt: httpx.BanklyTime(a.AttemptedAt)}
		if a.StatusCode != 0 {
			c := a.StatusCode
			aj.StatusCode = &c
		}
		out.Attempts = append(out.Attempts, aj)
	}
	return out
}

// DeliveryFilter narrows the delivery log.
type DeliveryFilter struct {
	SubscriptionID string
	EventID        string
	Status         string
	Limit          int    // 1..200; 0 means 50
	Cursor         string // from the previous page's NextCursor
}

// DeliveryPage is one page of the delivery log, newest first.
type DeliveryPage struct {
	Deliveries []*Delivery
	NextCursor string // "" on the last page
}

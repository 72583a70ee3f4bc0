package webhooks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/vault"
)

// Options configure the Service and the Deliverer.
type Options struct {
	DB     *store.DB
	Vault  *vault.Vault // seals subscription secrets
	Clock  clock.Clock  // nil: system clock
	Logger *slog.Logger // nil: discarded
	// Sandbox allows http URLs and loopback, private and CGNAT destinations.
	Sandbox bool
	// Resolver resolves subscription hosts, when subscribing and when
	// delivering (nil: net.DefaultResolver).
	Resolver Resolver
	// Jitter returns the factor applied to each retry delay (nil: uniform in
	// [0.9, 1.1], i.e. ±10 %).
	Jitter func() float64
	// Timeout bounds one delivery attempt (0: 15 s).
	Timeout time.Duration
	// Metrics, if set, counts delivery attempts by outcome.
	Metrics *Metrics
}

// Metrics counts webhook delivery attempts.
type Metrics struct {
	Attempts *prometheus.CounterVec
}

// NewMetrics registers the webhook metrics in reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ponte_webhook_delivery_attempts_total",
		Help: "Webhook delivery attempts by outcome: delivered, failed (will retry), exhausted, cancelled (410 Gone).",
	}, []string{"outcome"})}
	reg.MustRegister(m.Attempts)
	return m
}

func (o *Options) defaults() {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
}

// Service manages subscriptions and the delivery log for partner applications.
type Service struct {
	db    *store.DB
	vault *vault.Vault
	clock clock.Clock
	guard *netGuard
}

// NewService returns the subscription and delivery-log service.
func NewService(o Options) *Service {
	o.defaults()
	return &Service{db: o.DB, vault: o.Vault, clock: o.Clock, guard: newNetGuard(o.Sandbox, o.Resolver)}
}

func secretContext(subscriptionID string) string { return "webhook-secret:" + subscriptionID }

// Validate reports every invalid field of a create request; outside the
// sandbox it resolves the URL's host to check where it points.
func (s *Service) Validate(ctx context.Context, in *CreateSubscription) []FieldError {
	var fields []FieldError
	if msg := s.guard.checkURL(ctx, in.URL); msg != "" {
		fields = append(fields, FieldError{Field: "url", Message: msg})
	}
	if len(in.Events) > maxEventsPerFilter {
		fields = append(fields, FieldError{Field: "events", Message: fmt.Sprintf("must list at most %d event names", maxEventsPerFilter)})
	} else {
		for _, e := range in.Events {
			if !eventNamePattern.MatchString(e) {
				fields = append(fields, FieldError{Field: "events",
					Message: "must hold event names (1–100 of letters, digits, '_' or '.', starting with a letter)"})
				break
			}
		}
	}
	return fields
}

// Create registers a subscription for the application and returns it with
// its signing secret (whsec_…): the only time the secret can be read.
func (s *Service) Create(ctx context.Context, applicationID string, in CreateSubscription) (*Subscription, string, error) {
	if fields := s.Validate(ctx, &in); len(fields) > 0 {
		return nil, "", &ValidationError{What: "request body", Fields: fields}
	}
	events := slices.Clone(in.Events)
	slices.Sort(events)
	events = slices.Compact(events)
	if events == nil {
		events = []string{}
	}
	key, err := newSecret()
	if err != nil {
		return nil, "", err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	sub := &Subscription{ID: uuid.NewString(), ApplicationID: applicationID, URL: in.URL, Events: events, CreatedAt: now, UpdatedAt: now}
	sealed, err := s.vault.Seal(key, secretContext(sub.ID))
	if err != nil {
		return nil, "", err
	}
	if err := s.db.Write(ctx, func(tx *sql.Tx) error { return insertSubscription(ctx, tx, sub, sealed) }); err != nil {
		return nil, "", err
	}
	return sub, FormatSecret(key), nil
}

// List returns the application's subscriptions (never their secrets).
func (s *Service) List(ctx context.Context, applicationID string) ([]*Subscription, error) {
	return listSubscriptions(ctx, s.db.Read(), applicationID)
}

// Get returns one of the application's subscriptions; another application's is ErrNotFound.
func (s *Service) Get(ctx context.Context, applicationID, id string) (*Subscription, error) {
	if uuid.Validate(id) != nil {
		return nil, ErrNotFound
	}
	return getSubscription(ctx, s.db.Read(), applicationID, id)
}

// Delete removes a subscription: it receives nothing more, its secrets are
// erased, and its deliveries not yet made are cancelled. Its delivery log stays.
func (s *Service) Delete(ctx context.Context, applicationID, id string) error {
	if uuid.Validate(id) != nil {
		return ErrNotFound
	}
	now := s.clock.Now().UnixMilli()
	return s.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_subscriptions SET deleted_at = $1, updated_at = $1, secret_sealed = '',
				previous_secret_sealed = NULL, previous_secret_expires_at = NULL
			WHERE id = $2 AND application_id = $3 AND deleted_at IS NULL`, now, id, applicationID)
		if err != nil {
			return fmt.Errorf("webhooks: delete subscription: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		return cancelOpenDeliveries(ctx, tx, id, now, "subscription deleted")
	})
}

// cancelOpenDeliveries cancels the subscription's deliveries still to be made.
func cancelOpenDeliveries(ctx context.Context, tx *sql.Tx, subscriptionID string, nowMS int64, reason string) error {
	_, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = $1, last_error = $2, next_attempt_at = NULL, updated_at = $3
		WHERE subscription_id = $4 AND status IN ($5, $6)`,
		StatusCancelled, reason, nowMS, subscriptionID, StatusPending, StatusFailed)
	if err != nil {
		return fmt.Errorf("webhooks: cancel deliveries: %w", err)
	}
	return nil
}

// RotateSecret gives the subscription a new secret and returns it (shown this
// once). The replaced secret keeps signing deliveries, alongside the new one,
// for RotationOverlap; a secret replaced earlier stops at once.
func (s *Service) RotateSecret(ctx context.Context, applicationID, id string) (*Subscription, string, error) {
	if uuid.Validate(id) != nil {
		return nil, "", ErrNotFound
	}
	key, err := newSecret()
	if err != nil {
		return nil, "", err
	}
	sealed, err := s.vault.Seal(key, secretContext(id))
	if err != nil {
		return nil, "", err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	var sub *Subscription
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_subscriptions SET previous_secret_sealed = secret_sealed,
				previous_secret_expires_at = $1, secret_sealed = $2, updated_at = $3
			WHERE id = $4 AND application_id = $5 AND deleted_at IS NULL`,
			now.Add(RotationOverlap).UnixMilli(), sealed, now.UnixMilli(), id, applicationID)
		if err != nil {
			return fmt.Errorf("webhooks: rotate secret: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		sub, err = getSubscription(ctx, tx, applicationID, id)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return sub, FormatSecret(key), nil
}

// ValidateFilter reports every invalid parameter of a delivery-log query.
func ValidateFilter(f *DeliveryFilter) []FieldError {
	var fields []FieldError
	switch f.Status {
	case "", StatusPending, StatusFailed, StatusDelivered, StatusExhausted, StatusCancelled:
	default:
		fields = append(fields, FieldError{Field: "status", Message: "must be one of pending, failed, delivered, exhausted, cancelled"})
	}
	if f.Limit < 0 || f.Limit > maxPageLimit {
		fields = append(fields, FieldError{Field: "limit", Message: fmt.Sprintf("must be an integer from 1 to %d", maxPageLimit)})
	}
	if f.Cursor != "" {
		if _, _, err := decodeCursor(f.Cursor); err != nil {
			fields = append(fields, FieldError{Field: "cursor", Message: "is not a cursor this API returned"})
		}
	}
	return fields
}

// Deliveries returns one page of the application's delivery log, newest first.
func (s *Service) Deliveries(ctx context.Context, applicationID string, f DeliveryFilter) (*DeliveryPage, error) {
	if fields := ValidateFilter(&f); len(fields) > 0 {
		return nil, &ValidationError{What: "query parameters", Fields: fields}
	}
	return listDeliveries(ctx, s.db.Read(), s.db.Engine(), applicationID, f)
}

// Delivery returns one of the application's deliveries with its attempts.
func (s *Service) Delivery(ctx context.Context, applicationID, id string) (*Delivery, error) {
	if uuid.Validate(id) != nil {
		return nil, ErrNotFound
	}
	return getDelivery(ctx, s.db.Read(), s.db.Engine(), applicationID, id)
}

// RetryError explains why a delivery cannot be retried; it matches ErrNotRetryable.
type RetryError struct{ Reason string }

func (e *RetryError) Error() string { return "webhooks: delivery cannot be retried: " + e.Reason }

// Is makes errors.Is(err, ErrNotRetryable) true.
func (e *RetryError) Is(target error) bool { return target == ErrNotRetryable }

// RetryDelivery re-queues a failed or exhausted delivery to be attempted now,
// with the same webhook-id and body. A failed delivery's scheduled retry is
// brought forward (its schedule continues after it); an exhausted delivery
// gets one more attempt.
func (s *Service) RetryDelivery(ctx context.Context, applicationID, id string) (*Delivery, error) {
	if uuid.Validate(id) != nil {
		return nil, ErrNotFound
	}
	now := s.clock.Now()
	var d *Delivery
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		var err error
		if d, err = getDelivery(ctx, tx, s.db.Engine(), applicationID, id); err != nil {
			return err
		}
		if d.Status != StatusFailed && d.Status != StatusExhausted {
			return &RetryError{Reason: "only failed or exhausted deliveries can be retried; this one is " + d.Status}
		}
		var (
			disabled int
			deleted  sql.NullInt64
		)
		if err := tx.QueryRowContext(ctx, `SELECT disabled, deleted_at FROM webhook_subscriptions WHERE id = $1`, d.SubscriptionID).
			Scan(&disabled, &deleted); err != nil {
			return fmt.Errorf("webhooks: read subscription: %w", err)
		}
		if disabled != 0 || deleted.Valid {
			return &RetryError{Reason: "its subscription is disabled or deleted"}
		}
		jobID := d.JobID
		if d.Status == StatusFailed {
			err = jobs.Retry(ctx, tx, now, d.JobID)
		}
		if d.Status == StatusExhausted || errors.Is(err, jobs.ErrNotFound) {
			jobID, err = jobs.Enqueue(ctx, tx, now, jobs.Job{Kind: JobKind, Payload: deliveryJob{DeliveryID: d.ID}, MaxAttempts: 1})
		}
		if errors.Is(err, jobs.ErrRunning) {
			return &RetryError{Reason: "an attempt is in progress"}
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = $1, job_id = $2, next_attempt_at = $3, updated_at = $3
			WHERE id = $4`, StatusPending, jobID, now.UnixMilli(), d.ID); err != nil {
			return fmt.Errorf("webhooks: re-queue delivery: %w", err)
		}
		d, err = getDelivery(ctx, tx, s.db.Engine(), applicationID, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

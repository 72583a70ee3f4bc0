package ofwebhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

// HeaderInteractionID is the header naming one notification attempt.
const HeaderInteractionID = "x-webhook-interaction-id"

// Options configure a Deliverer.
type Options struct {
	DB     *store.DB
	Clock  clock.Clock  // nil: system clock
	Logger *slog.Logger // nil: discarded
	// Certificate is Ponte's transport certificate, presented to the
	// initiator (the convention's mutual TLS); nil: none.
	Certificate *tls.Certificate
	// RootCAs verify the initiators' servers; nil: the system's.
	RootCAs *x509.CertPool
	// Sandbox allows http URLs and loopback, private and CGNAT
	// destinations, as internal/webhooks does.
	Sandbox bool
	// Resolver resolves initiator hosts (nil: net.DefaultResolver).
	Resolver webhooks.Resolver
	// Jitter scales each retry delay (nil: uniform in [0.9, 1.1]).
	Jitter func() float64
	// Timeout bounds one attempt (0: webhooks.DefaultTimeout).
	Timeout time.Duration
}

// Deliverer posts recorded notifications: the handler of JobKind jobs.
type Deliverer struct {
	db      *store.DB
	clock   clock.Clock
	logger  *slog.Logger
	sandbox bool
	jitter  func() float64
	timeout time.Duration
	client  *http.Client
}

// NewDeliverer returns a Deliverer whose client never follows redirects and
// dials only what the webhook address policy allows.
func NewDeliverer(o Options) *Deliverer {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Jitter == nil {
		o.Jitter = func() float64 { return 0.9 + 0.2*rand.Float64() }
	}
	if o.Timeout <= 0 {
		o.Timeout = webhooks.DefaultTimeout
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
	if o.Certificate != nil {
		tc.Certificates = []tls.Certificate{*o.Certificate}
	}
	return &Deliverer{
		db: o.DB, clock: o.Clock, logger: o.Logger, sandbox: o.Sandbox, jitter: o.Jitter, timeout: o.Timeout,
		client: &http.Client{
			Transport:     webhooks.GuardedTransport(o.Sandbox, o.Resolver, tc, o.Timeout),
			Timeout:       o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Register makes c run deliveries, on internal/webhooks' retry schedule.
func (d *Deliverer) Register(c *jobs.Client) {
	c.Register(JobKind, d.Handle, jobs.Schedule(webhooks.RetrySchedule...))
}

// Delivery is one notification on its way to one URL.
type Delivery struct {
	ID             string
	ApplicationID  string
	Resource       Resource
	ResourceID     string
	ResourceStatus string
	URL            string
	Body           []byte
	Status         string
	Attempts       int
	LastStatusCode int // 0: none
	LastError      string
	NextAttemptAt  time.Time
	DeliveredAt    time.Time
	CreatedAt      time.Time
	Log            []Attempt
}

// Attempt is one POST of a delivery.
type Attempt struct {
	Attempt       int
	InteractionID string
	StatusCode    int // 0: no HTTP response (refused, connection error, timeout)
	Error         string
	Duration      time.Duration
	AttemptedAt   time.Time
}

// Handle makes one delivery attempt. A 202 delivers it (any other 2xx too,
// logged: the initiator has it); anything else is retried on the schedule
// until the attempts run out.
func (d *Deliverer) Handle(ctx context.Context, j *jobs.Job) error {
	var p deliveryJob
	if err := j.Decode(&p); err != nil || p.DeliveryID == "" {
		return jobs.Cancel(fmt.Errorf("ofwebhook: bad delivery job payload: %v", err))
	}
	del, err := getDelivery(ctx, d.db.Read(), p.DeliveryID, false)
	if errors.Is(err, sql.ErrNoRows) {
		return jobs.Cancel(fmt.Errorf("ofwebhook: delivery %s not found", p.DeliveryID))
	}
	if err != nil {
		return err
	}
	if del.Status == StatusDelivered {
		return nil // a stale or duplicate job
	}
	log := d.logger.With("delivery_id", del.ID, "application_id", del.ApplicationID, "resource", string(del.Resource),
		"resource_id", del.ResourceID, "resource_status", del.ResourceStatus, "attempt", j.Attempt)
	now := d.clock.Now()
	interaction := uuid.NewString()
	code, failText, elapsed := d.post(ctx, del, interaction)
	success := code >= 200 && code < 300
	if failText == "" && !success {
		failText = "HTTP " + strconv.Itoa(code)
		if code >= 300 && code < 400 {
			failText += " (redirects are not followed)"
		}
	}
	var (
		status  string
		next    time.Time
		outcome error
	)
	switch {
	case success:
		status = StatusDelivered
	case j.Final():
		status = StatusExhausted
		outcome = fmt.Errorf("ofwebhook: delivery exhausted after %d attempts: %s", j.Attempt, failText)
	default:
		status = StatusFailed
		next = now.Add(webhooks.RetryDelay(j.Attempt, d.jitter()))
		outcome = jobs.RetryAt(errors.New(failText), next)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := d.db.Write(wctx, func(tx *sql.Tx) error {
		return recordAttempt(wctx, tx, del.ID, now, interaction, code, failText, elapsed, status, next)
	}); err != nil {
		return fmt.Errorf("ofwebhook: record attempt: %w", err)
	}
	switch {
	case success && code != http.StatusAccepted:
		log.Warn("Open Finance webhook delivered, but the initiator answered other than 202", "status_code", code, "interaction_id", interaction)
	case success:
		log.Info("Open Finance webhook delivered", "status_code", code, "interaction_id", interaction, "duration_ms", elapsed.Milliseconds())
	default:
		log.Warn("Open Finance webhook attempt failed", "status", status, "error", failText, "interaction_id", interaction, "next_attempt_at", next)
	}
	return outcome
}

// post sends the stored body once: its status code (0: no response), or
// why it could not, never the URL (it names ids) or a secret.
func (d *Deliverer) post(ctx context.Context, del *Delivery, interaction string) (int, string, time.Duration) {
	u, err := url.Parse(del.URL)
	if err != nil {
		return 0, "invalid webhook URL", 0
	}
	if u.Scheme != "https" && !d.sandbox {
		return 0, "refused: http URLs are allowed only in sandbox mode", 0
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, del.URL, bytes.NewReader(del.Body))
	if err != nil {
		return 0, "invalid webhook URL", 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Ponte-Webhooks/1.0")
	req.Header.Set(HeaderInteractionID, interaction)
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, webhooks.DescribeError(err, d.timeout), time.Since(start)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, "", time.Since(start)
}

func recordAttempt(ctx context.Context, tx *sql.Tx, id string, now time.Time, interaction string, code int, failText string,
	elapsed time.Duration, status string, next time.Time) error {
	nowMS := now.UnixMilli()
	var attempt int
	if err := tx.QueryRowContext(ctx, `UPDATE of_webhook_deliveries SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts`,
		id).Scan(&attempt); err != nil {
		return err
	}
	var codeArg, nextArg, deliveredArg any
	if code != 0 {
		codeArg = code
	}
	if !next.IsZero() {
		nextArg = next.UnixMilli()
	}
	errText := failText
	if status == StatusDelivered {
		errText, deliveredArg = "", nowMS
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO of_webhook_attempts (delivery_id, attempt, interaction_id, status_code, error,
			duration_ms, attempted_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		id, attempt, interaction, codeArg, errText, elapsed.Milliseconds(), nowMS); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE of_webhook_deliveries SET status = $1, last_status_code = $2, last_error = $3,
			next_attempt_at = $4, delivered_at = $5, updated_at = $6
		WHERE id = $7 AND status <> $8`,
		status, codeArg, errText, nextArg, deliveredArg, nowMS, id, StatusDelivered)
	return err
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const deliveryColumns = `id, application_id, resource, resource_id, resource_status, url, body, status, attempts,
	last_status_code, last_error, next_attempt_at, delivered_at, created_at`

type scanner interface{ Scan(dest ...any) error }

func scanDelivery(row scanner) (*Delivery, error) {
	var (
		d               Delivery
		resource, body  string
		code            sql.NullInt64
		next, delivered sql.NullInt64
		created         int64
	)
	if err := row.Scan(&d.ID, &d.ApplicationID, &resource, &d.ResourceID, &d.ResourceStatus, &d.URL, &body, &d.Status,
		&d.Attempts, &code, &d.LastError, &next, &delivered, &created); err != nil {
		return nil, err
	}
	d.Resource, d.Body, d.LastStatusCode = Resource(resource), []byte(body), int(code.Int64)
	if next.Valid {
		d.NextAttemptAt = time.UnixMilli(next.Int64).UTC()
	}
	if delivered.Valid {
		d.DeliveredAt = time.UnixMilli(delivered.Int64).UTC()
	}
	d.CreatedAt = time.UnixMilli(created).UTC()
	return &d, nil
}

func getDelivery(ctx context.Context, q querier, id string, withLog bool) (*Delivery, error) {
	d, err := scanDelivery(q.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM of_webhook_deliveries WHERE id = $1`, id))
	if err != nil || !withLog {
		return d, err
	}
	return d, attachLog(ctx, q, d)
}

func attachLog(ctx context.Context, q querier, d *Delivery) error {
	rows, err := q.QueryContext(ctx, `SELECT attempt, interaction_id, status_code, error, duration_ms, attempted_at
		FROM of_webhook_attempts WHERE delivery_id = $1 ORDER BY attempt`, d.ID)
	if err != nil {
		return fmt.Errorf("ofwebhook: read attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			a        Attempt
			code     sql.NullInt64
			ms, when int64
		)
		if err := rows.Scan(&a.Attempt, &a.InteractionID, &code, &a.Error, &ms, &when); err != nil {
			return err
		}
		a.StatusCode, a.Duration, a.AttemptedAt = int(code.Int64), time.Duration(ms)*time.Millisecond, time.UnixMilli(when).UTC()
		d.Log = append(d.Log, a)
	}
	return rows.Err()
}

// Deliveries returns the deliveries about resource id (any resource kind),
// oldest first, each with its attempt log: the delivery log an operator
// reads when an initiator says it was not told.
func Deliveries(ctx context.Context, db *store.DB, resourceID string) ([]*Delivery, error) {
	rows, err := db.Read().QueryContext(ctx, `SELECT `+deliveryColumns+` FROM of_webhook_deliveries WHERE resource_id = $1
		ORDER BY created_at, id`, resourceID)
	if err != nil {
		return nil, fmt.Errorf("ofwebhook: list deliveries: %w", err)
	}
	var out []*Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, d := range out {
		if err := attachLog(ctx, db.Read(), d); err != nil {
			return nil, err
		}
	}
	return out, nil
}

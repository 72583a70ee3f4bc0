package webhooks

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/vault"
)

// DefaultTimeout bounds one delivery attempt.
const DefaultTimeout = 15 * time.Second

// RetrySchedule is the wait after each failed attempt (before jitter): with
// the first, immediate attempt that is MaxAttempts attempts over about three
// days (75 h 35 min), as Standard Webhooks suggests.
var RetrySchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

// MaxAttempts is how many times a delivery is attempted before it is exhausted.
var MaxAttempts = len(RetrySchedule) + 1

// maxRetryAfter bounds how far a receiver's Retry-After may push the next
// attempt; a longer one is ignored in favour of the schedule.
const maxRetryAfter = 24 * time.Hour

const maxErrorText = 500

// Deliverer makes delivery attempts: it is the handler of JobKind jobs.
type Deliverer struct {
	db      *store.DB
	vault   *vault.Vault
	clock   clock.Clock
	logger  *slog.Logger
	sandbox bool
	jitter  func() float64
	timeout time.Duration
	client  *http.Client
	metrics *Metrics
}

// NewDeliverer returns a Deliverer. Its HTTP client never uses a proxy, never
// follows redirects, and connects only to addresses the policy allows,
// checked on the socket being dialed.
func NewDeliverer(o Options) *Deliverer {
	o.defaults()
	if o.Jitter == nil {
		o.Jitter = func() float64 { return 0.9 + 0.2*rand.Float64() }
	}
	transport := GuardedTransport(o.Sandbox, o.Resolver, &tls.Config{MinVersion: tls.VersionTLS12}, o.Timeout)
	return &Deliverer{
		db: o.DB, vault: o.Vault, clock: o.Clock, logger: o.Logger, sandbox: o.Sandbox, jitter: o.Jitter, timeout: o.Timeout, metrics: o.Metrics,
		client: &http.Client{
			Transport:     transport,
			Timeout:       o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// GuardedTransport is the HTTP transport of webhook deliveries, shared with
// the Open Finance webhooks (internal/ofwebhook): no proxy (it would dial
// for us, out of the guard's reach) and only destinations the address policy
// allows (sandbox: loopback, private and CGNAT too), checked on the socket
// being dialed. tlsConfig may carry a client certificate (mutual TLS); r nil
// is net.DefaultResolver. Callers must not follow redirects.
func GuardedTransport(sandbox bool, r Resolver, tlsConfig *tls.Config, responseTimeout time.Duration) *http.Transport {
	guard := newNetGuard(sandbox, r)
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           guard.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: responseTimeout,
		TLSClientConfig:       tlsConfig,
	}
}

// RetryDelay is the wait after failed attempt number attempt (1-based) of
// RetrySchedule, scaled by jitter (a factor near 1).
func RetryDelay(attempt int, jitter float64) time.Duration {
	i := min(max(attempt, 1), len(RetrySchedule)) - 1
	return time.Duration(float64(RetrySchedule[i]) * jitter)
}

// DescribeError renders a transport error of a delivery attempt for a log
// (see describeError).
func DescribeError(err error, timeout time.Duration) string { return describeError(err, timeout) }

// Register makes c run deliveries.
func (d *Deliverer) Register(c *jobs.Client) {
	c.Register(JobKind, d.Handle, jobs.Schedule(RetrySchedule...))
}

// attemptResult is what one POST produced.
type attemptResult struct {
	code       int // 0: no response
	errText    string
	retryAfter time.Duration
	duration   time.Duration
}

// Handle makes one delivery attempt (the jobs handler of JobKind).
func (d *Deliverer) Handle(ctx context.Context, j *jobs.Job) error {
	var p deliveryJob
	if err := j.Decode(&p); err != nil || p.DeliveryID == "" {
		return jobs.Cancel(fmt.Errorf("webhooks: bad delivery job payload: %v", err))
	}
	st, err := loadSendState(ctx, d.db.Read(), p.DeliveryID)
	if errors.Is(err, ErrNotFound) {
		return jobs.Cancel(err)
	}
	if err != nil {
		return err
	}
	log := d.logger.With("delivery_id", st.DeliveryID, "subscription_id", st.SubscriptionID, "event_id", st.EventID, "attempt", j.Attempt)
	switch {
	case st.Status == StatusDelivered || st.Status == StatusCancelled:
		return nil // settled already (a stale or duplicate job)
	case st.Deleted || st.Disabled:
		err := d.db.Write(ctx, func(tx *sql.Tx) error {
			return cancelOpenDeliveries(ctx, tx, st.SubscriptionID, d.clock.Now().UnixMilli(), "subscription disabled or deleted")
		})
		if err != nil {
			return err
		}
		return jobs.Cancel(errors.New("subscription disabled or deleted"))
	}
	now := d.clock.Now()
	keys, err := d.keys(st, now)
	if err != nil {
		return err
	}

	res := d.post(ctx, st, keys, now)
	var (
		status   string
		next     time.Time
		outcome  error
		gone     = res.code == http.StatusGone
		success  = res.code >= 200 && res.code < 300
		failText = res.errText
	)
	if failText == "" && !success {
		failText = "HTTP " + strconv.Itoa(res.code)
		if res.code >= 300 && res.code < 400 {
			failText += " (redirects are not followed)"
		}
	}
	switch {
	case success:
		status = StatusDelivered
	case gone:
		status, failText = StatusCancelled, "HTTP 410 Gone: subscription disabled"
		outcome = jobs.Cancel(errors.New(failText))
	case j.Final():
		status = StatusExhausted
		outcome = fmt.Errorf("webhooks: delivery exhausted after %d attempts: %s", j.Attempt, failText)
	default:
		status = StatusFailed
		next = now.Add(d.delay(j.Attempt, res.retryAfter))
		outcome = jobs.RetryAt(errors.New(failText), next)
	}
	// The outcome is recorded even if the job's context ended meanwhile.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err = d.db.Write(wctx, func(tx *sql.Tx) error {
		return recordAttempt(wctx, tx, st, now, res, status, failText, next, gone)
	})
	if err != nil {
		// Unrecorded: let the job retry on its schedule (the receiver dedupes by webhook-id).
		return fmt.Errorf("webhooks: record attempt: %w", err)
	}
	if d.metrics != nil {
		d.metrics.Attempts.WithLabelValues(status).Inc()
	}
	switch {
	case success:
		log.Info("webhook delivered", "status_code", res.code, "duration_ms", res.duration.Milliseconds())
	case gone:
		log.Warn("webhook endpoint answered 410 Gone; subscription disabled")
	default:
		log.Warn("webhook delivery attempt failed", "status", status, "error", failText, "next_attempt_at", next)
	}
	return outcome
}

// keys opens the signing keys: the current one, then a rotated-out one still
// inside its overlap window.
func (d *Deliverer) keys(st *sendState, now time.Time) ([][]byte, error) {
	cur, err := d.vault.Open(st.Secret, secretContext(st.SubscriptionID))
	if err != nil {
		return nil, fmt.Errorf("webhooks: open secret of subscription %s: %w", st.SubscriptionID, err)
	}
	keys := [][]byte{cur}
	if st.PreviousSecret != "" && st.PreviousExpires.After(now) {
		prev, err := d.vault.Open(st.PreviousSecret, secretContext(st.SubscriptionID))
		if err != nil {
			return nil, fmt.Errorf("webhooks: open previous secret of subscription %s: %w", st.SubscriptionID, err)
		}
		keys = append(keys, prev)
	}
	return keys, nil
}

// delay is the wait after failed attempt number attempt: the schedule with
// jitter, or the receiver's Retry-After when that is longer and at most 24 h.
func (d *Deliverer) delay(attempt int, retryAfter time.Duration) time.Duration {
	wait := RetryDelay(attempt, d.jitter())
	if retryAfter > wait && retryAfter <= maxRetryAfter {
		wait = retryAfter
	}
	return wait
}

// post sends the stored body once.
func (d *Deliverer) post(ctx context.Context, st *sendState, keys [][]byte, now time.Time) attemptResult {
	u, err := url.Parse(st.URL)
	if err != nil {
		return attemptResult{errText: "invalid subscription URL"}
	}
	if u.Scheme != "https" && !d.sandbox {
		return attemptResult{errText: "refused: http URLs are allowed only in sandbox mode"}
	}
	ts := now.Unix()
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.URL, bytes.NewReader(st.Body))
	if err != nil {
		return attemptResult{errText: "invalid subscription URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Ponte-Webhooks/1.0")
	req.Header[HeaderID] = []string{st.EventID}
	req.Header[HeaderTimestamp] = []string{strconv.FormatInt(ts, 10)}
	req.Header[HeaderSignature] = []string{signatureHeader(keys, st.EventID, ts, st.Body)}
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		return attemptResult{errText: describeError(err, d.timeout), duration: time.Since(start)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	res := attemptResult{code: resp.StatusCode, duration: time.Since(start)}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	}
	return res
}

// describeError renders a transport error for the delivery log: never the
// URL (its query may hold a partner's token), never a secret.
func describeError(err error, timeout time.Duration) string {
	var ae *AddressError
	if errors.As(err, &ae) {
		return ae.Error()
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Sprintf("timed out after %s", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	if len(msg) > maxErrorText {
		msg = msg[:maxErrorText] + "…"
	}
	return msg
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// recordAttempt logs the attempt and moves the delivery (and, on 410, the
// subscription) to its new state.
func recordAttempt(ctx context.Context, tx *sql.Tx, st *sendState, now time.Time, res attemptResult, status, failText string, next time.Time, gone bool) error {
	nowMS := now.UnixMilli()
	var attempt int
	if err := tx.QueryRowContext(ctx, `UPDATE webhook_deliveries SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts`,
		st.DeliveryID).Scan(&attempt); err != nil {
		return err
	}
	var code any
	if res.code != 0 {
		code = res.code
	}
	errText := failText
	if status == StatusDelivered {
		errText = ""
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_delivery_attempts (delivery_id, attempt, status_code, error, duration_ms, attempted_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, st.DeliveryID, attempt, code, errText, res.duration.Milliseconds(), nowMS); err != nil {
		return err
	}
	var nextMS, deliveredMS any
	if !next.IsZero() {
		nextMS = next.UnixMilli()
	}
	if status == StatusDelivered {
		deliveredMS = nowMS
		// A 2xx means the partner has it, whatever happened to the subscription meanwhile.
		_, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = $1, last_status_code = $2, last_error = '',
				next_attempt_at = NULL, delivered_at = $3, updated_at = $3
			WHERE id = $4 AND status <> $1`, StatusDelivered, code, deliveredMS, st.DeliveryID)
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = $1, last_status_code = $2, last_error = $3,
			next_attempt_at = $4, updated_at = $5
		WHERE id = $6 AND status NOT IN ($7, $8)`,
		status, code, failText, nextMS, nowMS, st.DeliveryID, StatusDelivered, StatusCancelled); err != nil {
		return err
	}
	if !gone {
		return nil
	}
	reason := "endpoint answered 410 Gone at " + now.UTC().Format(time.RFC3339)
	if _, err := tx.ExecContext(ctx, `UPDATE webhook_subscriptions SET disabled = 1, disabled_reason = $1, updated_at = $2
		WHERE id = $3 AND disabled = 0`, reason, nowMS, st.SubscriptionID); err != nil {
		return err
	}
	return cancelOpenDeliveries(ctx, tx, st.SubscriptionID, nowMS, "subscription disabled: "+reason)
}

package pcm

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/lifecycle"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Defaults of ForwarderOptions.
const (
	DefaultForwardTimeout = 30 * time.Second
	DefaultPollInterval   = 2 * time.Second
	DefaultWatchInterval  = 30 * time.Second
	DefaultRetryBase      = 5 * time.Second
	DefaultRetryMax       = 10 * time.Minute
	DefaultWorkers        = 2
)

const (
	maxReason       = 500
	maxResponseBody = 4 << 20
)

// TokenSource gives the bearer token of the PCM's report API.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
	// Invalidate drops a cached token the PCM refused (401).
	Invalidate()
}

// ForwarderOptions configure a Forwarder. DB, Clock and BaseURL are needed
// to send; the rest have defaults.
type ForwarderOptions struct {
	DB     *store.DB
	Clock  clock.Clock
	Logger *slog.Logger
	// BaseURL is the PCM's base URL (e.g. https://api.pcm.openfinancebrasil.org.br);
	// empty turns sending off: items stay pending (and watched).
	BaseURL string
	// OrgID is the organisationId sent as clientOrgId / serverOrgId.
	OrgID string
	// HTTP sends the reports; nil means a client with Timeout.
	HTTP *http.Client
	// Token, when set, authorises each request (Bearer).
	Token TokenSource
	// Timeout bounds one request (also when HTTP is given).
	Timeout time.Duration
	// Lease is how long a claimed batch is held; default 2·Timeout + 30 s,
	// so a live forwarder always records its outcome before another may
	// claim the batch.
	Lease time.Duration
	// BatchSize is the most items per request, at most MaxBatch.
	BatchSize int
	// Workers send batches concurrently.
	Workers int
	// PollInterval is how often Run looks for due items when idle.
	PollInterval time.Duration
	// WatchInterval is how often Run refreshes the deadline metrics and
	// warns about items at risk.
	WatchInterval time.Duration
	// RetryBase and RetryMax bound the exponential backoff of 429, 5xx,
	// timeouts and network errors: base·2^(attempt-1), at most max, times
	// Jitter.
	RetryBase, RetryMax time.Duration
	// Jitter returns the backoff factor; default uniform in [0.5, 1.5).
	Jitter  func() float64
	Metrics *ForwardMetrics
}

// Forwarder sends the outbox's pending items to the PCM: claim a batch of
// one endpoint under a lease, POST it, record each item's outcome.
type Forwarder struct {
	o      ForwarderOptions
	pg     bool
	runner lifecycle.Runner
}

// NewForwarder returns a Forwarder with o's defaults filled in.
func NewForwarder(o ForwarderOptions) *Forwarder {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultForwardTimeout
	}
	if o.Lease <= 0 {
		o.Lease = 2*o.Timeout + 30*time.Second
	}
	if o.BatchSize <= 0 || o.BatchSize > MaxBatch {
		o.BatchSize = MaxBatch
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.WatchInterval <= 0 {
		o.WatchInterval = DefaultWatchInterval
	}
	if o.RetryBase <= 0 {
		o.RetryBase = DefaultRetryBase
	}
	if o.RetryMax <= 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.Jitter == nil {
		o.Jitter = func() float64 { return 0.5 + mrand.Float64() }
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: o.Timeout, Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: o.Timeout, ForceAttemptHTTP2: true,
		}}
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	return &Forwarder{o: o, pg: o.DB.Engine() == store.Postgres}
}

// Enabled reports whether the Forwarder sends (a PCM URL is configured).
func (f *Forwarder) Enabled() bool { return f.o.BaseURL != "" }

// Start runs the Forwarder in the background until Stop (a
// lifecycle.Worker: ctx gives values, not the lifetime): every PollInterval
// it drains the due items (when sending is on), every WatchInterval it
// refreshes the deadline metrics. Start on a running Forwarder returns
// lifecycle.ErrRunning.
func (f *Forwarder) Start(ctx context.Context) error { return f.runner.Start(ctx, f.run) }

// Stop ends a started Forwarder and waits for it: a batch in flight is
// abandoned (its lease lets another forwarder, or this one after a restart,
// send it again). Safe to call more than once, concurrently, or unstarted.
func (f *Forwarder) Stop(ctx context.Context) error { return f.runner.Stop(ctx) }

func (f *Forwarder) run(ctx context.Context) {
	f.o.Logger.Info("pcm forwarding", "enabled", f.Enabled(), "url", f.o.BaseURL, "workers", f.o.Workers)
	// Kept-alive connections to the PCM hold goroutines of their own: a
	// stopped Forwarder leaves none behind.
	defer f.o.HTTP.CloseIdleConnections()
	poll := time.NewTicker(f.o.PollInterval)
	defer poll.Stop()
	watch := time.NewTicker(f.o.WatchInterval)
	defer watch.Stop()
	f.watchOnce(ctx)
	for {
		if f.Enabled() {
			if _, err := f.Drain(ctx); err != nil && ctx.Err() == nil {
				f.o.Logger.Warn("pcm forwarding round failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-watch.C:
			f.watchOnce(ctx)
		case <-poll.C:
		}
	}
}

func (f *Forwarder) watchOnce(ctx context.Context) {
	if _, err := f.Watch(ctx); err != nil && ctx.Err() == nil {
		f.o.Logger.Warn("pcm outbox watch failed", "err", err)
	}
}

// Watch reads the outbox's state, updates the metrics and logs a warning
// when pending items are within AtRiskWindow of their 08:00 deadline.
func (f *Forwarder) Watch(ctx context.Context) (OutboxStatus, error) {
	now := f.o.Clock.Now()
	st, err := Status(ctx, f.o.DB.Read(), now)
	if err != nil {
		return st, err
	}
	f.o.Metrics.observeStatus(st, now)
	if st.AtRisk > 0 {
		f.o.Logger.Warn("pcm: items not accepted within 2h of their deadline (08:00 America/Sao_Paulo of the next day)",
			"at_risk", st.AtRisk, "pending", st.Pending, "next_deadline", st.NextDeadline.Format(time.RFC3339),
			"oldest_pending", st.OldestPending.Format(time.RFC3339), "forwarding", f.Enabled())
	}
	return st, nil
}

// DrainResult counts what Drain settled.
type DrainResult struct {
	Batches, Accepted, Rejected, Retried int
}

func (r *DrainResult) add(o DrainResult) {
	r.Batches += o.Batches
	r.Accepted += o.Accepted
	r.Rejected += o.Rejected
	r.Retried += o.Retried
}

// Drain sends batches with Workers workers until no item is due (items
// scheduled for a retry wait for their time). It returns what it settled.
func (f *Forwarder) Drain(ctx context.Context) (DrainResult, error) {
	if !f.Enabled() {
		return DrainResult{}, errors.New("pcm: forwarding is off (no PCM URL)")
	}
	var (
		mu    sync.Mutex
		total DrainResult
		errs  []error
		wg    sync.WaitGroup
	)
	for w := range f.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				progressed := false
				for i := range Endpoints {
					ep := Endpoints[(i+w)%len(Endpoints)]
					r, n, err := f.batch(ctx, ep)
					mu.Lock()
					total.add(r)
					if err != nil {
						errs = append(errs, err)
					}
					mu.Unlock()
					if err != nil {
						return
					}
					progressed = progressed || n > 0
				}
				if !progressed {
					return
				}
			}
		}()
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

// claimed is a batch held under a lease.
type claimed struct {
	endpoint string
	lease    string
	until    time.Time
	items    []claimedItem
	// attempt is the highest number of sends among the items, this one
	// included: it sets the backoff.
	attempt int
}

// claimedItem is one claimed row: its event id and its item as sent, the
// organisation id included.
type claimedItem struct {
	id   string
	body []byte
}

// batch claims, sends and records one batch of endpoint; n is its size.
func (f *Forwarder) batch(ctx context.Context, endpoint string) (DrainResult, int, error) {
	c, err := f.claim(ctx, endpoint)
	if err != nil || c == nil {
		return DrainResult{}, 0, err
	}
	res := &sendResult{}
	f.send(ctx, c, c.items, res)
	if ctx.Err() != nil {
		// Shutting down: leave the batch to its lease; accepted items are
		// still recorded below with a fresh context.
		res.retryErr = ctx.Err().Error()
	}
	r, err := f.record(context.WithoutCancel(ctx), c, res)
	return r, len(c.items), err
}

func newLease() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// claimSQLite takes up to $5 due items of endpoint $4 in one statement and
// returns them (the single writer serialises claims). state = 'PENDING' is
// spelt out so the partial index pcm_outbox_due serves it.
//
// The outer WHERE is the subquery's rowids alone: repeating the due
// conditions there made SQLite walk every due row of the endpoint per claim
// (EXPLAIN QUERY PLAN: SEARCH ... USING INTEGER PRIMARY KEY (rowid=?)).
const claimSQLite = `UPDATE pcm_outbox SET lease = $1, next_at = $2, attempts = attempts + 1, updated_at = $3
	WHERE rowid IN (
		SELECT rowid FROM pcm_outbox WHERE state = 'PENDING' AND endpoint = $4 AND next_at <= $3
		ORDER BY next_at LIMIT $5)
	RETURNING event_id, attempts, occurred_at, item`

// claimPG is claimSQLite on PostgreSQL: the due rows are locked with SKIP
// LOCKED, so concurrent forwarders take disjoint batches, and updated by
// primary key from the CTE (an IN (subquery) made PostgreSQL's planner
// take seconds per batch).
const claimPG = `WITH due AS (
		SELECT event_id FROM pcm_outbox WHERE state = 'PENDING' AND endpoint = $4 AND next_at <= $3
		ORDER BY next_at LIMIT $5 FOR UPDATE SKIP LOCKED)
	UPDATE pcm_outbox AS o SET lease = $1, next_at = $2, attempts = o.attempts + 1, updated_at = $3
	FROM due WHERE o.event_id = due.event_id AND o.state = 'PENDING'
	RETURNING o.event_id, o.attempts, o.occurred_at, o.item`

// claim takes up to BatchSize due items of endpoint under a new lease, in
// event order (occurred_at, then id).
func (f *Forwarder) claim(ctx context.Context, endpoint string) (*claimed, error) {
	now := f.o.Clock.Now()
	c := &claimed{endpoint: endpoint, lease: newLease(), until: now.Add(f.o.Lease)}
	query := claimSQLite
	if f.pg {
		query = claimPG
	}
	type row struct {
		id       string
		occurred int64
		item     []byte
	}
	var rows []row
	var legacy []string
	err := f.o.DB.Write(ctx, func(tx *sql.Tx) error {
		rows, legacy, c.attempt = rows[:0], legacy[:0], 0
		st, err := f.o.DB.TxStmt(ctx, tx, query)
		if err != nil {
			return fmt.Errorf("pcm: claim %s: %w", endpoint, err)
		}
		rs, err := st.QueryContext(ctx, c.lease, c.until.UnixMilli(), now.UnixMilli(), endpoint, f.o.BatchSize)
		if err != nil {
			return fmt.Errorf("pcm: claim %s: %w", endpoint, err)
		}
		defer rs.Close()
		for rs.Next() {
			var r row
			var attempts int
			if err := rs.Scan(&r.id, &attempts, &r.occurred, &r.item); err != nil {
				return fmt.Errorf("pcm: claim %s: %w", endpoint, err)
			}
			c.attempt = max(c.attempt, attempts)
			if len(r.item) == 0 {
				legacy = append(legacy, r.id)
			}
			rows = append(rows, r)
		}
		if err := rs.Err(); err != nil {
			return fmt.Errorf("pcm: claim %s: %w", endpoint, err)
		}
		rs.Close()
		if len(legacy) == 0 {
			return nil
		}
		// Rows from before migration 00019 (or an older instance) carry no
		// item: render it from the event.
		items, err := legacyItems(ctx, tx, f.o.DB.Engine(), legacy)
		if err != nil {
			return fmt.Errorf("pcm: read claimed %s batch: %w", endpoint, err)
		}
		for i := range rows {
			if len(rows[i].item) == 0 {
				if rows[i].item = items[rows[i].id]; len(rows[i].item) == 0 {
					return fmt.Errorf("pcm: read claimed %s batch: no event %s", endpoint, rows[i].id)
				}
			}
		}
		return nil
	})
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b row) int {
		if a.occurred != b.occurred {
			return cmp.Compare(a.occurred, b.occurred)
		}
		return strings.Compare(a.id, b.id)
	})
	org := orgField(endpoint, f.o.OrgID)
	c.items = make([]claimedItem, len(rows))
	for i, r := range rows {
		c.items[i] = claimedItem{id: r.id, body: withOrg(nil, r.item, org)}
	}
	return c, nil
}

// legacyItems encodes the items of the events ids (outbox rows without an
// item column value) from pcm_events.
func legacyItems(ctx context.Context, tx *sql.Tx, e store.Engine, ids []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(ids))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		p := store.NewParams(e)
		rows, err := tx.QueryContext(ctx, `SELECT `+eventColumns+` FROM pcm_events WHERE id IN (`+p.List(args...)+`)`, p.Args()...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var e Event
			var occurred, created int64
			if err := rows.Scan(&e.ID, &e.ConsentID, &e.Side, &e.Step, &e.Type, &e.Error, &e.URI, &e.Device.Platform, &e.Device.OS,
				&e.Device.OSVersion, &e.ApplicationID, &e.BrandID, &e.Source, &occurred, &created); err != nil {
				rows.Close()
				return nil, err
			}
			e.OccurredAt, e.CreatedAt = time.UnixMilli(occurred).UTC(), time.UnixMilli(created).UTC()
			b, err := encodeItem(&e)
			if err != nil {
				rows.Close()
				return nil, err
			}
			out[e.ID] = b
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sendResult collects a batch's outcomes: final ones per item, and the
// items left for a retry (every claimed item without a final outcome).
type sendResult struct {
	final    []outcome
	retryErr string
	retryAt  time.Time
}

// send POSTs events (a claimed batch or part of one) and files the answer
// in res. A 400 or 413 on several items splits them in halves, so one item
// the PCM refuses cannot sink the others.
func (f *Forwarder) send(ctx context.Context, c *claimed, events []claimedItem, res *sendResult) {
	if ctx.Err() != nil {
		return
	}
	if f.o.Clock.Now().Add(f.o.Timeout).After(c.until) {
		res.retry(f.o.Clock.Now(), "lease too short to send the rest of the batch", 0)
		return
	}
	body := batchBody(events)
	start := time.Now()
	code, respBody, retryAfter, err := f.post(ctx, c.endpoint, body)
	f.o.Metrics.observeRequest(c.endpoint, code, err, time.Since(start))
	log := f.o.Logger.With("endpoint", c.endpoint, "items", len(events), "status", code)
	attempt := max(c.attempt, 1)
	switch {
	case err != nil:
		log.Warn("pcm: batch not delivered, will retry", "err", err)
		res.retry(f.o.Clock.Now(), err.Error(), f.backoffAfter(attempt, 0))
	case code == http.StatusOK:
		ids := reportIDs(respBody, len(events))
		for i, e := range events {
			res.final = append(res.final, outcome{ID: e.id, State: OutboxAccepted, ReportID: ids[i]})
		}
	case code == http.StatusMultiStatus:
		res.final = append(res.final, multiStatus(events, respBody)...)
	case (code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge) && len(events) > 1:
		mid := len(events) / 2
		log.Warn("pcm: batch refused, splitting it", "body", trim(string(respBody)))
		f.send(ctx, c, events[:mid], res)
		f.send(ctx, c, events[mid:], res)
	case code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge:
		reason := fmt.Sprintf("PCM answered %d: %s", code, trim(string(respBody)))
		res.final = append(res.final, outcome{ID: events[0].id, State: OutboxRejected, Reason: reason})
	case code == http.StatusUnauthorized:
		if f.o.Token != nil {
			f.o.Token.Invalidate()
		}
		log.Warn("pcm: token refused, will retry with a new one")
		res.retry(f.o.Clock.Now(), fmt.Sprintf("PCM answered %d: %s", code, trim(string(respBody))), f.backoffAfter(attempt, 0))
	case code == http.StatusTooManyRequests || code >= 500:
		log.Warn("pcm: batch not accepted, will retry", "body", trim(string(respBody)))
		res.retry(f.o.Clock.Now(), fmt.Sprintf("PCM answered %d: %s", code, trim(string(respBody))), f.backoffAfter(attempt, retryAfter))
	default:
		// 403, 404, 406, 415 ...: a configuration problem on our side; the
		// items stay pending (with backoff) until it is fixed.
		log.Error("pcm: batch refused by the PCM (check --pcm-url, credentials and organisation id); will retry",
			"body", trim(string(respBody)))
		res.retry(f.o.Clock.Now(), fmt.Sprintf("PCM answered %d: %s", code, trim(string(respBody))), f.backoffAfter(attempt, 0))
	}
}

// batchBody is the JSON array of the items, as json.Marshal of their Items
// writes it.
func batchBody(items []claimedItem) []byte {
	n := 2
	for _, it := range items {
		n += len(it.body) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it.body...)
	}
	return append(b, ']')
}

func (r *sendResult) retry(now time.Time, errText string, after time.Duration) {
	r.retryErr = errText
	if at := now.Add(after); at.After(r.retryAt) {
		r.retryAt = at
	}
}

// backoffAfter is the wait before the next attempt: exponential with
// jitter, or the PCM's Retry-After when longer (capped at RetryMax).
func (f *Forwarder) backoffAfter(attempt int, retryAfter time.Duration) time.Duration {
	d := f.o.RetryBase
	for i := 1; i < attempt && d < f.o.RetryMax; i++ {
		d *= 2
	}
	d = min(d, f.o.RetryMax)
	d = time.Duration(float64(d) * f.o.Jitter())
	if retryAfter > d {
		d = min(retryAfter, f.o.RetryMax)
	}
	return d
}

// post sends one request. A non-nil error means no answer (network error,
// timeout); then code is 0.
func (f *Forwarder) post(ctx context.Context, endpoint string, body []byte) (int, []byte, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, f.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.o.BaseURL+HybridFlowPrefix+endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, nil, 0, fmt.Errorf("pcm: request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if f.o.Token != nil {
		tok, err := f.o.Token.Token(ctx)
		if err != nil {
			return 0, nil, 0, fmt.Errorf("pcm: access token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := f.o.HTTP.Do(req)
	if err != nil {
		return 0, nil, 0, fmt.Errorf("pcm: POST %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return 0, nil, 0, fmt.Errorf("pcm: POST %s: read answer: %w", endpoint, err)
	}
	var ra time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		ra = time.Duration(s) * time.Second
	}
	return resp.StatusCode, b, ra, nil
}

// reportIDs reads a 200 answer's reportIds in request order ("" where the
// answer does not say).
func reportIDs(body []byte, n int) []string {
	out := make([]string, n)
	var items []struct {
		ReportID string `json:"reportId"`
	}
	if json.Unmarshal(body, &items) == nil && len(items) == n {
		for i, it := range items {
			out[i] = it.ReportID
		}
	}
	return out
}

// multiStatus reads a 207 answer: one result per item, in request order.
// An item with a reportId and no error is accepted; any other is rejected
// with the PCM's words as the reason. An answer that cannot be matched to
// the items rejects them all: they are kept for an operator to replay,
// never resent blindly (some may have been accepted).
func multiStatus(events []claimedItem, body []byte) []outcome {
	out := make([]outcome, len(events))
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil || len(items) != len(events) {
		reason := fmt.Sprintf("PCM answered 207 with a body that does not list %d results in order: %s", len(events), trim(string(body)))
		for i, e := range events {
			out[i] = outcome{ID: e.id, State: OutboxRejected, Reason: reason}
		}
		return out
	}
	for i, e := range events {
		it := items[i]
		var rid, status string
		_ = json.Unmarshal(it["reportId"], &rid)
		_ = json.Unmarshal(it["status"], &status)
		_, hasErr := it["errors"]
		_, hasMsg := it["message"]
		_, hasError := it["error"]
		if rid != "" && !hasErr && !hasError && !(hasMsg && status == "") && status != "DISCARDED" {
			out[i] = outcome{ID: e.id, State: OutboxAccepted, ReportID: rid}
			continue
		}
		raw, _ := json.Marshal(it)
		out[i] = outcome{ID: e.id, State: OutboxRejected, Reason: trim(string(raw))}
	}
	return out
}

func trim(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxReason {
		return s[:maxReason] + "…"
	}
	return s
}

// record files a batch's outcomes in one transaction: accepted and rejected
// items settle (whoever holds their lease: an answer from the PCM is a
// fact), the rest of the batch is released for a retry at res.retryAt,
// fenced by the lease.
func (f *Forwarder) record(ctx context.Context, c *claimed, res *sendResult) (DrainResult, error) {
	now := f.o.Clock.Now().UnixMilli()
	var r DrainResult
	r.Batches = 1
	for _, o := range res.final {
		if o.State == OutboxAccepted {
			r.Accepted++
		} else {
			r.Rejected++
		}
	}
	r.Retried = len(c.items) - len(res.final)
	retryAt := res.retryAt
	if retryAt.IsZero() {
		retryAt = f.o.Clock.Now()
	}
	err := f.o.DB.Write(ctx, func(tx *sql.Tx) error {
		if len(res.final) > 0 {
			if err := f.settle(ctx, tx, res.final, now); err != nil {
				return fmt.Errorf("pcm: record %s outcomes: %w", c.endpoint, err)
			}
		}
		if r.Retried > 0 {
			// The batch's rows still PENDING under this claim's lease (a
			// later claim's rows are left alone: the lease fences them).
			if err := f.release(ctx, tx, c, retryAt.UnixMilli(), trim(res.retryErr), now); err != nil {
				return fmt.Errorf("pcm: release %s batch for a retry: %w", c.endpoint, err)
			}
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	f.o.Metrics.observeItems(c.endpoint, r.Accepted, r.Rejected)
	if r.Rejected > 0 {
		f.o.Logger.Error("pcm: items rejected by the PCM; kept with the reason, replay them after a fix (ponte pcm replay)",
			"endpoint", c.endpoint, "rejected", r.Rejected, "accepted", r.Accepted)
	}
	return r, nil
}

// settleChunk is how many outcomes one SQLite settle statement carries (4
// parameters each, well under SQLite's 32,766).
const settleChunk = 250

// settlePG settles a batch on PostgreSQL in one statement (one round trip).
const settlePG = `UPDATE pcm_outbox AS o SET state = v.s, report_id = v.r, reason = v.x, lease = NULL, updated_at = $5, settled_at = $5
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS v(i, s, r, x)
	WHERE o.event_id = v.i AND o.state = 'PENDING'`

// settleSQLite is the SQLite settle of n outcomes: an UPDATE ... FROM a
// VALUES list, which SQLite plans as a scan of the list and a primary-key
// search of pcm_outbox per row (see TestSettleSQLitePlan). Its parameters
// are anonymous ("?", the time twice, then four per outcome): SQLite finds a
// numbered parameter's name by a linear search, once per parameter bound,
// which made binding a 1,001-parameter settle a tenth of the forwarder's CPU.
func settleSQLite(n int) string {
	var b strings.Builder
	b.WriteString(`UPDATE pcm_outbox SET state = v.column2, report_id = v.column3, reason = v.column4, lease = NULL, updated_at = ?, settled_at = ?
	FROM (VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?)")
	}
	b.WriteString(`) AS v WHERE pcm_outbox.event_id = v.column1 AND pcm_outbox.state = 'PENDING'`)
	return b.String()
}

var settleSQLiteFull = settleSQLite(settleChunk)

// settle files final outcomes: accepted and rejected items leave PENDING
// whoever holds their lease (an answer from the PCM is a fact).
func (f *Forwarder) settle(ctx context.Context, tx *sql.Tx, final []outcome, now int64) error {
	if f.pg {
		ids, states, reports, reasons := make([]string, len(final)), make([]string, len(final)), make([]string, len(final)), make([]string, len(final))
		for i, o := range final {
			ids[i], states[i], reports[i], reasons[i] = o.ID, o.State, o.ReportID, o.Reason
		}
		st, err := f.o.DB.TxStmt(ctx, tx, settlePG)
		if err != nil {
			return err
		}
		_, err = st.ExecContext(ctx, ids, states, reports, reasons, now)
		return err
	}
	for len(final) > 0 {
		chunk := final[:min(len(final), settleChunk)]
		final = final[len(chunk):]
		args := make([]any, 0, 2+4*len(chunk))
		args = append(args, now, now)
		for _, o := range chunk {
			args = append(args, o.ID, o.State, o.ReportID, o.Reason)
		}
		var err error
		if len(chunk) == settleChunk {
			var st *sql.Stmt
			if st, err = f.o.DB.TxStmt(ctx, tx, settleSQLiteFull); err == nil {
				_, err = st.ExecContext(ctx, args...)
			}
		} else {
			_, err = tx.ExecContext(ctx, settleSQLite(len(chunk)), args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// release puts c's rows that are still PENDING under c's lease back to due
// at retryAt, by primary key and fenced by the lease.
func (f *Forwarder) release(ctx context.Context, tx *sql.Tx, c *claimed, retryAt int64, lastErr string, now int64) error {
	ids := make([]string, len(c.items))
	for i, it := range c.items {
		ids[i] = it.id
	}
	if f.pg {
		_, err := tx.ExecContext(ctx, `UPDATE pcm_outbox SET lease = NULL, next_at = $1, last_error = $2, updated_at = $3
			WHERE event_id = ANY($4::text[]) AND lease = $5 AND state = 'PENDING'`, retryAt, lastErr, now, ids, c.lease)
		return err
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := make([]any, 0, 4+len(chunk))
		args = append(args, retryAt, lastErr, now, c.lease)
		for _, id := range chunk {
			args = append(args, id)
		}
		// Anonymous parameters, as in settleSQLite.
		if _, err := tx.ExecContext(ctx, `UPDATE pcm_outbox SET lease = NULL, next_at = ?, last_error = ?, updated_at = ?
			WHERE lease = ? AND state = 'PENDING' AND event_id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)`, args...); err != nil {
			return err
		}
	}
	return nil
}

package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
)

// DefaultQueueMetricsMaxAge is how long a queue reading is reused between
// scrapes (MetricsOptions.MaxAge).
const DefaultQueueMetricsMaxAge = 5 * time.Second

// MetricsOptions configure NewMetrics. Zero values take the defaults named.
type MetricsOptions struct {
	// DB is the queue's database, read on scrape for the queue-wide gauges
	// (nil: only the per-instance counters are exported).
	DB *store.DB
	// Clock decides which jobs are due and how old the oldest is (default:
	// the system clock).
	Clock clock.Clock
	// MaxAge is how long one reading of the queue serves scrapes (default
	// DefaultQueueMetricsMaxAge; negative: read on every scrape), so several
	// Prometheus servers or a short scrape interval cost one query per MaxAge.
	MaxAge time.Duration
	// Logger receives a failed reading (default: discarded).
	Logger *slog.Logger
}

// Metrics are the job queue's Prometheus metrics. Two sorts:
//
//   - Per instance (counters, only this process's workers): attempts that
//     completed, failed and were rescheduled, and jobs discarded after their
//     last attempt. Sum them across instances.
//   - Queue-wide (gauges, read from the shared jobs table on scrape, labelled
//     scope="queue"): every instance on one database reports the same
//     figures, so dashboards take max by (kind), never sum.
//
// A nil *Metrics records nothing.
type Metrics struct {
	completed *prometheus.CounterVec
	retried   *prometheus.CounterVec
	discarded *prometheus.CounterVec
	queue     *queueCollector
}

// NewMetrics registers the job queue's metrics with reg; give them to the
// Client in Config.Metrics.
func NewMetrics(reg prometheus.Registerer, opts MetricsOptions) *Metrics {
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = DefaultQueueMetricsMaxAge
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		completed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ponte_jobs_completed_total",
			Help: "Job attempts this instance ran to success, by kind."}, []string{"kind"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ponte_jobs_retried_total",
			Help: "Job attempts this instance ran that failed and were rescheduled, by kind."}, []string{"kind"}),
		discarded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ponte_jobs_discarded_total",
			Help: "Jobs this instance discarded after their last attempt failed (or its lease expired again), by kind."}, []string{"kind"}),
	}
	reg.MustRegister(m.completed, m.retried, m.discarded)
	if opts.DB != nil {
		m.queue = newQueueCollector(opts)
		reg.MustRegister(m.queue)
	}
	return m
}

// kindRegistered makes the queue gauges report kind (as 0) even while no
// job of it is in the table, so an alert on it is never on a missing series.
func (m *Metrics) kindRegistered(kind string) {
	if m == nil {
		return
	}
	m.completed.WithLabelValues(kind)
	m.retried.WithLabelValues(kind)
	m.discarded.WithLabelValues(kind)
	if m.queue != nil {
		m.queue.addKind(kind)
	}
}

func (m *Metrics) observeOutcome(kind string, outcome string) {
	if m == nil {
		return
	}
	switch outcome {
	case StateCompleted:
		m.completed.WithLabelValues(kind).Inc()
	case StateAvailable:
		m.retried.WithLabelValues(kind).Inc()
	case StateDiscarded:
		m.discarded.WithLabelValues(kind).Inc()
	}
}

// QueueStats are the queue-wide figures of one kind at one moment.
type QueueStats struct {
	// Due jobs are available, due and not claimed.
	Due int64
	// Scheduled jobs are available but not due yet: future timers and
	// retries waiting for their next attempt.
	Scheduled int64
	// Running jobs are leased by a worker (or were: LeaseExpired counts
	// those whose lease has ended, a dead worker's jobs waiting to be taken
	// over).
	Running, LeaseExpired int64
	// Discarded jobs failed their last attempt and stay until pruned.
	Discarded int64
	// OldestDueAge is how long the longest-waiting due job has been due (0: none).
	OldestDueAge time.Duration
}

// ReadQueueStats reads the queue's figures by kind as of now, in one query
// (each branch on its state's partial index).
func ReadQueueStats(ctx context.Context, db *store.DB, now time.Time) (map[string]QueueStats, error) {
	nowMS := now.UnixMilli()
	rows, err := db.Read().QueryContext(ctx, `
		SELECT kind, state, COUNT(*), SUM(CASE WHEN run_at <= $1 THEN 1 ELSE 0 END), MIN(CASE WHEN run_at <= $1 THEN run_at END)
			FROM jobs WHERE state = 'available' GROUP BY kind, state
		UNION ALL
		SELECT kind, state, COUNT(*), SUM(CASE WHEN lease_until <= $1 THEN 1 ELSE 0 END), NULL
			FROM jobs WHERE state = 'running' GROUP BY kind, state
		UNION ALL
		SELECT kind, state, COUNT(*), 0, NULL FROM jobs WHERE state = 'discarded' GROUP BY kind, state`, nowMS)
	if err != nil {
		return nil, fmt.Errorf("jobs: read queue figures: %w", err)
	}
	defer rows.Close()
	stats := map[string]QueueStats{}
	for rows.Next() {
		var (
			kind, state string
			n, due      int64
			oldest      *int64
		)
		if err := rows.Scan(&kind, &state, &n, &due, &oldest); err != nil {
			return nil, fmt.Errorf("jobs: read queue figures: %w", err)
		}
		s := stats[kind]
		switch state {
		case StateAvailable:
			s.Due, s.Scheduled = due, n-due
			if oldest != nil && *oldest <= nowMS {
				s.OldestDueAge = time.Duration(nowMS-*oldest) * time.Millisecond
			}
		case StateRunning:
			s.Running, s.LeaseExpired = n, due
		case StateDiscarded:
			s.Discarded = n
		}
		stats[kind] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("jobs: read queue figures: %w", err)
	}
	return stats, nil
}

// queueCollector exports QueueStats on scrape, reading the table at most
// once per MaxAge.
type queueCollector struct {
	opts                                                               MetricsOptions
	due, scheduled, running, leaseExpired, discarded, oldestDueSeconds *prometheus.Desc

	mu    sync.Mutex
	kinds map[string]struct{}
	read  time.Time // wall time of the cached reading
	stats map[string]QueueStats
}

func newQueueCollector(opts MetricsOptions) *queueCollector {
	queue := prometheus.Labels{"scope": "queue"}
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help+" Queue-wide: every instance on the database reports the same figure.", []string{"kind"}, queue)
	}
	return &queueCollector{opts: opts, kinds: map[string]struct{}{},
		due:              desc("ponte_jobs_queue_due", "Jobs due and not claimed by any worker, by kind."),
		scheduled:        desc("ponte_jobs_queue_scheduled", "Jobs waiting for a later run time (timers, retries after a failed attempt), by kind."),
		running:          desc("ponte_jobs_queue_running", "Jobs leased by a worker, by kind."),
		leaseExpired:     desc("ponte_jobs_queue_lease_expired", "Running jobs whose lease has ended (their worker died or overran): taken over by the next poll, by kind."),
		discarded:        desc("ponte_jobs_queue_discarded", "Jobs discarded after their last attempt and not yet pruned (7 days), by kind."),
		oldestDueSeconds: desc("ponte_jobs_queue_oldest_due_age_seconds", "How long the longest-waiting due, unclaimed job has been due, in seconds (0: none), by kind."),
	}
}

func (c *queueCollector) addKind(kind string) {
	c.mu.Lock()
	c.kinds[kind] = struct{}{}
	c.mu.Unlock()
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.due, c.scheduled, c.running, c.leaseExpired, c.discarded, c.oldestDueSeconds} {
		ch <- d
	}
}

// Collect exports the cached reading, reading the table again when it is
// older than MaxAge. A failed reading is logged and exports no queue gauges
// (absent, rather than a stale or made-up zero), and the scrape still
// succeeds with the other metrics.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	stats, ok := c.current()
	if !ok {
		return
	}
	c.mu.Lock()
	kinds := make([]string, 0, len(c.kinds)+len(stats))
	for k := range c.kinds {
		kinds = append(kinds, k)
	}
	c.mu.Unlock()
	for k := range stats {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range slices.Compact(kinds) {
		s := stats[k]
		ch <- prometheus.MustNewConstMetric(c.due, prometheus.GaugeValue, float64(s.Due), k)
		ch <- prometheus.MustNewConstMetric(c.scheduled, prometheus.GaugeValue, float64(s.Scheduled), k)
		ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(s.Running), k)
		ch <- prometheus.MustNewConstMetric(c.leaseExpired, prometheus.GaugeValue, float64(s.LeaseExpired), k)
		ch <- prometheus.MustNewConstMetric(c.discarded, prometheus.GaugeValue, float64(s.Discarded), k)
		ch <- prometheus.MustNewConstMetric(c.oldestDueSeconds, prometheus.GaugeValue, s.OldestDueAge.Seconds(), k)
	}
}

// current returns a reading no older than MaxAge. Concurrent scrapes wait
// for one query rather than each running their own.
func (c *queueCollector) current() (map[string]QueueStats, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Clock.Now()
	if c.stats != nil && c.opts.MaxAge > 0 && now.Sub(c.read) < c.opts.MaxAge && !now.Before(c.read) {
		return c.stats, true
	}
	// A scrape has no context of its own; bound the query so a stalled
	// database cannot hold /metrics (and the lock) for long.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	stats, err := ReadQueueStats(ctx, c.opts.DB, now)
	if err != nil {
		c.opts.Logger.Warn("jobs: metrics: could not read the queue", "err", err)
		return nil, false
	}
	c.stats, c.read = stats, now
	return stats, true
}

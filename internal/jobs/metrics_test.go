package jobs

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// metricValue is the value of name{kind} in reg's gathering; ok is false
// when the series is absent.
func metricValue(t testing.TB, reg *prometheus.Registry, name, kind string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label(m, "kind") != kind {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			}
		}
	}
	return 0, false
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

type want struct {
	name, kind string
	value      float64
}

func check(t *testing.T, reg *prometheus.Registry, wants []want) {
	t.Helper()
	for _, w := range wants {
		got, ok := metricValue(t, reg, w.name, w.kind)
		if !ok {
			t.Errorf("%s{kind=%q}: absent, want %v", w.name, w.kind, w.value)
			continue
		}
		if got != w.value {
			t.Errorf("%s{kind=%q} = %v, want %v", w.name, w.kind, got, w.value)
		}
	}
}

func TestMetricsQueueAndOutcomes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(epoch)
		reg := prometheus.NewRegistry()
		m := NewMetrics(reg, MetricsOptions{DB: db, Clock: clk, MaxAge: -1})
		c := New(db, Config{Clock: clk, Owner: "w1", Lease: time.Minute, Metrics: m})
		c.Register("m.ok", func(context.Context, *Job) error { return nil }, nil)
		c.Register("m.fail", func(context.Context, *Job) error { return errors.New("boom") }, Schedule(30*time.Second))
		c.Register("m.last", func(context.Context, *Job) error { return errors.New("boom") }, nil)
		c.Register("m.idle", func(context.Context, *Job) error { return nil }, nil)
		// Another instance's worker holds m.held; m.other is nobody's here.
		other := New(db, Config{Clock: clk, Owner: "w2", Lease: time.Minute})
		other.Register("m.held", func(context.Context, *Job) error { return nil }, nil)

		now := clk.Now()
		enqueue(t, db, now, Job{Kind: "m.ok"})
		enqueue(t, db, now, Job{Kind: "m.ok"})
		enqueue(t, db, now, Job{Kind: "m.ok", RunAt: now.Add(time.Hour)})
		enqueue(t, db, now, Job{Kind: "m.fail", MaxAttempts: 3})
		enqueue(t, db, now, Job{Kind: "m.last", MaxAttempts: 1})
		enqueue(t, db, now.Add(-30*time.Second), Job{Kind: "m.other", RunAt: now.Add(-30 * time.Second)})
		held := enqueue(t, db, now, Job{Kind: "m.held", MaxAttempts: 1})
		if won, err := other.claim(ctx, []string{held}, now); err != nil || len(won) != 1 {
			t.Fatalf("claim m.held: %v, won %d", err, len(won))
		}
		check(t, reg, []want{{"ponte_jobs_queue_running", "m.held", 1}, {"ponte_jobs_queue_lease_expired", "m.held", 0}})
		clk.Advance(90 * time.Second)

		check(t, reg, []want{
			{"ponte_jobs_queue_due", "m.ok", 2}, {"ponte_jobs_queue_scheduled", "m.ok", 1},
			{"ponte_jobs_queue_oldest_due_age_seconds", "m.ok", 90},
			{"ponte_jobs_queue_due", "m.fail", 1}, {"ponte_jobs_queue_due", "m.last", 1},
			{"ponte_jobs_queue_due", "m.other", 1}, {"ponte_jobs_queue_oldest_due_age_seconds", "m.other", 120},
			{"ponte_jobs_queue_running", "m.held", 1}, {"ponte_jobs_queue_due", "m.held", 0},
			{"ponte_jobs_queue_lease_expired", "m.held", 1}, // leased for 1 min, 90 s ago
			// Registered kinds without jobs are reported as zeros, not absent.
			{"ponte_jobs_queue_due", "m.idle", 0}, {"ponte_jobs_queue_oldest_due_age_seconds", "m.idle", 0},
			{"ponte_jobs_completed_total", "m.idle", 0}, {"ponte_jobs_discarded_total", "m.last", 0},
		})

		if n := runDue(t, c); n != 4 {
			t.Fatalf("RunDue ran %d jobs, want 4", n)
		}
		check(t, reg, []want{
			{"ponte_jobs_completed_total", "m.ok", 2}, {"ponte_jobs_retried_total", "m.ok", 0},
			{"ponte_jobs_retried_total", "m.fail", 1}, {"ponte_jobs_discarded_total", "m.fail", 0},
			{"ponte_jobs_discarded_total", "m.last", 1}, {"ponte_jobs_retried_total", "m.last", 0},
			{"ponte_jobs_queue_due", "m.ok", 0}, {"ponte_jobs_queue_scheduled", "m.ok", 1},
			{"ponte_jobs_queue_oldest_due_age_seconds", "m.ok", 0},
			{"ponte_jobs_queue_due", "m.fail", 0}, {"ponte_jobs_queue_scheduled", "m.fail", 1},
			{"ponte_jobs_queue_discarded", "m.last", 1}, {"ponte_jobs_queue_due", "m.last", 0},
			{"ponte_jobs_queue_due", "m.other", 1}, {"ponte_jobs_queue_oldest_due_age_seconds", "m.other", 120},
			{"ponte_jobs_queue_running", "m.held", 1},
		})

		// The retry comes due: it counts as due again, and fails again.
		clk.Advance(30 * time.Second)
		check(t, reg, []want{{"ponte_jobs_queue_due", "m.fail", 1}, {"ponte_jobs_queue_oldest_due_age_seconds", "m.fail", 0}})
		clk.Advance(15 * time.Second)
		check(t, reg, []want{{"ponte_jobs_queue_oldest_due_age_seconds", "m.fail", 15}})
		runDue(t, c)
		check(t, reg, []want{{"ponte_jobs_retried_total", "m.fail", 2}})

		// m.held's worker died after running it more times than it may
		// run: the next worker to look discards it, and counts it.
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE jobs SET attempt = 2 WHERE id = $1`, held)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		c.Register("m.held", func(context.Context, *Job) error { return nil }, nil)
		runDue(t, c)
		check(t, reg, []want{
			{"ponte_jobs_discarded_total", "m.held", 1},
			{"ponte_jobs_queue_running", "m.held", 0}, {"ponte_jobs_queue_discarded", "m.held", 1},
		})
		if got := get(t, db, held).State; got != StateDiscarded {
			t.Errorf("m.held state %s, want discarded", got)
		}
	})
}

// TestMetricsQueueReadingIsShared checks the queue gauges are read at most
// once per MaxAge: several scrapes within it see one reading.
func TestMetricsQueueReadingIsShared(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clk := clock.NewFake(epoch)
		reg := prometheus.NewRegistry()
		NewMetrics(reg, MetricsOptions{DB: db, Clock: clk, MaxAge: 5 * time.Second})
		enqueue(t, db, clk.Now(), Job{Kind: "m.a"})
		check(t, reg, []want{{"ponte_jobs_queue_due", "m.a", 1}})
		enqueue(t, db, clk.Now(), Job{Kind: "m.a"})
		clk.Advance(4999 * time.Millisecond)
		check(t, reg, []want{{"ponte_jobs_queue_due", "m.a", 1}})
		clk.Advance(time.Millisecond)
		check(t, reg, []want{{"ponte_jobs_queue_due", "m.a", 2}, {"ponte_jobs_queue_oldest_due_age_seconds", "m.a", 5}})
	})
}

// TestMetricsQueueLabels checks the queue gauges say they are queue-wide
// (scope="queue") and the counters do not.
func TestMetricsQueueLabels(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, storetest.Engines()[0].URL(t))
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, MetricsOptions{DB: db, MaxAge: -1})
	m.kindRegistered("m.a")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			seen++
			queueWide := strings.HasPrefix(f.GetName(), "ponte_jobs_queue_")
			if got := label(mt, "scope"); (got == "queue") != queueWide {
				t.Errorf("%s: scope=%q", f.GetName(), got)
			}
		}
	}
	if seen != 9 {
		t.Errorf("%d series, want 9 (3 counters, 6 queue gauges)", seen)
	}
}

// TestMetricsQueueReadFails: when the queue cannot be read, the queue gauges
// are absent (not a made-up zero) and the scrape still succeeds with the
// counters.
func TestMetricsQueueReadFails(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, storetest.Engines()[0].URL(t))
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, MetricsOptions{DB: db, MaxAge: -1})
	m.kindRegistered("m.a")
	if err := db.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`DROP TABLE jobs`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, ok := metricValue(t, reg, "ponte_jobs_queue_due", "m.a"); ok {
		t.Error("ponte_jobs_queue_due exported without a reading of the queue")
	}
	check(t, reg, []want{{"ponte_jobs_retried_total", "m.a", 0}})
}

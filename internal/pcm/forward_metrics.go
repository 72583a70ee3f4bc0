package pcm

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ForwardMetrics are the Prometheus metrics of forwarding. A nil
// *ForwardMetrics records nothing.
type ForwardMetrics struct {
	items         *prometheus.CounterVec
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	pending       prometheus.Gauge
	oldest        prometheus.Gauge
	atRisk        prometheus.Gauge
	deadline      prometheus.Gauge
	rejectedTotal prometheus.Gauge
}

// NewForwardMetrics registers the forwarding metrics with reg.
func NewForwardMetrics(reg prometheus.Registerer) *ForwardMetrics {
	m := &ForwardMetrics{
		items: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ponte_pcm_items_total",
			Help: "PCM hybrid-flow items settled by the PCM's answer, by endpoint and outcome (accepted, rejected)."}, []string{"endpoint", "outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ponte_pcm_requests_total",
			Help: "Batches POSTed to the PCM, by endpoint and answer (HTTP status, or error for no answer)."}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ponte_pcm_request_duration_seconds",
			Help: "Time of one batch POST to the PCM.", Buckets: prometheus.DefBuckets}, []string{"endpoint"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ponte_pcm_items_pending",
			Help: "PCM items not yet accepted or rejected."}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ponte_pcm_items_pending_oldest_seconds",
			Help: "Age of the oldest pending PCM item's event (0 when none)."}),
		atRisk: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ponte_pcm_items_at_risk",
			Help: "Pending PCM items within 2 h of their deadline (08:00 America/Sao_Paulo of the next day) or past it."}),
		deadline: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ponte_pcm_next_deadline_seconds",
			Help: "Seconds until the earliest deadline of a pending PCM item (negative when missed; 0 when none pending)."}),
		rejectedTotal: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ponte_pcm_items_rejected",
			Help: "PCM items rejected and kept for a replay."}),
	}
	reg.MustRegister(m.items, m.requests, m.duration, m.pending, m.oldest, m.atRisk, m.deadline, m.rejectedTotal)
	return m
}

func (m *ForwardMetrics) observeStatus(st OutboxStatus, now time.Time) {
	if m == nil {
		return
	}
	m.pending.Set(float64(st.Pending))
	m.atRisk.Set(float64(st.AtRisk))
	m.rejectedTotal.Set(float64(st.Rejected))
	if st.OldestPending.IsZero() {
		m.oldest.Set(0)
		m.deadline.Set(0)
		return
	}
	m.oldest.Set(now.Sub(st.OldestPending).Seconds())
	m.deadline.Set(st.NextDeadline.Sub(now).Seconds())
}

func (m *ForwardMetrics) observeRequest(endpoint string, code int, err error, d time.Duration) {
	if m == nil {
		return
	}
	label := strconv.Itoa(code)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		label = "timeout"
	case err != nil:
		label = "error"
	}
	m.requests.WithLabelValues(endpoint, label).Inc()
	m.duration.WithLabelValues(endpoint).Observe(d.Seconds())
}

func (m *ForwardMetrics) observeItems(endpoint string, accepted, rejected int) {
	if m == nil {
		return
	}
	if accepted > 0 {
		m.items.WithLabelValues(endpoint, "accepted").Add(float64(accepted))
	}
	if rejected > 0 {
		m.items.WithLabelValues(endpoint, "rejected").Add(float64(rejected))
	}
}

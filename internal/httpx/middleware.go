package httpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

type ctxKey int

const (
	correlationKey ctxKey = iota
	principalKey
)

// CorrelationHeader is the Bankly correlation header, echoed on every response.
const CorrelationHeader = "x-correlation-id"

// CorrelationID returns the request's correlation id, or "".
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey).(string)
	return id
}

// validCorrelationID accepts what a client may reasonably send as a GUID or
// trace id: 1–128 printable ASCII characters. Anything else is replaced, so a
// hostile value never reaches logs or response headers.
func validCorrelationID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Correlate takes the request's x-correlation-id (or makes a UUID), puts it in
// the context for every log line, and echoes it on the response.
func Correlate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(CorrelationHeader)
		if !validCorrelationID(id) {
			id = uuid.NewString()
		}
		w.Header().Set(CorrelationHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), correlationKey, id)))
	})
}

// StatusClientClosedRequest is the status the access log and the metrics
// record for a request whose client hung up before the answer (nginx's 499):
// no answer was sent, and it is not counted as a server error.
const StatusClientClosedRequest = 499

// ClientGone reports whether ctx is a request's context (one Correlate made)
// whose client has disconnected: net/http cancels it when the connection
// closes.
func ClientGone(ctx context.Context) bool {
	return CorrelationID(ctx) != "" && errors.Is(context.Cause(ctx), context.Canceled)
}

// LogHandler adds the request's correlation id to every record logged with a
// request context. An error logged for a request whose client has hung up is
// what the hang-up caused (a cancelled query or commit wait): it is recorded
// at INFO with client_gone=true, so a client cannot page an operator by
// disconnecting. Panics keep their level.
type LogHandler struct{ slog.Handler }

// Handle implements slog.Handler.
func (h LogHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id := CorrelationID(ctx); id != "" {
		rec.AddAttrs(slog.String("correlation_id", id))
	}
	if rec.Level >= slog.LevelError && ClientGone(ctx) && !hasAttr(rec, "panic") {
		rec.Level = slog.LevelInfo
		rec.AddAttrs(slog.Bool("client_gone", true))
	}
	return h.Handler.Handle(ctx, rec)
}

func hasAttr(rec slog.Record, key string) bool {
	found := false
	rec.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}

// WithAttrs implements slog.Handler.
func (h LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return LogHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h LogHandler) WithGroup(name string) slog.Handler { return LogHandler{h.Handler.WithGroup(name)} }

// Recover turns a panic in next into a 500 in the family's shape, logged with
// the stack and correlation id; the server keeps serving.
func Recover(errs ErrorWriter, logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, _ := w.(*statusWriter)
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			logger.ErrorContext(r.Context(), "panic serving request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if sw != nil && sw.wrote {
				return // headers are gone; the access log records the 500 we could not send
			}
			errs.WriteError(w, r, Internal())
		}()
		next.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status for the access log and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
	wrote  bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if !s.wrote {
		s.status, s.wrote = http.StatusOK, true
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Metrics are the HTTP request metrics.
type Metrics struct {
	Requests *prometheus.CounterVec
	Duration *prometheus.HistogramVec

	// The series each route, method and status lands in, looked up once:
	// WithLabelValues hashes and checks its labels on every call.
	series sync.Map // seriesKey → *routeSeries
}

type seriesKey struct {
	route, method string
	status        int
}

type routeSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func (m *Metrics) observe(route, method string, status int, elapsed time.Duration) {
	k := seriesKey{route, method, status}
	s, ok := m.series.Load(k)
	if !ok {
		s, _ = m.series.LoadOrStore(k, &routeSeries{
			requests: m.Requests.WithLabelValues(route, method, strconv.Itoa(status)),
			duration: m.Duration.WithLabelValues(route),
		})
	}
	rs := s.(*routeSeries)
	rs.requests.Inc()
	rs.duration.Observe(elapsed.Seconds())
}

// NewMetrics registers the HTTP metrics in reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ponte_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ponte_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
	}
	reg.MustRegister(m.Requests, m.Duration)
	return m
}

// Observe wraps the whole server: it logs one access line per request and
// counts it by the ServeMux pattern that matched (never by raw path, which
// would let clients create unbounded label values).
func Observe(logger *slog.Logger, m *Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			p := recover()
			if p != nil && p != http.ErrAbortHandler {
				// Last line of defence for routes without their own Recover.
				logger.ErrorContext(r.Context(), "panic serving request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !sw.wrote {
					writeInternal(sw)
				}
				sw.status = http.StatusInternalServerError
			}
			elapsed := time.Since(start)
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			status := sw.status
			if p == nil && ClientGone(r.Context()) {
				// Whatever the handler answered, nobody received it: the
				// client hung up, which is not a server error.
				status = StatusClientClosedRequest
			}
			m.observe(route, r.Method, status, elapsed)
			logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method), slog.String("route", route), // the route pattern, not the path: paths may carry ticket ids

				slog.Int("status", status), slog.Int("bytes", sw.bytes),
				slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000), slog.String("remote", r.RemoteAddr))
			if p == http.ErrAbortHandler {
				panic(p)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

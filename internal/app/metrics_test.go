package app_test

import (
	"io"
	"net"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
)

// TestMetricsInstanceLabel checks every series /metrics exports names the
// instance (host:port by default), that ponte_build_info names the engine,
// and that the job queue's metrics are there for the kinds Ponte registers.
func TestMetricsInstanceLabel(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(s.Options.Addr)
	instance := `instance="` + net.JoinHostPort(host, port) + `"`
	if got := s.App.Config.Instance; `instance="`+got+`"` != instance {
		t.Fatalf("Config.Instance = %q, want %s", got, instance)
	}

	r := s.Do(t, "GET", "/metrics", nil, "")
	if r.Status != 200 {
		t.Fatalf("/metrics: %d", r.Status)
	}
	var samples int
	seen := map[string]bool{}
	for line := range strings.Lines(string(r.Body)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		samples++
		if !strings.Contains(line, instance) {
			t.Errorf("series without %s: %s", instance, line)
		}
		name, _, _ := strings.Cut(line, "{")
		seen[name] = true
		if name == "ponte_build_info" && !strings.Contains(line, `engine="sqlite"`) {
			t.Errorf("ponte_build_info does not name the engine: %s", line)
		}
	}
	for _, name := range []string{"ponte_build_info", "go_goroutines", "process_cpu_seconds_total",
		"ponte_jobs_queue_due", "ponte_jobs_queue_oldest_due_age_seconds", "ponte_jobs_retried_total", "ponte_jobs_discarded_total"} {
		if !seen[name] {
			t.Errorf("%s missing from /metrics", name)
		}
	}
	if samples < 50 {
		t.Errorf("only %d samples", samples)
	}
	// The log lines name the instance too.
	if !strings.Contains(s.Logs.String(), `"instance":"`+net.JoinHostPort(host, port)+`"`) {
		t.Error("log lines do not carry the instance")
	}
}

// instanceLabel matches the instance label every series carries.
var instanceLabel = regexp.MustCompile(`instance="[^"]*",?`)

// metricsText is GET /metrics as text without the instance label (and an
// emptied label set), so tests can look for series as one instance has them.
func metricsText(t testing.TB, s *apptest.Server) string {
	t.Helper()
	text := instanceLabel.ReplaceAllString(string(s.Do(t, "GET", "/metrics", nil, "").Body), "")
	return strings.ReplaceAll(text, "{}", "")
}

// TestBuildInfoVersionAndInstance: --instance names the instance as given,
// and ponte_build_info carries the version the binary was built with.
func TestBuildInfoVersionAndInstance(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := config.Config{Addr: "127.0.0.1:0", DataDir: dir, Mode: config.Sandbox, TokenTTL: 300 * time.Second,
		ShutdownTimeout: 5 * time.Second, SweepInterval: time.Hour, Instance: "web-2"}
	if err := cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(t.Context(), cfg, app.NewLogger(io.Discard, "json"), app.WithVersion("v1.2.3"), app.WithClock(clock.NewFake(apptest.Epoch)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	want := `ponte_build_info{engine="sqlite",instance="web-2",version="v1.2.3"} 1`
	if !strings.Contains(rec.Body.String(), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

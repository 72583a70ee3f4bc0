package app_test

import (
	"net"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
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

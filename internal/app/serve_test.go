package app_test

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// pgxAsyncClose is pgx's own cleanup of a connection whose query was
// cancelled (a stopped worker's poll): bounded by pgx, not ours to join.
var pgxAsyncClose = goleak.IgnoreAnyFunction("github.com/jackc/pgx/v5/pgconn.(*PgConn).asyncClose.func1")

// newServeApp builds an App as `ponte serve` does, with a listener for Serve.
func newServeApp(t *testing.T, dbURL string, mod func(*config.Config)) (*app.App, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	dir := t.TempDir()
	cfg := config.Config{Addr: ln.Addr().String(), DatabaseURL: dbURL, DataDir: dir, Mode: config.Sandbox,
		SigningKeyFile: filepath.Join(dir, "signing-key.pem"), TokenTTL: 300 * time.Second, ShutdownTimeout: 5 * time.Second,
		SweepInterval: time.Hour}
	if err := cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := app.New(context.Background(), cfg, app.NewLogger(&apptest.LogBuffer{}, "json"), app.WithClock(clock.NewFake(apptest.Epoch)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, ln
}

// TestServeJoinsWorkersOnShutdown: when Serve returns, every goroutine it
// started (HTTP, job workers, PCM forwarding, the sweeper) has returned.
func TestServeJoinsWorkersOnShutdown(t *testing.T) {
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			var dbURL string
			if e.Name != "sqlite" {
				dbURL = e.URL(t)
			}
			a, ln := newServeApp(t, dbURL, nil)
			before := goleak.IgnoreCurrent()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Serve(ctx, ln) }()
			tr := &http.Transport{}
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + ln.Addr().String() + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			tr.CloseIdleConnections()
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Serve: %v", err)
			}
			goleak.VerifyNone(t, before, pgxAsyncClose)
		})
	}
}

// TestServeWorkerStartFailure: a worker that cannot start (here the
// sweeper, given no interval) makes Serve fail with the reason, and the
// workers started before it are stopped again.
func TestServeWorkerStartFailure(t *testing.T) {
	a, ln := newServeApp(t, "", func(c *config.Config) { c.SweepInterval = 0 })
	before := goleak.IgnoreCurrent()
	err := a.Serve(context.Background(), ln)
	if err == nil || !strings.Contains(err.Error(), "interval") {
		t.Fatalf("Serve = %v, want an error naming the sweep interval", err)
	}
	goleak.VerifyNone(t, before, pgxAsyncClose)
}

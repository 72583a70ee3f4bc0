package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/config"
)

// TestServeDrains: with --drain-delay, the end of Serve's context (SIGTERM
// in `ponte serve`) turns /readyz 503 "draining" at once while the other
// routes keep answering; only after the delay does the listener close, and
// Serve returns nil. Without a delay /readyz never reports draining to a
// new connection: the listener closes at once.
func TestServeDrains(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		delay time.Duration
	}{
		{"drain delay", 3 * time.Second},
		{"no drain delay", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			base := "http://" + ln.Addr().String()
			cfg := config.Config{Addr: ln.Addr().String(), DataDir: dir, Mode: config.Sandbox, PublicURL: base,
				SigningKeyFile: filepath.Join(dir, "signing-key.pem"), TokenTTL: time.Minute, LogFormat: "json",
				ShutdownTimeout: 10 * time.Second, SweepInterval: time.Hour, DrainDelay: tc.delay}
			if err := cfg.Finish(); err != nil {
				t.Fatal(err)
			}
			logs := &apptest.LogBuffer{}
			a, err := app.New(t.Context(), cfg, app.NewLogger(logs, "json"))
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			ctx, signal := context.WithCancel(context.Background()) // signal stands in for SIGTERM
			defer signal()
			served := make(chan error, 1)
			go func() { served <- a.Serve(ctx, ln) }()
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			get := func(path string) (int, string, error) {
				res, err := client.Get(base + path)
				if err != nil {
					return 0, "", err
				}
				defer res.Body.Close()
				b, err := io.ReadAll(res.Body)
				return res.StatusCode, string(b), err
			}
			if code, body, err := get("/readyz"); err != nil || code != 200 {
				t.Fatalf("readyz before the signal: %d %s %v", code, body, err)
			}
			if a.Draining() {
				t.Fatal("draining before the signal")
			}

			signalled := time.Now()
			signal()
			if tc.delay == 0 {
				select {
				case err := <-served:
					if err != nil {
						t.Fatalf("Serve: %v", err)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("Serve still running 30 s after the signal")
				}
				if _, _, err := get("/healthz"); err == nil {
					t.Error("the listener still answers after Serve returned")
				}
				return
			}
			// /readyz turns 503 "draining" (polled: the signal is asynchronous).
			var code int
			var body string
			for deadline := time.Now().Add(tc.delay / 2); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if code, body, err = get("/readyz"); err == nil && code == http.StatusServiceUnavailable {
					break
				}
			}
			var st struct{ Status string }
			if code != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &st) != nil || st.Status != "draining" {
				t.Fatalf("readyz after the signal: %d %s %v, want 503 draining", code, body, err)
			}
			if !a.Draining() {
				t.Error("Draining() = false after /readyz said draining")
			}
			// Everything else still serves during the delay.
			if code, body, err := get("/healthz"); err != nil || code != 200 {
				t.Errorf("healthz while draining: %d %s %v", code, body, err)
			}
			if time.Since(signalled) >= tc.delay {
				t.Fatalf("the checks above took longer than the drain delay (%s): the machine is too slow for this test", tc.delay)
			}
			select {
			case err := <-served:
				if err != nil {
					t.Fatalf("Serve: %v", err)
				}
			case <-time.After(tc.delay + 30*time.Second):
				t.Fatal("Serve still running 30 s after the drain delay")
			}
			if took := time.Since(signalled); took < tc.delay {
				t.Errorf("Serve returned %s after the signal, before the drain delay %s", took, tc.delay)
			}
			if _, _, err := get("/healthz"); err == nil {
				t.Error("the listener still answers after Serve returned")
			}
			if !strings.Contains(logs.String(), "draining") {
				t.Error("no log line says the instance is draining")
			}
		})
	}
}

package app

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ponte-ofb/ponte/internal/httpx"
)

// drain is what /readyz knows of a shutdown: once Serve's context ends the
// instance is draining, /readyz answers 503 at once and keeps answering so
// for --drain-delay while every other route still serves, so a load
// balancer's health checks take the instance out of rotation before its
// listener closes (docs/operations.md, deploy/haproxy.cfg).
type drain struct{ draining atomic.Bool }

// ready wraps the readiness check: 503 {"status":"draining"} once draining.
func (d *drain) ready(next http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if d.draining.Load() {
			// A load balancer must not reuse this connection for traffic.
			w.Header().Set("Connection", "close")
			httpx.WriteJSON(w, r, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
			return
		}
		next.ServeHTTP(w, r)
	}
}

// start turns /readyz unready and waits delay, the time a load balancer
// needs to notice.
func (d *drain) start(delay time.Duration) {
	d.draining.Store(true)
	if delay > 0 {
		time.Sleep(delay)
	}
}

// Draining reports whether the instance has started shutting down
// (/readyz answers 503).
func (a *App) Draining() bool { return a.drain.draining.Load() }

// waitDrain is Serve's first step of a shutdown: unready, then the drain delay.
func (a *App) waitDrain(ctx context.Context) {
	if a.Config.DrainDelay > 0 {
		a.Logger.InfoContext(ctx, "draining: /readyz answers 503 until the listener closes", "drain_delay", a.Config.DrainDelay)
	}
	a.drain.start(a.Config.DrainDelay)
}

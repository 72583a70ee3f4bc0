// Package app wires Ponte together: configuration, database, services, HTTP
// routes and background sweeps. It holds no business rules.
package app

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ponte-ofb/ponte/api"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/cards"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
	"github.com/ponte-ofb/ponte/internal/holder"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/lifecycle"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/pcm"
	"github.com/ponte-ofb/ponte/internal/recurring"
	"github.com/ponte-ofb/ponte/internal/sandboxapp"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/vault"
	"github.com/ponte-ofb/ponte/internal/webhooks"
	"github.com/ponte-ofb/ponte/web"
)

// App is a running Ponte: its database, services and HTTP handler.
type App struct {
	Config  config.Config
	Logger  *slog.Logger
	DB      *store.DB
	Apps    *auth.Applications
	Tokens  *auth.Tokens
	Tickets *holder.Tickets
	Cards   *cards.Service
	// Customers are holder partners' end users and their accounts.
	Customers *customers.Service
	// DataAPI serves and imports the account data of the Resources v3 and
	// Accounts 2.4.2 APIs.
	DataAPI *dataapi.Service
	// Payments is the Payments API v4 consent service (holder side).
	Payments *payments.Service
	// Recurring is the Automatic Payments v2 recurring-consent service for
	// sweeping accounts (holder side).
	Recurring *recurring.Service
	// DataConsents is the Consents API v3 data-sharing consent service (holder side).
	DataConsents *dataconsents.Service
	// ITP is the initiator side: brands, journeys and Open Keys journey sessions.
	ITP   *itp.Service
	Vault *vault.Vault
	// AuthServer is the holder-side authorization server (PAR, authorize, code grant).
	AuthServer *oidc.Server
	// Interactions run the holder's consent journey (login, consent, cancel).
	Interactions *holder.Interactions
	// SandboxApp is the sandbox stand-in for the demo partner's app (sandbox only).
	SandboxApp *sandboxapp.App
	// ITPFlow is the initiator's redirect flow at brands (consents, PAR, callback).
	ITPFlow *itpflow.Flow
	// PCM records journey steps and serves the report API, the funnel and
	// the admin dashboard.
	PCM *pcm.Handler
	// PCMForwarder sends recorded steps to the PCM (started by Serve; tests
	// call Drain). PCMReceiver is the sandbox's own PCM (nil otherwise).
	PCMForwarder *pcm.Forwarder
	PCMReceiver  *pcm.Receiver
	// SandboxBrandID is the brand that is Ponte's own holder side (sandbox only).
	SandboxBrandID     string
	sandboxITPClientID string
	Clock              clock.Clock

	// Jobs is the durable job queue: started by Serve; tests call Jobs.RunDue.
	Jobs *jobs.Client
	// Webhooks records events for partners' webhooks, in the caller's transaction.
	Webhooks *webhooks.Emitter
	// WebhookService manages subscriptions and the delivery log.
	WebhookService *webhooks.Service

	// Demo is the sandbox demo application and its secret (sandbox only).
	Demo       *auth.Application
	DemoSecret string

	handler  http.Handler
	pages    *template.Template
	partners partners
}

// Option changes how New builds the App (tests inject a clock).
type Option func(*App)

// WithClock makes the App use c instead of the system clock.
func WithClock(c clock.Clock) Option { return func(a *App) { a.Clock = c } }

// NewLogger returns the logger for format ("text" or "json"), tagging each
// record with the request's correlation id.
func NewLogger(w io.Writer, format string) *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(w, nil)
	if format == "json" {
		h = slog.NewJSONHandler(w, nil)
	}
	return slog.New(httpx.LogHandler{Handler: h})
}

// New opens the database (migrating it), loads or creates the signing key,
// creates the sandbox demo application in sandbox mode and builds the routes.
// cfg must have been through Finish.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, opts ...Option) (*App, error) {
	a := &App{Config: cfg, Logger: logger, Clock: clock.System{}}
	for _, o := range opts {
		o(a)
	}
	// The keys are generated while the database opens and migrates.
	waitKeys := createKeys(cfg)
	db, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir, Logger: logger})
	if kerr := waitKeys(); kerr != nil || err != nil {
		if err == nil {
			db.Close()
		}
		return nil, errors.Join(err, kerr)
	}
	a.DB = db
	warnSharedDataDirs(ctx, logger, cfg.DataDir, db)
	key, err := auth.LoadOrCreateKey(cfg.SigningKeyFile)
	if err != nil {
		db.Close()
		return nil, err
	}
	if a.Vault, err = vault.LoadOrCreate(cfg.DataKeyPath()); err != nil {
		db.Close()
		return nil, err
	}
	a.Apps = auth.NewApplications(db, a.Clock)
	if a.Tokens, err = auth.NewTokens(key, cfg.PublicURL, cfg.TokenTTL, a.Clock, a.Apps); err != nil {
		db.Close()
		return nil, err
	}
	if cfg.Sandbox() {
		a.Demo, a.DemoSecret, err = a.Apps.EnsureDemo(ctx, filepath.Join(cfg.DataDir, "sandbox-demo-client.json"))
		if err != nil {
			db.Close()
			return nil, err
		}
	}

	if err := a.wireCustomers(ctx); err != nil {
		db.Close()
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Outside the sandbox a ticket's requestUri must be a live pushed request
	// of the authorization server (wired below; the checker reads it lazily).
	var uris holder.RequestURIChecker = pushedRequests{a}
	if cfg.Sandbox() {
		uris = holder.SandboxRequestURIs{}
	}
	mux := http.NewServeMux()
	if err := a.wireDataAPI(mux); err != nil {
		db.Close()
		return nil, err
	}
	a.wireWebhooks(mux, reg)
	if a.Payments, err = a.wirePayments(mux, key); err != nil {
		db.Close()
		return nil, err
	}
	if a.Recurring, err = a.wireRecurring(mux, key); err != nil {
		db.Close()
		return nil, err
	}
	if a.DataConsents, err = a.wireDataConsents(mux, key); err != nil {
		db.Close()
		return nil, err
	}
	a.Tickets = holder.NewTickets(db, a.Clock, uris, holder.NewTicketMetrics(reg), ticketEvents{a.Webhooks})
	a.pages = web.Templates()
	if err := a.wirePCM(mux); err != nil {
		db.Close()
		return nil, err
	}
	if err := a.wirePCMForward(mux, reg); err != nil {
		db.Close()
		return nil, err
	}
	if err := a.wireJourney(ctx, mux, a.pages); err != nil {
		db.Close()
		return nil, err
	}
	if err := a.wireITP(ctx, mux); err != nil {
		db.Close()
		return nil, err
	}
	if err := a.wireAuthorizationServer(mux, key, &auth.Handler{Apps: a.Apps, Tokens: a.Tokens, Logger: logger}); err != nil {
		db.Close()
		return nil, err
	}
	if err := a.wireITPFlow(ctx, mux); err != nil {
		db.Close()
		return nil, err
	}
	(&holder.Handler{
		Tickets: a.Tickets, Interactions: a.Interactions, Verifier: a.Tokens, Pages: a.pages, Logger: logger, Clients: a.AuthServer.Storage(),
		SecureCookies: strings.HasPrefix(cfg.PublicURL, "https://"),
		SandboxLogin:  func(appID string) bool { return a.Demo != nil && appID == a.Demo.ID },
	}).Register(mux)
	if err := a.wireCards(mux, cardEvents{a.Webhooks}); err != nil {
		db.Close()
		return nil, err
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(api.OpenAPI)
	})
	mux.Handle("GET /static/", a.static())
	mux.HandleFunc("GET /{$}", a.root) // pages.go: a page for people, JSON for API clients
	mux.Handle("/", a.fallback(mux))   // unknown paths: Portuguese page or JSON by Accept
	a.handler = httpx.Correlate(httpx.Observe(logger, httpx.NewMetrics(reg), a.guard(mux)))
	return a, nil
}

// Handler is the whole HTTP surface.
func (a *App) Handler() http.Handler { return a.handler }

func (a *App) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.DB.Ping(ctx); err != nil {
		a.Logger.WarnContext(r.Context(), "readiness: database unreachable", "err", err)
		httpx.WriteJSON(w, r, http.StatusServiceUnavailable, map[string]string{"status": "database unreachable"})
		return
	}
	httpx.WriteJSON(w, r, http.StatusOK, map[string]string{"status": "ready", "database": string(a.DB.Engine())})
}

// Sweep runs the periodic housekeeping once: tickets that expired unused are
// counted, and expired holder sessions, idempotency records, used payment
// jti records and authorization server sessions deleted.
func (a *App) Sweep(ctx context.Context) error {
	_, err1 := a.Tickets.Sweep(ctx)
	_, err2 := idempotency.Sweep(ctx, a.DB, a.Clock.Now())
	_, err3 := a.Payments.Sweep(ctx)
	return errors.Join(err1, err2, err3, a.Cards.Sweep(ctx), a.AuthServer.Storage().Sweep(ctx))
}

// Serve serves HTTP (HTTPS with mutual TLS when configured, see tls.go) on ln
// until ctx ends, then shuts down gracefully: the listener closes, in-flight
// requests finish (up to ShutdownTimeout), and the database is closed only
// after every acknowledged write is committed.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// With --tls-cert: HTTPS; with --client-ca also: mutual TLS (tls.go).
	overTLS, err := a.useTLS(srv)
	if err != nil {
		return err
	}
	// Background workers start in this order and stop in reverse once HTTP
	// has drained: the sweeper, PCM forwarding, then the jobs, whose running
	// handlers (webhook deliveries) finish before the database closes.
	workers, err := lifecycle.Start(ctx, a.Jobs, a.PCMForwarder, store.NewSweeper(a.Config.SweepInterval, a.Logger, a.Sweep))
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- serveOn(srv, ln, overTLS) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		a.Logger.Info("shutting down: finishing in-flight requests", "timeout", a.Config.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
		err = srv.Shutdown(sctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("shutdown: requests still running after %s: %w", a.Config.ShutdownTimeout, err)
			srv.Close()
		}
		<-errc
	}
	wctx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
	if werr := workers.Stop(wctx); werr != nil {
		a.Logger.Warn("shutdown: background work interrupted", "err", werr)
	}
	cancel()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close stops the job workers (if Serve left them running) and releases the
// database. Call after Serve returns.
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
	defer cancel()
	_ = a.PCMForwarder.Stop(ctx)
	_ = a.Jobs.Stop(ctx)
	return a.DB.Close()
}

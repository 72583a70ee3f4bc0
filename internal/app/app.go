// Package app is Ponte's composition root: New builds the database, the
// services and the HTTP routes in dependency order, and Serve runs them with
// the background workers. Its adapters only translate between the domain
// packages' interfaces; the rules live in those packages.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ponte-ofb/ponte/api"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/cards"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
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
	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/vault"
	"github.com/ponte-ofb/ponte/internal/webhooks"
	"github.com/ponte-ofb/ponte/web"
)

// App is a running Ponte: its database, services and HTTP handler. New
// returns it complete; the fields are for Serve, the CLI and tests to read.
type App struct {
	Config  config.Config
	Logger  *slog.Logger
	DB      *store.DB
	Apps    *auth.Applications
	Tokens  *auth.Tokens
	Tickets *consentflow.Tickets
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
	// Settlement moves holder-side payments' money: the sandbox ledger or
	// the holder partner (--settlement). SettlementPartner serves partners'
	// outcome reports and the settlement deadline in either mode.
	Settlement        settlement.Settlement
	SettlementPartner *settlement.Partner
	// DataConsents is the Consents API v3 data-sharing consent service (holder side).
	DataConsents *dataconsents.Service
	// ITP is the initiator side: brands, journeys and Open Keys journey sessions.
	ITP   *itp.Service
	Vault *vault.Vault
	// AuthServer is the holder-side authorization server (PAR, authorize, code grant).
	AuthServer *oidc.Server
	// Interactions run the holder's consent journey (login, consent, cancel).
	Interactions *consentflow.Interactions
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
	// Directory verifies software statements and, in the sandbox, is the
	// sandbox's own Directory (directory.go).
	Directory *Directory
	// SandboxBrandID is the brand that is Ponte's own holder side (sandbox only).
	SandboxBrandID string
	Clock          clock.Clock

	// Jobs is the durable job queue: started by Serve; tests call Jobs.RunDue.
	Jobs *jobs.Client
	// Webhooks records events for partners' webhooks, in the caller's transaction.
	Webhooks *webhooks.Emitter
	// WebhookService manages subscriptions and the delivery log.
	WebhookService *webhooks.Service

	// Demo is the sandbox demo application and its secret (sandbox only).
	Demo       *auth.Application
	DemoSecret string

	handler http.Handler
	drain   *drain // /readyz's draining state (drain.go)
}

// Option changes how New builds the App (tests inject a clock).
type Option func(*options)

type options struct {
	clock   clock.Clock
	version string // ponte_build_info's (metrics.go)
}

// WithClock makes the App use c instead of the system clock.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// NewLogger returns the logger for format ("text" or "json"), tagging each
// record with the request's correlation id.
func NewLogger(w io.Writer, format string) *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(w, nil)
	if format == "json" {
		h = slog.NewJSONHandler(w, nil)
	}
	return slog.New(httpx.LogHandler{Handler: h})
}

// base is what every part of Ponte is built on: the configuration, the
// logger, the clock and the database.
type base struct {
	cfg    config.Config
	logger *slog.Logger
	clock  clock.Clock
	db     *store.DB
}

// New opens the database (migrating it), loads or creates the signing key,
// creates the sandbox demo application in sandbox mode and builds the routes.
// cfg must have been through Finish.
//
// Each service is a local value built from the values it needs, in
// dependency order, so a service used before it exists does not compile.
// Routes are registered once the values their handlers call exist: the
// consent APIs' handlers, for instance, verify tokens with the authorization
// server, which needs the holder's journey, which needs the consent services.
// If anything fails, the database opened here is closed.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, opts ...Option) (_ *App, err error) {
	o := options{clock: clock.System{}}
	for _, opt := range opts {
		opt(&o)
	}
	clk := o.clock
	// Every metric and log line names this instance (metrics.go).
	cfg.Instance = instanceName(cfg)
	logger = logger.With("instance", cfg.Instance)
	// The keys are generated while the database opens and migrates.
	keys := keyFiles(cfg)
	waitKeys := createKeys(cfg, keys, clk.Now())
	db, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir, Logger: logger})
	kerr := waitKeys()
	if err != nil {
		return nil, errors.Join(err, kerr)
	}
	// The one cleanup path: whatever fails from here on, the database closes.
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	if kerr != nil {
		return nil, kerr
	}
	if err := organisationID(&cfg); err != nil {
		return nil, err
	}
	// The database was first used with these keys, or refuses them.
	if err := verifyKeys(ctx, db, clk.Now(), cfg, keys); err != nil {
		return nil, err
	}
	b := base{cfg: cfg, logger: logger, clock: clk, db: db}
	warnSharedDataDirs(ctx, logger, cfg.DataDir, db)
	key, err := auth.LoadOrCreateKey(cfg.SigningKeyFile)
	if err != nil {
		return nil, err
	}
	vlt, err := vault.LoadOrCreate(cfg.DataKeyPath())
	if err != nil {
		return nil, err
	}
	apps := auth.NewApplications(db, clk)
	if _, err := apps.BackfillSlugs(ctx); err != nil { // applications made before slugs (issue 16 §6)
		return nil, err
	}
	tokens, err := auth.NewTokens(key, cfg.PublicURL, cfg.TokenTTL, clk, apps)
	if err != nil {
		return nil, err
	}
	var (
		demo       *auth.Application
		demoSecret string
	)
	if cfg.Sandbox() {
		if demo, demoSecret, err = ensureDemo(ctx, cfg, apps); err != nil {
			return nil, err
		}
		if demo.OrganisationID == "" {
			// The demo stands for an initiator of its own organisation: what
			// it signs names it, and Ponte's signed answers are addressed to it.
			if demo, err = apps.SetOrganisationID(ctx, demo.ID, uuid.NewString()); err != nil {
				return nil, err
			}
		}
	}
	custs, err := newCustomers(ctx, b, demo)
	if err != nil {
		return nil, err
	}
	metrics, reg := newMetrics(cfg.Instance, db.Engine(), o.version)
	pages := web.Templates()
	mux := http.NewServeMux()

	// The job queue, and the webhooks that ride on it.
	jobq := jobs.New(db, jobs.Config{Clock: clk, Logger: logger,
		Metrics: jobs.NewMetrics(reg, jobs.MetricsOptions{DB: db, Clock: clk, Logger: logger}), Lease: cfg.JobLease})
	events, hooks := wireWebhooks(b, mux, reg, jobq, vlt, tokens)

	// The holder side's consent services and the authorization server's
	// storage (the journey and ticket checks read its pushed requests).
	asStorage := oidc.NewStorage(db, clk)
	settle, settlePartner := wireSettlement(b, mux, jobq, events, tokens)
	pay := payments.NewService(db, clk, logger, cfg.PublicURL)
	pay.Settlement = settle
	pay.Register(jobq)
	rec := recurring.NewService(db, clk, logger, cfg.PublicURL)
	rec.Settlement = settle
	rec.Events = recurringPaymentEvents{events}
	rec.Register(jobq)
	settlePartner.Outcomes = settlementOutcomes{pix: pay, recurring: rec, pixHold: pay}
	dcs := dataconsents.NewService(db, clk, logger, cfg.PublicURL)
	dcs.Register(jobq)
	data, err := newDataAPI(ctx, b, consentGrants{dcs}, custs, demo)
	if err != nil {
		return nil, err
	}

	// PCM: every journey step is recorded, with its forwarding outbox row.
	steps := &pcm.Recorder{Clock: clk, DB: db, Outbox: true}
	pcmHandler, err := wirePCM(b, mux, steps, pages, tokens)
	if err != nil {
		return nil, err
	}
	forwarder, receiver, err := wirePCMForward(b, mux, reg)
	if err != nil {
		return nil, err
	}
	// The Open Finance Directory: the statement verifier of dynamic client
	// registration and, in the sandbox, the sandbox's own Directory.
	dir, err := wireDirectory(b, mux, pcmHandler.AdminToken)
	if err != nil {
		return nil, err
	}

	// The holder's consent flow: tickets, the journey, the WebView.
	// Outside the sandbox a ticket's requestUri must be a live pushed
	// request of the authorization server.
	var uris consentflow.RequestURIChecker = pushedRequests{requests: asStorage, apps: apps, payments: pay, recurring: rec, data: dcs}
	if cfg.Sandbox() {
		uris = consentflow.SandboxRequestURIs{}
	}
	tickets := consentflow.NewTickets(db, clk, uris, consentflow.NewTicketMetrics(reg), ticketEvents{events})
	tickets.ReadPageNames(pageNames{})
	sandboxApp, demo, partnerApps, err := wireSandboxApp(ctx, b, mux, pages, apps, custs, demo, demoSecret)
	if err != nil {
		return nil, err
	}
	// Recurring and data-sharing kinds refuse others' ids by prefix without
	// reading, so they come before payments: any consent is one query.
	interactions := consentflow.NewInteractions(db, clk,
		consentflow.Consents{recurring.JourneyKind{Service: rec}, dataconsents.JourneyKind{Service: dcs}, payments.JourneyKind{Service: pay}},
		partnerApps, holderSteps{steps}, cfg.PublicURL)
	demoID := ""
	if demo != nil {
		demoID = demo.ID
	}
	consentFlow := &consentflow.Handler{
		Tickets: tickets, Interactions: interactions, Verifier: tokens, Pages: pages, Logger: logger, Clients: asStorage,
		SecureCookies: strings.HasPrefix(cfg.PublicURL, "https://"),
		SandboxLogin:  func(appID string) bool { return demoID != "" && appID == demoID },
	}
	consentFlow.Register(mux)

	// The authorization server, and the resource APIs whose tokens it issues.
	// Ponte's own pages: home, unknown paths, authorization errors a person reads.
	own := &site{pages: pages, logger: logger, clock: clk, cfg: cfg, sandbox: demo != nil}
	authServer, err := wireAuthorizationServer(b, mux, key, asStorage, consentFlow.Authorize, own.renderAuthorizeError,
		&auth.Handler{Apps: apps, Tokens: tokens, Logger: logger}, consentStates{apps: apps, payments: pay, recurring: rec, data: dcs},
		registration(b, dir, apps))
	if err != nil {
		return nil, err
	}
	resources := resourceTokens{partners: tokens, server: authServer, apps: apps, sandbox: cfg.Sandbox(), mutualTLS: cfg.MutualTLS()}
	callers := newPaymentCallers(apps) // one cache for both APIs' consent creates
	if err := registerPayments(b, mux, pay, resources, callers, key, events); err != nil {
		return nil, err
	}
	if err := registerRecurring(b, mux, rec, resources, callers, key); err != nil {
		return nil, err
	}
	registerDataConsents(b, mux, dcs, resources, tickets, appNames{apps, asStorage}, pages)
	registerDataAPI(b, mux, data, dataTokens{server: authServer, apps: apps, mutualTLS: cfg.MutualTLS()}, tokens)

	// The initiator side: brands, journeys, sessions and the redirect flow.
	itpService, err := wireITP(ctx, b, mux, jobq, apps, tokens)
	if err != nil {
		return nil, err
	}
	flow, sandboxBrandID, demo, err := wireITPFlow(ctx, b, mux, itpService, apps, asStorage, itpSteps{steps}, pages, tokens,
		itpPayments{jobs: jobq, vault: vlt, events: events}, demo)
	if err != nil {
		return nil, err
	}
	// Open Finance webhooks, both sides (after the payment events are set: it wraps them).
	if err := wireOFWebhooks(b, mux, jobq, pay, rec, flow); err != nil {
		return nil, err
	}

	cardService, err := wireCards(ctx, b, mux, vlt, cardEvents{events}, tokens, demo)
	if err != nil {
		return nil, err
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
	})
	drain := &drain{}
	mux.HandleFunc("GET /readyz", drain.ready(ready(db, logger)))
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(api.OpenAPI)
	})
	mux.Handle("GET /static/", own.static())
	mux.HandleFunc("GET /{$}", own.root) // pages.go: a page for people, JSON for API clients
	mux.Handle("/", own.fallback(mux))   // unknown paths: Portuguese page or JSON by Accept
	var handler http.Handler = httpx.Correlate(httpx.Observe(logger, httpx.NewMetrics(reg), own.guard(mux)))
	if cfg.MutualTLS() {
		// FAPI-BR: the Open Finance routes take only requests with a verified
		// client certificate (the authorization server's policy).
		handler = oidc.CertificatePolicy{Logger: logger, ResourcePrefix: openFinancePrefix,
			ResourceErrors: fapiErrors{payments.ErrorWriter{Clock: clk}}}.Handler(handler)
	}
	return &App{
		Config: cfg, Logger: logger, Clock: clk, DB: db, Vault: vlt, Apps: apps, Tokens: tokens,
		Demo: demo, DemoSecret: demoSecret, Customers: custs, DataAPI: data,
		Jobs: jobq, Webhooks: events, WebhookService: hooks,
		Payments: pay, Recurring: rec, DataConsents: dcs, Settlement: settle, SettlementPartner: settlePartner,
		PCM: pcmHandler, PCMForwarder: forwarder, PCMReceiver: receiver,
		Tickets: tickets, Interactions: interactions, SandboxApp: sandboxApp, AuthServer: authServer,
		ITP: itpService, ITPFlow: flow, SandboxBrandID: sandboxBrandID, Cards: cardService, Directory: dir,
		handler: handler, drain: drain,
	}, nil
}

// openFinancePrefix is the path prefix of the Open Finance Brasil resource APIs.
const openFinancePrefix = "/open-banking/"

// Handler is the whole HTTP surface.
func (a *App) Handler() http.Handler { return a.handler }

// ready answers /readyz: ready when the database answers.
func ready(db *store.DB, logger *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := db.Ping(ctx); err != nil {
			logger.WarnContext(r.Context(), "readiness: database unreachable", "err", err)
			httpx.WriteJSON(w, r, http.StatusServiceUnavailable, map[string]string{"status": "database unreachable"})
			return
		}
		httpx.WriteJSON(w, r, http.StatusOK, map[string]string{"status": "ready", "database": string(db.Engine())})
	}
}

// Sweep runs the periodic housekeeping once: tickets that expired unused are
// counted, and expired holder sessions, idempotency records (the Brick
// consent create's too), used payment jti records and authorization server
// sessions deleted.
func (a *App) Sweep(ctx context.Context) error {
	_, err1 := a.Tickets.Sweep(ctx)
	_, err2 := idempotency.Sweep(ctx, a.DB, a.Clock.Now())
	_, err3 := a.Payments.Sweep(ctx)
	_, err4 := a.ITPFlow.SweepKeys(ctx)
	return errors.Join(err1, err2, err3, err4, a.Cards.Sweep(ctx), a.AuthServer.Storage().Sweep(ctx))
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
		a.waitDrain(ctx) // --drain-delay: unready first, still serving
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

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/sandboxapp"
	"github.com/ponte-ofb/ponte/internal/store"
)

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config.Config
	fs := newFlagSet("ponte serve [flags]", `Runs the HTTP server. With no flags: SQLite at ./data/ponte.db (created and
migrated), sandbox mode, a demo partner application whose credentials are
printed below, listening on 127.0.0.1:8080. SIGINT/SIGTERM shut down
gracefully: in-flight requests finish and every acknowledged write is kept.
--tls-cert and --tls-key serve HTTPS; --client-ca adds mutual TLS for the
Open Finance routes and certificate-bound access tokens (RFC 8705).`, stderr)
	cfg.RegisterServe(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := cfg.Finish(); err != nil {
		return err
	}
	// Listen first: with --addr HOST:0 the default public URL names the real port.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	if cfg.PublicURL == cfg.Scheme()+"://"+cfg.Addr {
		cfg.PublicURL = cfg.Scheme() + "://" + ln.Addr().String()
	}
	logger := app.NewLogger(stderr, cfg.LogFormat)
	a, err := app.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	banner(stdout, a)
	logger.Info("ponte ready", "addr", ln.Addr().String(), "mode", cfg.Mode, "database", a.DB.Where())
	return a.Serve(ctx, ln)
}

// banner prints how to reach Ponte. The demo secret goes to standard output
// only, never to the log.
func banner(w io.Writer, a *app.App) {
	c := a.Config
	fmt.Fprintf(w, "Ponte is running in %s mode on %s (%s)\n", c.Mode, c.PublicURL, engineName(a.DB))
	fmt.Fprintf(w, "  OpenAPI:   %s/openapi.yaml\n", c.PublicURL)
	fmt.Fprintf(w, "  Token:     POST %s/oauth/token\n", c.PublicURL)
	fmt.Fprintf(w, "  Ticket:    POST %s/openfinance/consent-flow/ticket\n", c.PublicURL)
	fmt.Fprintf(w, "  WebView:   %s/openfinance/consent-flow/webview?ticket=TICKET_ID\n", c.PublicURL)
	fmt.Fprintf(w, "  Payments:  POST %s/open-banking/payments/v4/consents\n", c.PublicURL)
	fmt.Fprintf(w, "  Authorize: %s/.well-known/openid-configuration (PAR, authorize, code id_token)\n", c.PublicURL)
	fmt.Fprintf(w, "  Wallet:    POST %s/cards-pci/{proxy}/wallet/{ApplePay|GooglePay}/brand/Mastercard\n", c.PublicURL)
	fmt.Fprintf(w, "  Webhooks:  %s/webhooks/v1/subscriptions\n", c.PublicURL)
	fmt.Fprintf(w, "  Health:    %s/healthz  %s/readyz  %s/metrics\n", c.PublicURL, c.PublicURL, c.PublicURL)
	switch {
	case c.MutualTLS():
		fmt.Fprintf(w, "  TLS:       mutual TLS; a client certificate is required on /open-banking/..., /oauth/par and\n")
		fmt.Fprintf(w, "             Open Finance token requests; tokens requested with a certificate are bound to it\n")
	case c.TLS():
		fmt.Fprintf(w, "  TLS:       HTTPS without client certificates (no --client-ca)\n")
	}
	if a.Demo != nil {
		fmt.Fprintf(w, "Sandbox demo partner application:\n")
		fmt.Fprintf(w, "  client_id:     %s\n", a.Demo.ClientID)
		fmt.Fprintf(w, "  client_secret: %s\n", a.DemoSecret)
		fmt.Fprintf(w, "  companyKey:    %s\n", a.Demo.CompanyKey)
		fmt.Fprintf(w, "  scopes:        %s\n", strings.Join(a.Demo.Scopes, " "))
		fmt.Fprintf(w, "  sandbox cards: sandbox-card-active (ACTIVE), sandbox-card-creating (CREATING)\n")
		fmt.Fprintf(w, "  partner app:   %s%s (the demo partner's deep link)\n", c.PublicURL, sandboxapp.PathApp)
		fmt.Fprintf(w, "Sandbox demo users (log in at the partner app or the WebView, password %q):\n", sandboxapp.Password)
		for _, u := range customers.SandboxCustomers {
			fmt.Fprintf(w, "  %s  %-16s account %s / %s / %s %s\n", u.Document, u.Name, u.Account.ISPB, u.Account.Issuer, u.Account.Number, u.Account.AccountType)
		}
	}
}

func engineName(db *store.DB) string {
	return string(db.Engine()) + " " + db.Where()
}

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config.Config
	fs := newFlagSet("ponte migrate [flags]", "Applies every pending database migration and exits. 'ponte serve' also migrates at start-up.", stderr)
	cfg.RegisterStorage(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	db, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(stdout, "database %s is up to date\n", engineName(db))
	return nil
}

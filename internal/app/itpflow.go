package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/sandboxapp"
)

// SandboxBrandName is the brand Ponte registers for its own holder side.
const SandboxBrandName = "Ponte Sandbox"

// SandboxInitiatorName is the name the holder's pages (WebView, hand-off,
// Meus compartilhamentos) show for Ponte-as-initiator at its own sandbox
// brand: people read it, so it is Portuguese.
const SandboxInitiatorName = "Ponte Iniciadora (sandbox)"

// appendNew is uris with u added once.
func appendNew(uris []string, u string) []string {
	if slices.Contains(uris, u) {
		return uris
	}
	return append(slices.Clone(uris), u)
}

// sandboxITPName names the partner application that is Ponte-as-initiator's
// client registration at its own holder side.
const sandboxITPName = "Ponte ITP (sandbox brand client)"

// brandClients builds and caches the FAPI client of each brand: Ponte's
// client_id there, its signing key file, and its client certificate when the
// brand requires mutual TLS.
type brandClients struct {
	a  *App
	mu sync.Mutex
	// clients by brand id, rebuilt when the brand changes.
	clients map[string]cachedClient
}

type cachedClient struct {
	updated time.Time
	client  *fapiclient.Client
}

// Client implements itpflow.Brands.
func (b *brandClients) Client(ctx context.Context, brandID string) (*fapiclient.Client, error) {
	brand, err := b.a.ITP.Brand(ctx, brandID)
	if errors.Is(err, itp.ErrBrandNotFound) || (err == nil && !brand.Enabled) {
		return nil, itpflow.ErrBrandNotFound
	}
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.clients[brandID]; ok && c.updated.Equal(brand.UpdatedAt) {
		return c.client, nil
	}
	key, err := auth.LoadOrCreateKey(brand.SigningKeyFile)
	if err != nil {
		return nil, fmt.Errorf("app: brand %s signing key: %w", brandID, err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if brand.MTLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(brand.MTLSCertFile, brand.MTLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("app: brand %s client certificate: %w", brandID, err)
		}
		transport.TLSClientConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	c := &fapiclient.Client{
		Issuer: brand.Issuer, APIBase: brand.APIBaseURL, ClientID: brand.ClientID, Key: key.Private, KeyID: key.KeyID,
		HTTP: &http.Client{Timeout: 15 * time.Second, Transport: transport}, Clock: b.a.Clock,
	}
	if b.clients == nil {
		b.clients = map[string]cachedClient{}
	}
	b.clients[brandID] = cachedClient{updated: brand.UpdatedAt, client: c}
	return c, nil
}

// wireITPFlow builds the initiator's redirect flow and the Brick
// payment-initiation endpoints, and in the sandbox registers Ponte's own
// holder side as the brand "Ponte Sandbox". Call after wireITP and
// wireAuthorizationServer.
func (a *App) wireITPFlow(ctx context.Context, mux *http.ServeMux) error {
	a.ITPFlow = &itpflow.Flow{DB: a.DB, Clock: a.Clock, Brands: &brandClients{a: a}, Logger: a.Logger, Recorder: itpSteps{a.PCM.Service.Recorder}}
	if a.Config.Sandbox() {
		if err := a.ensureSandboxBrand(ctx); err != nil {
			return err
		}
		a.ITPFlow.Redirects = a.registerSandboxRedirect
	}
	(&itpflow.BrickHandler{Flow: a.ITPFlow, Verifier: a.Tokens, Logger: a.Logger,
		Redirects: func(ctx context.Context, applicationID string) ([]string, error) {
			app, err := a.Apps.Get(ctx, applicationID)
			if err != nil {
				return nil, err
			}
			return app.RedirectURLs, nil
		}}).Register(mux)
	(&itpflow.JourneyHandler{Flow: a.ITPFlow, Sessions: a.ITP, Pages: a.pages, Logger: a.Logger, PublicURL: a.Config.PublicURL}).Register(mux)
	return nil
}

// ensureSandboxBrand registers Ponte's own holder side as a brand: a partner
// application (signing key in the data directory, scopes payments and
// recurring-payments) registered with the authorization server as an
// initiator, and the brand pointing at Ponte's public URL.
func (a *App) ensureSandboxBrand(ctx context.Context) error {
	keyFile := filepath.Join(a.Config.DataDir, sandboxITPKeyFile)
	key, err := auth.LoadOrCreateKey(keyFile)
	if err != nil {
		return err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.Private.PublicKey, KeyID: key.KeyID, Algorithm: string(jose.PS256), Use: "sig"}}})
	if err != nil {
		return err
	}
	apps, err := a.Apps.List(ctx)
	if err != nil {
		return err
	}
	var client *auth.Application
	for _, app := range apps {
		if app.Name == sandboxITPName && app.CompanyKey == "PONTE-ITP" {
			client = app
		}
	}
	if client == nil {
		if client, _, err = a.Apps.Create(ctx, auth.NewApplication{Name: sandboxITPName, CompanyKey: "PONTE-ITP",
			Scopes: []string{"payments", "recurring-payments"}, JWKS: jwks}); err != nil {
			return fmt.Errorf("app: sandbox brand client: %w", err)
		}
	} else if !sameKeys(client.JWKS, jwks) {
		if client, err = a.Apps.SetJWKS(ctx, client.ID, jwks); err != nil {
			return err
		}
	}
	a.sandboxITPClientID = client.ClientID
	if err := a.registerSandboxRedirect(ctx, "", strings.TrimSuffix(a.Config.PublicURL, "/")+"/journey/callback"); err != nil {
		return err
	}
	base := strings.TrimSuffix(a.Config.PublicURL, "/")
	brand, err := a.ITP.EnsureBrand(ctx, itp.Brand{Name: SandboxBrandName, Issuer: base, APIBaseURL: base,
		ClientID: client.ClientID, SigningKeyFile: keyFile, Enabled: true})
	if err != nil {
		return fmt.Errorf("app: sandbox brand: %w", err)
	}
	a.SandboxBrandID = brand.ID
	return a.ensureSandboxJourney(ctx)
}

// SandboxJourneyAlias is the journey the sandbox demo application uses by default.
const SandboxJourneyAlias = "sandbox"

// ensureSandboxJourney gives the sandbox demo application what it needs to
// try the initiator loop with one curl: a default journey offering the
// sandbox brand, with modest sweeping limits, and a redirect URL at the
// sandbox's own "done" page.
func (a *App) ensureSandboxJourney(ctx context.Context) error {
	if a.Demo == nil {
		return nil
	}
	if _, err := a.ITP.Journey(ctx, SandboxJourneyAlias); errors.Is(err, itp.ErrJourneyNotFound) {
		_, err := a.ITP.CreateJourney(ctx, itp.Journey{Alias: SandboxJourneyAlias, Name: "Sandbox sweeping", BrandIDs: []string{a.SandboxBrandID},
			Settings: []itp.Setting{{Key: "SWEEPING_CONFIGURATION", Value: json.RawMessage(`{"transactionLimit":"500.00","periodicLimits":{"day":{"quantityLimit":3}}}`)}}})
		if err != nil {
			if _, again := a.ITP.Journey(ctx, SandboxJourneyAlias); again != nil { // another instance made it first
				return fmt.Errorf("app: sandbox journey: %w", err)
			}
		}
	} else if err != nil {
		return err
	}
	if _, ok, err := a.ITP.ApplicationSetting(ctx, a.Demo.ID, itp.SettingJourneyDefaultAlias); err != nil {
		return err
	} else if !ok {
		if err := a.ITP.SetDefaultJourney(ctx, a.Demo.ID, SandboxJourneyAlias); err != nil {
			return fmt.Errorf("app: sandbox default journey: %w", err)
		}
	}
	demo, err := a.Apps.AddRedirectURL(ctx, a.Demo.ID, strings.TrimSuffix(a.Config.PublicURL, "/")+sandboxapp.PathDone)
	if err != nil {
		return err
	}
	a.Demo = demo
	return nil
}

// registerSandboxRedirect adds redirectURI to Ponte's client registration at
// its own holder side (the sandbox brand); other brands are left alone.
func (a *App) registerSandboxRedirect(ctx context.Context, brandID, redirectURI string) error {
	if brandID != "" && brandID != a.SandboxBrandID {
		return nil
	}
	st := a.AuthServer.Storage()
	current, err := st.Clients().Client(ctx, a.sandboxITPClientID)
	var uris []string
	var jwks json.RawMessage
	if err == nil {
		if slices.Contains(current.RedirectURIs, redirectURI) && current.Name == SandboxInitiatorName {
			return nil
		}
		uris = current.RedirectURIs
	}
	app, err := a.Apps.Get(ctx, a.sandboxITPClientID)
	if err != nil {
		return err
	}
	jwks = app.JWKS
	_, err = st.RegisterInitiator(ctx, oidc.Initiator{ClientID: app.ClientID, Name: SandboxInitiatorName, JWKS: jwks,
		RedirectURIs: appendNew(uris, redirectURI)})
	return err
}

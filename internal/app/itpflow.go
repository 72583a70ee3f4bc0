package app

import (
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/sandboxapp"
	"github.com/ponte-ofb/ponte/internal/vault"
	"github.com/ponte-ofb/ponte/internal/webhooks"
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
	brands *itp.Service
	clock  clock.Clock
	// orgID is Ponte's organisation id: the iss of what it signs at brands.
	orgID string
	mu    sync.Mutex
	// clients by brand id, rebuilt when the brand changes.
	clients map[string]cachedClient
	// enc decrypts the id_tokens brands encrypt to Ponte (itp_jwks.go).
	enc *itpEncryption
}

type cachedClient struct {
	updated time.Time // the brand's, when the client was built
	built   time.Time
	client  *fapiclient.Client
}

// brandClientTTL bounds how long a brand's client is reused, and with it the
// discovery document and JWKS it fetched once: a brand that rotates its
// signing keys or moves an endpoint is seen within it on every instance. A
// change to the brand's row (ponte brands update) is seen at once, since the
// row is read on every call.
const brandClientTTL = 15 * time.Minute

// Client implements itpflow.Brands.
func (b *brandClients) Client(ctx context.Context, brandID string) (*fapiclient.Client, error) {
	brand, err := b.brands.Brand(ctx, brandID)
	if errors.Is(err, itp.ErrBrandNotFound) || (err == nil && !brand.Enabled) {
		return nil, itpflow.ErrBrandNotFound
	}
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	if c, ok := b.clients[brandID]; ok && c.updated.Equal(brand.UpdatedAt) && now.Sub(c.built) < brandClientTTL && !now.Before(c.built) {
		return c.client, nil
	}
	key, err := b.brands.BrandSigningKey(ctx, brandID)
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
		OrganisationID: b.orgID, BrandOrganisationID: brand.OrganisationID,
		HTTP: &http.Client{Timeout: 15 * time.Second, Transport: transport}, Clock: b.clock,
	}
	b.enc.configure(c, brandID)
	if b.clients == nil {
		b.clients = map[string]cachedClient{}
	}
	b.clients[brandID] = cachedClient{updated: brand.UpdatedAt, built: now, client: c}
	return c, nil
}

// wireITPFlow builds the initiator's redirect flow (its steps recorded
// with steps) and the payments it initiates at brands (their jobs on
// pay.jobs, tokens sealed with pay.vault, events through pay.events), the
// Brick payment-initiation endpoints, the journey pages and the Open Keys
// sweeping transfers, and in the sandbox registers Ponte's own holder side
// as the brand "Ponte Sandbox" (clients being the authorization server's
// registrations there) and gives demo, the demo application, a default
// journey. It returns the
// flow, the sandbox brand's id ("" outside the sandbox) and demo as updated.
func wireITPFlow(ctx context.Context, b base, mux *http.ServeMux, brands *itp.Service, apps *auth.Applications, clients *oidc.Storage,
	steps itpflow.StepRecorder, pages *template.Template, verifier httpx.TokenVerifier, pay itpPayments,
	demo *auth.Application) (*itpflow.Flow, string, *auth.Application, error) {
	// Brands' signing keys are kept in the database, sealed with the data
	// key; keys of brands added before, still in files, are imported first.
	brands.Keys = pay.vault
	if n, err := brands.ImportBrandKeys(ctx); err != nil {
		return nil, "", nil, err
	} else if n > 0 {
		b.logger.InfoContext(ctx, "initiator: brands' signing keys imported into the database", "brands", n)
	}
	brandSet := &brandClients{brands: brands, clock: b.clock, orgID: b.cfg.OrganisationID}
	enc, err := loadITPEncryption(b.cfg)
	if err != nil {
		return nil, "", nil, err
	}
	brandSet.enc = enc
	flow := &itpflow.Flow{DB: b.db, Clock: b.clock, Brands: brandSet, Logger: b.logger, Recorder: steps}
	flow.Payments = &itpflow.Payments{DB: b.db, Clock: b.clock, Brands: brandSet, Vault: pay.vault,
		Initiator: initiatorIdentity(b), Events: paymentEvents{pay.events}, Logger: b.logger}
	flow.Payments.Register(pay.jobs)
	if err := flow.Payments.ScheduleSweep(ctx); err != nil {
		return nil, "", nil, fmt.Errorf("itpflow: schedule the payments' sweep: %w", err)
	}
	if flow.Payments.Initiator.CNPJ == "" {
		b.logger.WarnContext(ctx, "initiator: --itp-cnpj (PONTE_ITP_CNPJ) is not set: payments at brands are not initiated until it is")
	}
	var brandID string
	if b.cfg.Sandbox() {
		sb, err := ensureSandboxBrand(ctx, b, apps, brands, clients, enc)
		if err != nil {
			return nil, "", nil, err
		}
		if enc != nil {
			enc.requiredAt = sb.brandID // Ponte registered its encryption key there
		}
		if demo, err = ensureSandboxJourney(ctx, b, apps, brands, sb.brandID, demo); err != nil {
			return nil, "", nil, err
		}
		flow.Redirects, brandID = sb.registerRedirect, sb.brandID
	}
	(&itpflow.BrickHandler{Flow: flow, Verifier: verifier, Logger: b.logger,
		Redirects: func(ctx context.Context, applicationID string) ([]string, error) {
			app, err := apps.Get(ctx, applicationID)
			if err != nil {
				return nil, err
			}
			return app.RedirectURLs, nil
		}}).Register(mux)
	mux.Handle("GET "+PathITPJWKS, itpJWKS{brands: brands, clients: brandSet, enc: enc, logger: b.logger})
	(&itpflow.JourneyHandler{Flow: flow, Sessions: brands, Pages: pages, Logger: b.logger, PublicURL: b.cfg.PublicURL}).Register(mux)
	(&itpflow.TransfersHandler{Transfers: &itpflow.Transfers{Flow: flow, Payments: flow.Payments, Sessions: brands},
		Verifier: verifier, Logger: b.logger}).Register(mux)
	return flow, brandID, demo, nil
}

// itpPayments is what the initiator's payments ride on: the job queue, the
// data key that seals the brands' tokens, and the webhook emitter.
type itpPayments struct {
	jobs   *jobs.Client
	vault  *vault.Vault
	events *webhooks.Emitter
}

// initiatorIdentity is Ponte's identity as a payment initiator (--itp-cnpj,
// --itp-ispb); the sandbox defaults to the sandbox institution's CNPJ.
func initiatorIdentity(b base) itpflow.Initiator {
	id := itpflow.Initiator{CNPJ: b.cfg.ITPCNPJ, ISPB: b.cfg.ITPISPB}
	if id.CNPJ == "" && b.cfg.Sandbox() {
		id.CNPJ = dataapi.SandboxInstitution.CompanyCNPJ
	}
	if id.ISPB == "" && len(id.CNPJ) == 14 {
		id.ISPB = id.CNPJ[:8]
	}
	return id
}

// paymentEvents turns the status changes of payments Ponte initiated into
// webhook events for the partner: ids, status and rejection reason, never
// tokens, accounts or documents.
type paymentEvents struct{ w *webhooks.Emitter }

// PaymentChanged implements itpflow.PaymentEvents.
func (e paymentEvents) PaymentChanged(ctx context.Context, tx *sql.Tx, p *itpflow.Payment) error {
	data := map[string]any{"endToEndId": p.EndToEndID, "status": p.Status, "brandId": p.BrandID}
	if p.PaymentID != "" {
		data["paymentId"] = p.PaymentID
	}
	if p.RejectionCode != "" || p.RejectionDetail != "" {
		data["rejectionReason"] = map[string]string{"code": p.RejectionCode, "detail": p.RejectionDetail}
	}
	if p.Error != "" {
		data["error"] = p.Error
	}
	name := itpflow.EventPaymentInitiationStatusChanged
	if p.Kind == itpflow.PaymentKindSweeping {
		name = itpflow.EventSweepingTransferStatusChanged
		data["id"], data["externalId"], data["journeySessionId"], data["recurringConsentId"] = p.ID, p.ExternalID, p.SessionID, p.ConsentID
	} else {
		data["consentId"] = p.ConsentID
	}
	return e.w.Emit(ctx, tx, webhooks.Event{
		// One event per change: a status can come back (PDNG → ACCP), so the
		// change's time is part of the id.
		ID:            fmt.Sprintf("itp-payment-%s-%s-%d", p.ID, p.Status, p.UpdatedAt.UnixMilli()),
		ApplicationID: p.ApplicationID, Context: itpflow.EventContext, Name: name,
		EntityID: p.ID, Time: p.UpdatedAt, Data: data,
	})
}

// sandboxBrand is Ponte's own holder side as a brand of its initiator side
// (sandbox only): Ponte-as-initiator's client_id there and the brand's id.
type sandboxBrand struct {
	brandID, clientID string
	apps              *auth.Applications
	clients           *oidc.Storage
	// webhookURIs are Ponte-as-initiator's webhook base URLs at the brand
	// (Open Finance webhooks, see ofwebhooks.go).
	webhookURIs []string
	// enc, when set, is registered too: the brand encrypts id_tokens to Ponte.
	enc *itpEncryption
}

// ensureSandboxBrand registers Ponte's own holder side as a brand: a partner
// application (signing key in the data directory, scopes payments and
// recurring-payments) registered with the authorization server as an
// initiator, and the brand pointing at Ponte's public URL. Both sides are
// Ponte, so the application's and the brand's organisation id are Ponte's
// own (cfg.OrganisationID), as they would be at a real holder.
func ensureSandboxBrand(ctx context.Context, b base, apps *auth.Applications, brands *itp.Service, clients *oidc.Storage,
	enc *itpEncryption) (sandboxBrand, error) {
	keyFile := filepath.Join(b.cfg.KeyDir(), sandboxITPKeyFile)
	key, err := auth.LoadOrCreateKey(keyFile)
	if err != nil {
		return sandboxBrand{}, err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.Private.PublicKey, KeyID: key.KeyID, Algorithm: string(jose.PS256), Use: "sig"}}})
	if err != nil {
		return sandboxBrand{}, err
	}
	list, err := apps.List(ctx)
	if err != nil {
		return sandboxBrand{}, err
	}
	var client *auth.Application
	for _, app := range list {
		if app.Name == sandboxITPName && app.CompanyKey == "PONTE-ITP" {
			client = app
		}
	}
	if client == nil {
		if client, _, err = apps.Create(ctx, auth.NewApplication{Name: sandboxITPName, CompanyKey: "PONTE-ITP",
			Scopes: []string{"payments", "recurring-payments"}, JWKS: jwks, OrganisationID: b.cfg.OrganisationID}); err != nil {
			return sandboxBrand{}, fmt.Errorf("app: sandbox brand client: %w", err)
		}
	} else if !sameKeys(client.JWKS, jwks) {
		if client, err = apps.SetJWKS(ctx, client.ID, jwks); err != nil {
			return sandboxBrand{}, err
		}
	}
	if client.OrganisationID != b.cfg.OrganisationID { // a data directory from before organisation ids
		if client, err = apps.SetOrganisationID(ctx, client.ID, b.cfg.OrganisationID); err != nil {
			return sandboxBrand{}, fmt.Errorf("app: sandbox brand client: %w", err)
		}
	}
	base := strings.TrimSuffix(b.cfg.PublicURL, "/")
	sb := sandboxBrand{clientID: client.ClientID, apps: apps, clients: clients, webhookURIs: sandboxWebhookURIs(b.cfg.PublicURL)}
	sb.enc = enc // its encryption key is registered with the signing keys
	if err := sb.register(ctx, base+"/journey/callback"); err != nil {
		return sandboxBrand{}, err
	}
	brand, err := brands.EnsureBrand(ctx, itp.Brand{Name: SandboxBrandName, Issuer: base, APIBaseURL: base,
		ClientID: client.ClientID, OrganisationID: b.cfg.OrganisationID, SigningKeyFile: keyFile, Enabled: true})
	if err != nil {
		return sandboxBrand{}, fmt.Errorf("app: sandbox brand: %w", err)
	}
	if brand.OrganisationID != b.cfg.OrganisationID {
		if brand, err = brands.SetBrandOrganisation(ctx, brand.ID, b.cfg.OrganisationID); err != nil {
			return sandboxBrand{}, fmt.Errorf("app: sandbox brand: %w", err)
		}
	}
	sb.brandID = brand.ID
	return sb, nil
}

// SandboxJourneyAlias is the journey the sandbox demo application uses by default.
const SandboxJourneyAlias = "sandbox"

// ensureSandboxJourney gives demo, the sandbox demo application, what it
// needs to try the initiator loop with one curl: a default journey offering
// the sandbox brand, with modest sweeping limits, and a redirect URL at the
// sandbox's own "done" page. It returns demo as updated.
func ensureSandboxJourney(ctx context.Context, b base, apps *auth.Applications, journeys *itp.Service, brandID string,
	demo *auth.Application) (*auth.Application, error) {
	if demo == nil {
		return nil, nil
	}
	if _, err := journeys.Journey(ctx, SandboxJourneyAlias); errors.Is(err, itp.ErrJourneyNotFound) {
		_, err := journeys.CreateJourney(ctx, itp.Journey{Alias: SandboxJourneyAlias, Name: "Sandbox sweeping", BrandIDs: []string{brandID},
			Settings: []itp.Setting{{Key: "SWEEPING_CONFIGURATION", Value: json.RawMessage(`{"transactionLimit":"500.00","periodicLimits":{"day":{"quantityLimit":3}}}`)}}})
		if err != nil {
			if _, again := journeys.Journey(ctx, SandboxJourneyAlias); again != nil { // another instance made it first
				return nil, fmt.Errorf("app: sandbox journey: %w", err)
			}
		}
	} else if err != nil {
		return nil, err
	}
	if _, ok, err := journeys.ApplicationSetting(ctx, demo.ID, itp.SettingJourneyDefaultAlias); err != nil {
		return nil, err
	} else if !ok {
		if err := journeys.SetDefaultJourney(ctx, demo.ID, SandboxJourneyAlias); err != nil {
			return nil, fmt.Errorf("app: sandbox default journey: %w", err)
		}
	}
	return apps.AddRedirectURL(ctx, demo.ID, strings.TrimSuffix(b.cfg.PublicURL, "/")+sandboxapp.PathDone)
}

// registerRedirect adds redirectURI to Ponte's client registration at its
// own holder side when brandID is the sandbox brand; other brands are left
// alone (itpflow.RedirectRegistrar).
func (s sandboxBrand) registerRedirect(ctx context.Context, brandID, redirectURI string) error {
	if brandID != "" && brandID != s.brandID {
		return nil
	}
	return s.register(ctx, redirectURI)
}

// register adds redirectURI to Ponte's client registration at its own
// holder side.
func (s sandboxBrand) register(ctx context.Context, redirectURI string) error {
	app, err := s.apps.Get(ctx, s.clientID)
	if err != nil {
		return err
	}
	current, err := s.clients.Clients().Client(ctx, s.clientID)
	var uris []string
	if err == nil {
		if slices.Contains(current.RedirectURIs, redirectURI) && current.Name == SandboxInitiatorName &&
			oidc.OrganisationID(current) == app.OrganisationID && s.enc.registered(current) &&
			slices.Equal(oidc.WebhookURIs(current), s.webhookURIs) {
			return nil
		}
		uris = current.RedirectURIs
	}
	jwks, err := s.enc.clientJWKS(app.JWKS)
	if err != nil {
		return err
	}
	_, err = s.clients.RegisterInitiator(ctx, oidc.Initiator{ClientID: app.ClientID, Name: SandboxInitiatorName, JWKS: jwks,
		RedirectURIs: appendNew(uris, redirectURI), OrganisationID: app.OrganisationID, WebhookURIs: s.webhookURIs})
	return err
}

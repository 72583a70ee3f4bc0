package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/luikyv/go-oidc/pkg/goidc"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
	"github.com/ponte-ofb/ponte/internal/holder"
	"github.com/ponte-ofb/ponte/internal/ofb"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/recurring"
	"github.com/ponte-ofb/ponte/internal/sandboxapp"
)

// partners finds holder partners among Ponte's applications. In the sandbox
// the demo partner's app is Ponte's sandbox partner app: its deep link is
// that page (unless the operator registered another) and its login tokens
// are signed with the sandbox partner key, registered on the application.
type partners struct {
	apps        *auth.Applications
	demoID      string
	demoDeepURL string
}

// Partner implements holder.Partners.
func (p partners) Partner(ctx context.Context, applicationID string) (*holder.Partner, error) {
	a, err := p.apps.Get(ctx, applicationID)
	if errors.Is(err, auth.ErrNotFound) {
		return nil, holder.ErrPartnerNotFound
	}
	if err != nil {
		return nil, err
	}
	if a.Disabled {
		return nil, holder.ErrPartnerNotFound
	}
	out := &holder.Partner{ApplicationID: a.ID, ClientID: a.ClientID, Name: a.Name, CompanyKey: a.CompanyKey, DeepLinkURL: a.DeepLinkURL}
	if len(a.JWKS) > 0 {
		if err := json.Unmarshal(a.JWKS, &out.Keys); err != nil {
			return nil, fmt.Errorf("app: partner %s jwks: %w", a.ID, err)
		}
	}
	if a.ID == p.demoID && out.DeepLinkURL == "" {
		out.DeepLinkURL = p.demoDeepURL
	}
	return out, nil
}

// demoUsers are the sandbox demo partner's customers.
type demoUsers struct {
	customers *customers.Service
	appID     string
}

func (d demoUsers) DemoUser(ctx context.Context, document string) (string, bool) {
	c, err := d.customers.Customer(ctx, d.appID, document)
	if err != nil {
		return "", false
	}
	return c.Name, true
}

// wireJourney builds the holder's consent journey: the interaction service,
// the authorization server's journey step and, in the sandbox, the demo
// partner app with its signing key.
func (a *App) wireJourney(ctx context.Context, mux *http.ServeMux, pages *template.Template) error {
	p := partners{apps: a.Apps}
	if a.Demo != nil {
		key, err := auth.LoadOrCreateKey(filepath.Join(a.Config.DataDir, sandboxPartnerKeyFile))
		if err != nil {
			return err
		}
		a.SandboxApp = &sandboxapp.App{
			PublicURL: a.Config.PublicURL, ClientID: a.Demo.ClientID, ClientSecret: a.DemoSecret, Key: key,
			Users: demoUsers{a.Customers, a.Demo.ID}, Clock: a.Clock, HTTP: &http.Client{Timeout: 10 * time.Second},
			Pages: pages, Logger: a.Logger,
		}
		jwks, err := a.SandboxApp.PublicJWKS()
		if err != nil {
			return err
		}
		// The sandbox partner key is registered only while the demo
		// application has no keys: keys an operator set (apps set-keys) are
		// theirs and survive restarts, even without the sandbox key.
		switch {
		case len(a.Demo.JWKS) == 0:
			if a.Demo, err = a.Apps.SetJWKS(ctx, a.Demo.ID, jwks); err != nil {
				return fmt.Errorf("app: register the sandbox partner key: %w", err)
			}
		case !hasKey(a.Demo.JWKS, key.KeyID):
			a.Logger.WarnContext(ctx, "the demo application's registered keys do not include the sandbox partner key: "+
				"logins from the sandbox partner app will be refused until its key is registered too",
				"client_id", a.Demo.ClientID, "kid", key.KeyID, "key_file", filepath.Join(a.Config.DataDir, sandboxPartnerKeyFile))
		}
		a.SandboxApp.Register(mux)
		p.demoID, p.demoDeepURL = a.Demo.ID, strings.TrimSuffix(a.Config.PublicURL, "/")+sandboxapp.PathApp
	}
	a.Interactions = holder.NewInteractions(a.DB, a.Clock, holder.Consents{payments.JourneyKind{Service: a.Payments}, recurring.JourneyKind{Service: a.Recurring}, dataconsents.JourneyKind{Service: a.DataConsents}}, p,
		holderSteps{a.PCM.Service.Recorder}, a.Config.PublicURL)
	a.partners = p
	return nil
}

// hasKey reports whether the key set stored holds a key with id kid.
func hasKey(stored json.RawMessage, kid string) bool {
	var s jose.JSONWebKeySet
	return json.Unmarshal(stored, &s) == nil && len(s.Key(kid)) > 0
}

func sameKeys(stored json.RawMessage, want []byte) bool {
	var s, w jose.JSONWebKeySet
	if json.Unmarshal(stored, &s) != nil || json.Unmarshal(want, &w) != nil || len(s.Keys) != len(w.Keys) {
		return false
	}
	for i := range s.Keys {
		if s.Keys[i].KeyID != w.Keys[i].KeyID {
			return false
		}
	}
	return true
}

// journey is the authorization server's step for the holder (oidc.Config.Journey).
func (a *App) journey(w http.ResponseWriter, r *http.Request, as *goidc.AuthnSession) (goidc.AuthnStatus, error) {
	ctx := r.Context()
	it, err := a.Interactions.ByCallback(ctx, as.CallbackID)
	var partner *holder.Partner
	if errors.Is(err, holder.ErrInteractionNotFound) {
		it, partner, err = a.Interactions.Begin(ctx, holder.BeginRequest{
			CallbackID: as.CallbackID, RequestURI: as.PushedAuthReqID, ClientID: as.ClientID,
			ConsentID: oidc.ConsentID(as), Desktop: desktop(r.UserAgent()),
			RedirectURI: as.RedirectURI, Device: ofb.DeviceFromUserAgent(r.UserAgent()),
		})
		switch {
		case errors.Is(err, holder.ErrConsentNotAwaiting):
			return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeAccessDenied, "the payment consent is not awaiting authorisation")
		case errors.Is(err, holder.ErrForeignConsent):
			return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeAccessDenied, "the payment consent belongs to another client")
		case errors.Is(err, holder.ErrNoHolder):
			return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeAccessDenied, "the consent's logged user is not a customer of this holder")
		}
	}
	if err != nil {
		a.Logger.ErrorContext(ctx, "authorization journey", "err", err)
		return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeInternalError, "the holder could not start the journey")
	}
	switch it.Status {
	case holder.InteractionApproved:
		// The id_token's subject is the customer's id at the holder, never the CPF.
		as.SetUserID(it.CustomerID)
		as.GrantScopes(as.Scopes)
		return goidc.StatusSuccess, nil
	case holder.InteractionCancelled:
		return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeAccessDenied, "the user rejected the payment consent")
	}
	if !a.Clock.Now().Before(it.ExpiresAt) {
		return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeAccessDenied, "the payment consent expired before the user authorised it")
	}
	if partner == nil {
		if partner, err = a.partners.Partner(ctx, it.ApplicationID); err != nil {
			a.Logger.ErrorContext(ctx, "authorization journey: partner", "err", err)
			return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeAccessDenied, "the holder partner is unavailable")
		}
	}
	switch {
	case partner.DeepLinkURL != "" && it.Handoff:
		a.renderHandoff(w, r, it, partner)
	case partner.DeepLinkURL != "":
		http.Redirect(w, r, deepLink(partner.DeepLinkURL, it), http.StatusSeeOther)
	default:
		ticket, err := a.Tickets.IssueForJourney(ctx, it, partner.CompanyKey)
		if err != nil {
			a.Logger.ErrorContext(ctx, "authorization journey: ticket", "err", err)
			return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeInternalError, "the holder could not open the WebView")
		}
		http.Redirect(w, r, strings.TrimSuffix(a.Config.PublicURL, "/")+"/openfinance/consent-flow/webview?"+url.Values{"ticket": {ticket}}.Encode(), http.StatusSeeOther)
	}
	return goidc.StatusInProgress, nil
}

// deepLink is the partner's deep link with the two values seed 000 says the
// partner's app collects: request_uri and client_id.
func deepLink(base string, it *holder.Interaction) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	q := u.Query()
	q.Set("request_uri", it.RequestURI)
	q.Set("client_id", it.ClientID)
	u.RawQuery = q.Encode()
	return u.String()
}

// desktop reports whether a User-Agent is a desktop browser (not a phone or
// tablet): there a partner that only has an app is reached by QR code.
func desktop(ua string) bool {
	for _, mobile := range []string{"Mobi", "Android", "iPhone", "iPad", "iPod"} {
		if strings.Contains(ua, mobile) {
			return false
		}
	}
	return ua != ""
}

type handoffPage struct {
	PartnerName, DeepLink, CallbackID, Initiator string
	// Kind is the consent's kind (payment, sweeping, data): the page names
	// what the phone will authorise.
	Kind string
	QR   template.URL // a data: URL Ponte drew, safe to embed
}

// renderHandoff shows the partner's deep link as a QR code for the phone and
// follows the journey until the phone finishes it.
func (a *App) renderHandoff(w http.ResponseWriter, r *http.Request, it *holder.Interaction, p *holder.Partner) {
	link := deepLink(p.DeepLinkURL, it)
	png, err := qrcode.Encode(link, qrcode.Medium, 320)
	if err != nil {
		a.Logger.ErrorContext(r.Context(), "hand-off QR code", "err", err)
		http.Error(w, "Falha temporária", http.StatusInternalServerError)
		return
	}
	name := it.ClientID
	if n, ok := a.AuthServer.Storage().ClientName(r.Context(), it.ClientID); ok {
		name = n
	}
	kind := "payment"
	if c, err := a.Interactions.Consent(r.Context(), it); err == nil {
		kind = c.Kind
	} else {
		a.Logger.WarnContext(r.Context(), "hand-off: read consent", "err", err) // the page still works, worded for a payment
	}
	data := handoffPage{PartnerName: p.Name, DeepLink: link, CallbackID: it.CallbackID, Initiator: name, Kind: kind,
		QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := a.pages.ExecuteTemplate(w, "handoff", data); err != nil {
		a.Logger.ErrorContext(r.Context(), "render hand-off", "err", err)
	}
}

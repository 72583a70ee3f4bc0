package app

import (
	"context"
	"database/sql"
	"errors"
	"net/http"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/recurring"
)

// wireAuthorizationServer mounts the holder-side authorization server
// (internal/oidc) beside Ponte's partner token endpoint: the partner handler
// keeps its routes, except that POST /oauth/token is shared — the dispatcher
// sends authorization_code/refresh_token requests to the authorization server
// and everything else (client_credentials) to the partner handler. journey is
// the holder's step of each authorization request; renderError shows people
// the errors that cannot go back to the initiator; consents binds refresh
// tokens to their consent; reg, when set, serves dynamic client registration.
func wireAuthorizationServer(b base, mux *http.ServeMux, key *auth.SigningKey, storage *oidc.Storage, journey oidc.JourneyFunc,
	renderError goidc.RenderErrorFunc, partner *auth.Handler, consents oidc.ConsentChecker, reg *oidc.Registration) (*oidc.Server, error) {
	partnerMux := http.NewServeMux()
	partner.Register(partnerMux)
	srv, err := oidc.New(oidc.Config{
		Issuer: b.cfg.PublicURL, Key: key, Logger: b.logger,
		Storage:     storage,
		Journey:     journey,
		MutualTLS:   b.cfg.MutualTLS(),
		RenderError: renderError,
		Consents:    consents,
		// Dynamic client registration (dcr.go); nil without a Directory.
		Registration: reg,
	})
	if err != nil {
		return nil, err
	}
	srv.Mount(mux, partnerMux)
	// The partner handler's other routes.
	mux.Handle("GET /.well-known/jwks.json", partnerMux)
	return srv, nil
}

// pushedRequests checks consent-flow tickets outside the sandbox: the
// requestUri must name a live pushed authorization request of clientId, and
// when that request's consent (payment, recurring or data sharing) names the
// user logged in at the initiator, the ticket's documentNumber must be that
// user's.
type pushedRequests struct {
	requests  *oidc.Storage
	apps      *auth.Applications
	payments  *payments.Service
	recurring *recurring.Service
	data      *dataconsents.Service
}

// CheckRequestURI implements consentflow.RequestURIChecker.
func (p pushedRequests) CheckRequestURI(ctx context.Context, tx *sql.Tx, requestURI, clientID, documentNumber string) error {
	if requestURI == dataconsents.MySharingRequestURI {
		// "Meus compartilhamentos": the partner (clientId is its own) opens
		// the page for one of its customers.
		return p.mySharing(ctx, tx, clientID, documentNumber)
	}
	as, err := p.requests.PushedRequest(ctx, tx, requestURI, clientID)
	if errors.Is(err, oidc.ErrPushedRequestNotFound) {
		return consentflow.ErrRequestURINotFound
	}
	if err != nil {
		return err
	}
	consentID := oidc.ConsentID(as)
	if consentID == "" {
		return nil
	}
	want, err := p.payments.LoggedUserDocument(ctx, tx, consentID)
	if errors.Is(err, payments.ErrNotFound) {
		// Not a payment consent: a recurring consent for sweeping, maybe.
		want, err = p.recurring.LoggedUserDocument(ctx, tx, consentID)
		if errors.Is(err, recurring.ErrNotFound) {
			err = payments.ErrNotFound
		}
	}
	if errors.Is(err, payments.ErrNotFound) {
		// A data-sharing consent (Consents v3), maybe.
		want, err = p.data.LoggedUserDocument(ctx, tx, consentID)
		if errors.Is(err, dataconsents.ErrNotFound) {
			err = payments.ErrNotFound
		}
	}
	if errors.Is(err, payments.ErrNotFound) {
		return consentflow.ErrRequestURINotFound
	}
	if err != nil {
		return err
	}
	if want != "" && want != documentNumber {
		return consentflow.ErrDocumentMismatch
	}
	return nil
}

// mySharing accepts a "Meus compartilhamentos" ticket when clientID is a
// partner application serving documentNumber as a customer.
func (p pushedRequests) mySharing(ctx context.Context, tx *sql.Tx, clientID, documentNumber string) error {
	app, err := p.apps.Get(ctx, clientID)
	if errors.Is(err, auth.ErrNotFound) || (err == nil && app.Disabled) {
		return consentflow.ErrRequestURINotFound
	}
	if err != nil {
		return err
	}
	if _, err := customers.CustomerTx(ctx, tx, app.ID, documentNumber); err != nil {
		if errors.Is(err, customers.ErrCustomerNotFound) {
			return consentflow.ErrDocumentMismatch
		}
		return err
	}
	return nil
}

package app

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/oidc"
)

// newDataAPI builds the account-data service and, in the sandbox (demo is
// the demo application), gives the demo customer 47742663023 three accounts
// and 2,200 transactions (idempotent; safe when several instances start at
// once). The sandbox accounts extend the customers' seed, hence custs.
func newDataAPI(ctx context.Context, b base, grants dataapi.Grants, custs *customers.Service, demo *auth.Application) (*dataapi.Service, error) {
	svc := dataapi.NewService(b.db, b.clock, grants)
	if demo == nil {
		return svc, nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := svc.EnsureSandbox(ctx, custs, demo.ID); err != nil {
		return nil, err
	}
	return svc, nil
}

// registerDataAPI registers the Resources v3 / Accounts 2.4.2 routes of svc
// and the admin import (admin: Ponte's partner tokens).
func registerDataAPI(b base, mux *http.ServeMux, svc *dataapi.Service, tokens dataapi.TokenVerifier, admin httpx.TokenVerifier) {
	inst := dataapi.Institution{BrandName: "Ponte", CompanyCNPJ: dataapi.SandboxInstitution.CompanyCNPJ, CompeCode: dataapi.SandboxInstitution.CompeCode}
	if b.cfg.Sandbox() {
		inst = dataapi.SandboxInstitution
	}
	(&dataapi.Handler{
		Service: svc, Tokens: tokens, Admin: admin, Institution: inst,
		BaseURL: strings.TrimSuffix(b.cfg.PublicURL, "/"), Logger: b.logger,
	}).Register(mux)
}

// dataTokens introspects the authorization server's opaque access tokens for
// the data APIs, admitted as the other Open Finance routes admit them
// (fapiToken).
type dataTokens struct {
	server *oidc.Server
	apps   *auth.Applications
	// mutualTLS requires certificate-bound tokens (RFC 8705).
	mutualTLS bool
}

// VerifyToken implements dataapi.TokenVerifier.
func (v dataTokens) VerifyToken(ctx context.Context, raw string) (*dataapi.Token, error) {
	info, err := fapiToken(ctx, v.server, raw, v.mutualTLS)
	switch {
	case errors.Is(err, httpx.ErrInvalidToken):
		return nil, dataapi.ErrInvalidToken
	case err != nil:
		return nil, err
	}
	app, err := v.apps.Get(ctx, info.ClientID)
	if errors.Is(err, auth.ErrNotFound) || (err == nil && app.Disabled) {
		return nil, dataapi.ErrInvalidToken
	}
	if err != nil {
		return nil, err
	}
	t := &dataapi.Token{ApplicationID: app.ID, ClientID: app.ClientID, Scopes: strings.Fields(info.Scopes),
		ExpiresAt: time.Unix(int64(info.ExpiresAtTimestamp), 0).UTC()}
	if info.Confirmation != nil {
		t.CertThumbprint = info.Confirmation.ClientCertThumbprint
	}
	return t, nil
}

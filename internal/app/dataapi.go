package app

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/oidc"
)

// wireDataAPI builds the account-data service and the Resources v3 /
// Accounts 2.4.2 routes and the admin import, and in the sandbox gives the
// demo customer 47742663023 three accounts and 2,200 transactions
// (idempotent; safe when several instances start at once). Call it after
// wireCustomers: the sandbox accounts extend the customers' seed.
func (a *App) wireDataAPI(mux *http.ServeMux) error {
	a.DataAPI = dataapi.NewService(a.DB, a.Clock, a.dataGrants())
	if a.Demo != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := a.DataAPI.EnsureSandbox(ctx, a.Customers, a.Demo.ID); err != nil {
			return err
		}
	}
	inst := dataapi.Institution{BrandName: "Ponte", CompanyCNPJ: dataapi.SandboxInstitution.CompanyCNPJ, CompeCode: dataapi.SandboxInstitution.CompeCode}
	if a.Config.Sandbox() {
		inst = dataapi.SandboxInstitution
	}
	(&dataapi.Handler{
		Service: a.DataAPI, Tokens: dataTokens{a}, Admin: a.Tokens, Institution: inst,
		BaseURL: strings.TrimSuffix(a.Config.PublicURL, "/"), Logger: a.Logger,
	}).Register(mux)
	return nil
}

// dataTokens introspects the authorization server's opaque access tokens for
// the data APIs. It reads a.AuthServer at call time: the routes are wired
// before the authorization server.
type dataTokens struct{ a *App }

// VerifyToken implements dataapi.TokenVerifier.
func (v dataTokens) VerifyToken(ctx context.Context, raw string) (*dataapi.Token, error) {
	info, err := v.a.AuthServer.TokenInfo(ctx, raw)
	var oerr goidc.Error
	switch {
	case errors.As(err, &oerr), errors.Is(err, oidc.ErrNotFound):
		return nil, dataapi.ErrInvalidToken
	case err != nil:
		return nil, err
	case !info.IsActive:
		return nil, dataapi.ErrInvalidToken
	}
	app, err := v.a.Apps.Get(ctx, info.ClientID)
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

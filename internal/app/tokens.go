package app

import (
	"context"
	"errors"
	"strings"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/oidc"
)

// resourceTokens verifies the access tokens the Open Finance resource routes
// (/open-banking/...) accept: a partner application's JWT from Ponte's own
// token endpoint, or an initiator's opaque token from the authorization
// server (client_credentials with private_key_jwt, possibly bound to its
// certificate). Either way the principal is the partner application whose
// client_id the token was issued to.
type resourceTokens struct {
	partners *auth.Tokens
	server   *oidc.Server
	apps     *auth.Applications
}

// VerifyAccessToken implements httpx.TokenVerifier.
func (v resourceTokens) VerifyAccessToken(ctx context.Context, raw string) (*httpx.Principal, error) {
	if strings.Count(raw, ".") == 2 {
		return v.partners.VerifyAccessToken(ctx, raw)
	}
	info, err := v.server.TokenInfo(ctx, raw)
	var oerr goidc.Error
	switch {
	case errors.As(err, &oerr), errors.Is(err, oidc.ErrNotFound):
		return nil, httpx.ErrInvalidToken
	case err != nil:
		return nil, err
	case !info.IsActive:
		return nil, httpx.ErrInvalidToken
	}
	app, err := v.apps.Get(ctx, info.ClientID)
	if errors.Is(err, auth.ErrNotFound) || (err == nil && app.Disabled) {
		return nil, httpx.ErrInvalidToken
	}
	if err != nil {
		return nil, err
	}
	p := &httpx.Principal{ApplicationID: app.ID, ClientID: app.ClientID, CompanyKey: app.CompanyKey, Scopes: strings.Fields(info.Scopes)}
	if info.Confirmation != nil {
		p.CertThumbprint = info.Confirmation.ClientCertThumbprint
	}
	return p, nil
}

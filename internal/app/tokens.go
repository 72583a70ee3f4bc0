package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/oidc"
)

// resourceTokens verifies the access tokens the Open Finance resource routes
// (/open-banking/...) accept: an initiator's opaque token from the
// authorization server (fapiToken: a client that authenticated with
// private_key_jwt or tls_client_auth, bound to its certificate under mutual
// TLS). In the sandbox a partner application's JWT from Ponte's own token
// endpoint (client secret) is accepted too, so the demo application can try
// the APIs with curl; outside it such a token is a 401 there, as FAPI-BR
// admits only FAPI clients. Either way the principal is the partner
// application whose client_id the token was issued to.
type resourceTokens struct {
	partners *auth.Tokens
	server   *oidc.Server
	apps     *auth.Applications
	// sandbox admits partner JWTs (see above).
	sandbox bool
	// mutualTLS requires certificate-bound tokens (RFC 8705).
	mutualTLS bool
}

// VerifyAccessToken implements httpx.TokenVerifier.
func (v resourceTokens) VerifyAccessToken(ctx context.Context, raw string) (*httpx.Principal, error) {
	if strings.Count(raw, ".") == 2 {
		if !v.sandbox {
			return nil, httpx.ErrInvalidToken
		}
		return v.partners.VerifyAccessToken(ctx, raw)
	}
	info, err := fapiToken(ctx, v.server, raw, v.mutualTLS)
	if err != nil {
		return nil, err
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

// errNotFAPIToken refuses an access token the Open Finance routes do not
// take; it wraps httpx.ErrInvalidToken, so callers answer 401 invalid_token.
var errNotFAPIToken = fmt.Errorf("%w: not a FAPI client's token", httpx.ErrInvalidToken)

// fapiToken introspects an opaque access token of the authorization server
// and admits it for the Open Finance routes: active, issued to a registered
// client that authenticates with private_key_jwt or tls_client_auth (FAPI-BR's
// only client authentications) and, under mutual TLS, bound to a certificate
// (RFC 8705; the route then checks the request presents it). Any refusal
// wraps httpx.ErrInvalidToken.
func fapiToken(ctx context.Context, server *oidc.Server, raw string, mutualTLS bool) (goidc.TokenInfo, error) {
	info, err := server.TokenInfo(ctx, raw)
	var oerr goidc.Error
	switch {
	case errors.As(err, &oerr), errors.Is(err, oidc.ErrNotFound):
		return goidc.TokenInfo{}, httpx.ErrInvalidToken
	case err != nil:
		return goidc.TokenInfo{}, err
	case !info.IsActive:
		return goidc.TokenInfo{}, httpx.ErrInvalidToken
	}
	client, err := server.Storage().Clients().Client(ctx, info.ClientID)
	switch {
	case errors.Is(err, oidc.ErrNotFound):
		return goidc.TokenInfo{}, httpx.ErrInvalidToken
	case err != nil:
		return goidc.TokenInfo{}, err
	}
	if m := client.TokenAuthnMethod; m != goidc.ClientAuthnPrivateKeyJWT && m != goidc.ClientAuthnTLS {
		return goidc.TokenInfo{}, errNotFAPIToken
	}
	if mutualTLS && (info.Confirmation == nil || info.Confirmation.ClientCertThumbprint == "") {
		return goidc.TokenInfo{}, errNotFAPIToken
	}
	return info, nil
}

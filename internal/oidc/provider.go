// Package oidc is Ponte's holder-side authorization server for Open Finance
// initiators: pushed authorization requests, the authorization endpoint, the
// authorization_code grant, discovery and the JWKS. The protocol is
// github.com/luikyv/go-oidc (FAPI 1 Advanced profile, as FAPI-BR requires);
// this package only configures it, stores its state in Ponte's database and
// decides where the user goes once an authorization request arrives, and
// which routes a client certificate is required on under mutual TLS
// (CertificatePolicy).
package oidc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/luikyv/go-oidc/pkg/goidc"
	"github.com/luikyv/go-oidc/pkg/provider"

	"github.com/ponte-ofb/ponte/internal/auth"
)

// Endpoints of the authorization server (discovery advertises them under the issuer).
const (
	PathDiscovery = "/.well-known/openid-configuration"
	PathJWKS      = "/oauth/jwks"
	PathPAR       = "/oauth/par"
	PathAuthorize = "/oauth/authorize"
	PathToken     = "/oauth/token"
)

// Lifetimes in seconds.
const (
	RequestURILifetime  = 60  // request_uri of a pushed request (FAPI-BR)
	AccessTokenLifetime = 300 // opaque access tokens for initiators
	IDTokenLifetime     = 300
	// MaxRefreshTokenLifetime bounds a refresh token whose consent has no
	// end (an open-ended sweeping or data-sharing consent): such a token
	// lives this long from its issue or its last use, whichever is later.
	// A consent with an end date caps its refresh token at that date.
	MaxRefreshTokenLifetime = 365 * 24 * 60 * 60
)

// Prefixes of the consent-bound scopes. Payment and data-sharing consents
// use FAPI-BR's consent:{consentId}; recurring consents (urn:ponte:rc:…) use
// the Automatic Payments v2 security section's recurring-consent:{recurringConsentId}.
const (
	ConsentScopePrefix          = "consent:"
	RecurringConsentScopePrefix = "recurring-consent:"
	// recurringIDPrefix starts every recurring consent id (recurring.IDPrefix;
	// oidc does not import the domain package).
	recurringIDPrefix = "urn:ponte:rc:"
)

// Scopes an Open Finance client may ask for: openid, the APIs' scopes and the
// consent-bound scopes consent:{consentId} and recurring-consent:{recurringConsentId}
// (Ponte's consent ids are urn:ponte:<uuid>, urn:ponte:rc:<uuid> for recurring ones).
var (
	ScopePayments = goidc.NewScope("payments")
	// ScopeRecurringPayments is the Automatic Payments v2 scope (recurring
	// consents for sweeping), requested with the recurring-consent:{id} of one.
	ScopeRecurringPayments = goidc.NewScope("recurring-payments")
	// ScopeConsents is the Consents API v3 scope (data-sharing consents),
	// requested with the consent:{id} of one.
	ScopeConsents = goidc.NewScope("consents")
	// ScopeResources and ScopeAccounts are the data APIs' scopes (Resources
	// v3, Accounts 2.4.2), asked for with a data-sharing consent:{id}.
	ScopeResources = goidc.NewScope("resources")
	ScopeAccounts  = goidc.NewScope("accounts")
	// ScopeConsent is consent:{id} of a payment or data-sharing consent. A
	// recurring consent is not named this way: its scope is the
	// specification's recurring-consent:{id}, and Ponte's own initiator side,
	// the only client that ever used consent:urn:ponte:rc:…, now pushes that.
	ScopeConsent = goidc.NewDynamicScope("consent", func(requested string) bool {
		id, ok := strings.CutPrefix(requested, ConsentScopePrefix+"urn:ponte:")
		return ok && id != "" && !strings.HasPrefix(requested, ConsentScopePrefix+recurringIDPrefix)
	})
	// ScopeRecurringConsent is recurring-consent:{recurringConsentId}
	// (automatic-payments-2.0.0.yml, security section).
	ScopeRecurringConsent = goidc.NewDynamicScope("recurring-consent", func(requested string) bool {
		id, ok := strings.CutPrefix(requested, RecurringConsentScopePrefix+recurringIDPrefix)
		return ok && id != ""
	})
)

// ConsentChecker tells the authorization server whether the consent a
// token is bound to still allows tokens. The holder's consent services
// answer it (adapted in internal/app).
type ConsentChecker interface {
	// ConsentStatus reports whether consentID, created by the application
	// whose client_id is clientID, is active (AUTHORISED and not past its
	// expiry) and when it expires on Ponte's clock (zero: it has no end).
	// A consent that does not exist, or belongs to another client, is not
	// active (and no error).
	ConsentStatus(ctx context.Context, clientID, consentID string) (active bool, expiresAt time.Time, err error)
}

// Config configures the authorization server.
type Config struct {
	// Issuer is Ponte's public URL.
	Issuer string
	// Key signs id tokens (PS256, with its key id); its retired keys are
	// published in the JWKS beside it.
	Key     *auth.SigningKey
	Storage *Storage
	Logger  *slog.Logger
	// Journey runs when /oauth/authorize has accepted a pushed request, and
	// again each time the user's browser comes back to
	// /oauth/authorize/{callbackId}: it sends the user to authenticate and
	// decide (StatusInProgress, after writing a redirect), or ends the flow
	// with the user's decision (StatusSuccess with the session's subject and
	// granted scopes set, or StatusFailure with the error the initiator gets).
	Journey JourneyFunc
	// MutualTLS says Ponte serves HTTPS with client certificates (--client-ca):
	// the server then takes the verified client certificate of each request
	// (httpx.ClientCertificate), binds the access tokens it issues to it
	// (RFC 8705, cnf.x5t#S256) and advertises mtls_endpoint_aliases, which are
	// the regular endpoints, since one listener serves both.
	MutualTLS bool
	// Consents, optional, enables refresh tokens: an authorization_code
	// grant for a consent-bound scope whose consent is active gets one,
	// living until the consent's expiry, and each refresh asks again (see
	// refreshPolicy). Without it no refresh token is issued.
	Consents ConsentChecker
	// RenderError, optional, shows the user an authorization error that
	// cannot go back to the initiator (an expired or unknown request_uri, an
	// unknown client): it writes the answer and returns nil, or returns the
	// error for go-oidc's JSON.
	RenderError goidc.RenderErrorFunc
	// Registration, optional, turns on dynamic client registration and
	// management (POST /register, GET|PUT|DELETE /register/{client_id}; dcr.go).
	Registration *Registration
}

// JourneyFunc is the holder's authentication and consent step of an
// authorization request (see Config.Journey).
type JourneyFunc func(w http.ResponseWriter, r *http.Request, as *goidc.AuthnSession) (goidc.AuthnStatus, error)

// Server is the configured go-oidc provider.
type Server struct {
	op      *provider.Provider
	handler http.Handler
	storage *Storage
	logger  *slog.Logger
	refresh refreshPolicy
	// registration says whether the registration routes are served;
	// tlsClientAuth whether registered clients may use tls_client_auth.
	registration, tlsClientAuth bool
}

// New builds the provider.
func New(cfg Config) (*Server, error) {
	if cfg.Key == nil || cfg.Storage == nil || cfg.Logger == nil || cfg.Issuer == "" || cfg.Journey == nil {
		return nil, errors.New("oidc: issuer, key, storage, logger and journey are required")
	}
	issuer := strings.TrimSuffix(cfg.Issuer, "/")
	// go-oidc signs with the first key of the algorithm: the current one.
	// The others follow, public only (Key.JWKS: the retired keys and those
	// a rotation added to the key files since), so what they signed (ID
	// tokens, JARM responses) verifies against the published JWKS.
	jwks := func(context.Context) (goidc.JSONWebKeySet, error) {
		set := goidc.JSONWebKeySet{Keys: []goidc.JSONWebKey{{
			Key: cfg.Key.Private, KeyID: cfg.Key.KeyID, Algorithm: string(goidc.PS256), Use: string(goidc.KeyUsageSignature),
		}}}
		for _, k := range cfg.Key.JWKS().Keys {
			if k.KeyID != cfg.Key.KeyID {
				set.Keys = append(set.Keys, k)
			}
		}
		return set, nil
	}
	s := &Server{storage: cfg.Storage, logger: cfg.Logger,
		refresh: refreshPolicy{consents: cfg.Consents, clock: cfg.Storage.clock}, registration: cfg.Registration != nil,
		tlsClientAuth: cfg.Registration != nil && cfg.MutualTLS}
	op, err := provider.New(goidc.ProfileFAPI1, issuer,
		jwks,
		provider.WithClientStorage(clientStorage(cfg)),
		provider.WithAuthnSessionStorage(cfg.Storage.AuthnSessions()),
		provider.WithGrantSessionStorage(cfg.Storage.GrantSessions()),
		provider.WithJWKSEndpoint(PathJWKS),
		provider.WithPAREndpoint(PathPAR),
		provider.WithAuthorizeEndpoint(PathAuthorize),
		provider.WithTokenEndpoint(PathToken),
		provider.WithScopes(goidc.ScopeOpenID, ScopePayments, ScopeRecurringPayments, ScopeConsents, ScopeResources, ScopeAccounts,
			ScopeConsent, ScopeRecurringConsent),
		provider.WithOpenIDScopeRequired(),
		provider.WithIDTokenSignatureAlgs(goidc.PS256),
		provider.WithIDTokenLifetime(IDTokenLifetime),
		// FAPI-BR's only ID token encryption: RSA-OAEP with A256GCM, for the
		// clients that registered an encryption key (see encryption.go);
		// discovery advertises exactly these, and go-oidc refuses any other
		// id_token_encrypted_response_alg/enc a client registers.
		provider.WithIDTokenEncryption(IDTokenKeyEncAlg),
		provider.WithIDTokenContentEncryptionAlgs(IDTokenContentEncAlg),
		// Request objects are signed (PS256) and pushed: /oauth/authorize only
		// takes client_id and request_uri.
		provider.WithJARRequired(goidc.PS256),
		provider.WithPARRequired(nil, RequestURILifetime),
		provider.WithTokenAuthnMethods(goidc.ClientAuthnPrivateKeyJWT),
		provider.WithPrivateKeyJWTSignatureAlgs(goidc.PS256),
		provider.WithPKCERequired(goidc.CodeChallengeMethodSHA256),
		provider.WithAuthorizationCodeGrant(),
		// Initiators get tokens for the consent APIs with client_credentials
		// and private_key_jwt (partner applications' secret-based
		// client_credentials stay on Ponte's own token endpoint).
		provider.WithClientCredentialsGrant(),
		// A consent-bound scope is the user's grant: only the authorization
		// code flow (the user approved in the journey) may carry it, never a
		// client_credentials token the client asks for by itself. The
		// authorization_code and refresh_token grants ask the consent.
		provider.WithHandleGrantFunc(func(r *http.Request, gi *goidc.GrantInfo) error {
			if gi.GrantType == goidc.GrantClientCredentials && ConsentScopeIn(gi.ActiveScopes) {
				return goidc.NewError(goidc.ErrorCodeInvalidScope,
					"consent:{consentId} and recurring-consent:{recurringConsentId} are granted by the user, not with client_credentials")
			}
			return s.refresh.handleGrant(r.Context(), gi)
		}),
		// Refresh tokens for consent-bound grants (FAPI-BR: the initiator
		// keeps using the consent for its whole life). Not rotated: FAPI-BR
		// requires rotation to be possible to disable and says clients shall
		// not rely on it, and the Open Finance payments test plan checks that
		// the refresh token is not rotated. The lifetime given here is the
		// ceiling; the storage caps each grant at its consent's expiry.
		provider.WithRefreshTokenGrant(s.refresh.shouldIssue, MaxRefreshTokenLifetime),
		// The implicit grant type is what lets the hybrid response type
		// "code id_token" return an id_token from /oauth/authorize.
		provider.WithImplicitGrant(),
		// JARM (response_mode=jwt and its variants) when the client asks:
		// the authorization response is a JWT signed with Ponte's key.
		provider.WithJARM(goidc.PS256),
		// Opaque access tokens, so they can never be confused with Ponte's
		// partner access tokens (JWTs signed with the same key).
		provider.WithTokenOptions(func(goidc.GrantInfo, *goidc.Client) goidc.TokenOptions {
			return goidc.NewOpaqueTokenOptions(goidc.DefaultOpaqueTokenLength, AccessTokenLifetime)
		}),
		provider.WithPolicies(goidc.NewPolicy("ponte-holder", func(*http.Request, *goidc.Client, *goidc.AuthnSession) bool { return true },
			goidc.AuthnFunc(cfg.Journey))),
		provider.WithJWTLeewayTime(30),
		withMutualTLS(cfg.MutualTLS, issuer),
		withRegistration(cfg.Registration, cfg.Storage, cfg.MutualTLS),
		provider.WithNotifyErrorFunc(func(ctx context.Context, err error) {
			s.logger.InfoContext(ctx, "authorization server: request refused", "err", err)
		}),
		withRenderError(cfg.RenderError),
	)
	if err != nil {
		return nil, fmt.Errorf("oidc: provider: %w", err)
	}
	s.op = op
	s.handler = op.Handler()
	return s, nil
}

// Mount registers the authorization server's routes on mux. POST /oauth/token
// is shared: authorization_code and refresh_token requests go to go-oidc,
// everything else (client_credentials for partner applications, and the errors
// for missing or unknown grant types) to partnerToken, Ponte's own token endpoint.
func (s *Server) Mount(mux *http.ServeMux, partnerToken http.Handler) {
	mux.Handle("GET "+PathDiscovery, discovery(s.handler))
	mux.Handle("GET "+PathJWKS, s.handler)
	mux.Handle("POST "+PathPAR, requestObjectLifetime(s.handler, s.logger))
	mux.Handle(PathAuthorize, s.handler)
	mux.Handle(PathAuthorize+"/", s.handler)
	mux.Handle("POST "+PathToken, TokenDispatcher(s.handler, s.tlsClientTokens(partnerToken)))
	if s.registration {
		mux.Handle("POST "+PathRegister, s.registrationHandler())
		mux.Handle(PathRegister+"/{client_id}", s.registrationHandler())
	}
}

// maxTokenForm bounds the token request body read to find its grant type (the
// partner handler applies the same limit).
const maxTokenForm = 64 << 10

// TokenDispatcher routes a token request by its grant_type without consuming
// the body: authorization_code, refresh_token and client_credentials with a
// client assertion (private_key_jwt) → oidcToken, the rest → partnerToken.
func TokenDispatcher(oidcToken, partnerToken http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form, err := peekForm(r) // malformed bodies are the handler's to refuse
		if err != nil {
			http.Error(w, "cannot read the request body", http.StatusBadRequest)
			return
		}
		switch grant := form.Get("grant_type"); {
		case grant == string(goidc.GrantAuthorizationCode), grant == string(goidc.GrantRefreshToken):
			oidcToken.ServeHTTP(w, r)
		case grant == string(goidc.GrantClientCredentials) && form.Get("client_assertion_type") != "":
			// An Open Finance initiator authenticating with private_key_jwt.
			oidcToken.ServeHTTP(w, r)
		default:
			partnerToken.ServeHTTP(w, r)
		}
	})
}

// TokenInfo introspects an access token the server issued (an initiator's
// opaque token): whether it is active, its client, scopes and certificate
// binding.
func (s *Server) TokenInfo(ctx context.Context, token string) (goidc.TokenInfo, error) {
	return s.op.TokenInfo(ctx, token)
}

// Storage returns the server's storage.
func (s *Server) Storage() *Storage { return s.storage }

// withRenderError installs render when there is one (go-oidc refuses nil).
func withRenderError(render goidc.RenderErrorFunc) provider.Option {
	return func(p *provider.Provider) error {
		if render == nil {
			return nil
		}
		return provider.WithRenderErrorFunc(render)(p)
	}
}

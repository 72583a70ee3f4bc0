package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/luikyv/go-oidc/pkg/goidc"
)

// Initiator is an Open Finance client (a payment initiator) to register.
type Initiator struct {
	ClientID string
	Name     string
	// JWKS is the client's public key set, inline (JSON). It verifies its
	// request objects and private_key_jwt client assertions (PS256). An
	// encryption key in it (use "enc", RSA, alg RSA-OAEP or none) makes the
	// client's ID tokens encrypted (RSA-OAEP, A256GCM); an encryption key of
	// another kind is refused.
	JWKS         json.RawMessage
	RedirectURIs []string
	// OrganisationID is the initiator's Open Finance organisation id
	// (AttrOrganisationID); optional for a hand-registered initiator.
	OrganisationID string
	// WebhookURIs are the base URLs the holder sends Open Finance webhooks
	// to (AttrWebhookURIs); optional.
	WebhookURIs []string
}

// ErrInvalidClient reports registration metadata Ponte refuses.
var ErrInvalidClient = errors.New("oidc: invalid client metadata")

// RegisterInitiator validates in and stores it as an Open Finance client:
// private_key_jwt authentication, signed request objects, PAR, the hybrid
// response type code id_token and Ponte's grant types and scopes
// (initiatorPolicy). Registering an existing client_id replaces its metadata.
func (s *Storage) RegisterInitiator(ctx context.Context, in Initiator) (*goidc.Client, error) {
	if in.ClientID == "" || strings.TrimSpace(in.ClientID) != in.ClientID {
		return nil, fmt.Errorf("%w: client_id is required and has no surrounding spaces", ErrInvalidClient)
	}
	if len(in.RedirectURIs) == 0 {
		return nil, fmt.Errorf("%w: at least one redirect_uri is required", ErrInvalidClient)
	}
	for _, raw := range in.RedirectURIs {
		u, err := url.Parse(raw)
		if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" {
			return nil, fmt.Errorf("%w: redirect_uri %q is not an absolute URL without fragment", ErrInvalidClient, raw)
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(in.JWKS, &set); err != nil {
		return nil, fmt.Errorf("%w: jwks: %v", ErrInvalidClient, err)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("%w: jwks has no keys", ErrInvalidClient)
	}
	keys := make([]goidc.JSONWebKey, 0, len(set.Keys))
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("%w: jwks key %q is not a public key", ErrInvalidClient, k.KeyID)
		}
		if k.KeyID == "" {
			return nil, fmt.Errorf("%w: every jwks key needs a kid", ErrInvalidClient)
		}
		keys = append(keys, k)
	}
	encrypt, err := encryptionKeys(keys)
	if err != nil {
		return nil, err
	}
	c := &goidc.Client{ID: in.ClientID, ClientMeta: goidc.ClientMeta{
		Name:             in.Name,
		RedirectURIs:     in.RedirectURIs,
		PublicJWKS:       &goidc.JSONWebKeySet{Keys: keys},
		TokenAuthnMethod: goidc.ClientAuthnPrivateKeyJWT,
		TokenAuthnSigAlg: goidc.PS256,
		IDTokenSigAlg:    goidc.PS256,
		JARIsRequired:    true,
		JARSigAlg:        goidc.PS256,
		PARIsRequired:    true,
	}}
	if encrypt {
		// The client registered an encryption key: its ID tokens, from
		// /oauth/authorize and /oauth/token alike, are nested JWTs encrypted to it.
		c.IDTokenKeyEncAlg, c.IDTokenContentEncAlg = IDTokenKeyEncAlg, IDTokenContentEncAlg
	}
	if in.OrganisationID != "" {
		c.SetCustomAttribute(AttrOrganisationID, in.OrganisationID)
	}
	if len(in.WebhookURIs) > 0 {
		c.SetCustomAttribute(AttrWebhookURIs, in.WebhookURIs)
	}
	initiatorPolicy(c)
	if err := s.Clients().Save(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// Initiators lists the registered Open Finance clients, by client_id.
func (s *Storage) Initiators(ctx context.Context) ([]*goidc.Client, error) {
	rows, err := s.db.Read().QueryContext(ctx, `SELECT data FROM oidc_clients ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("oidc: list clients: %w", err)
	}
	defer rows.Close()
	var out []*goidc.Client
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("oidc: list clients: %w", err)
		}
		var c goidc.Client
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			return nil, fmt.Errorf("oidc: decode client: %w", err)
		}
		out = append(out, &c)
	}
	return out, rows.Err()
}

// initiatorPolicy sets what every Open Finance client gets whatever it
// registered with: the grant types and the scopes. They are Ponte's policy
// rather than the client's metadata, so the storage applies them again when
// it loads a client: one registered by an older version (before refresh
// tokens or recurring-consent:{id}, say) gets today's.
func initiatorPolicy(c *goidc.Client) {
	c.GrantTypes = []goidc.GrantType{goidc.GrantAuthorizationCode, goidc.GrantImplicit, goidc.GrantClientCredentials, goidc.GrantRefreshToken}
	c.ResponseTypes = []goidc.ResponseType{goidc.ResponseTypeCodeAndIDToken}
	c.ScopeIDs = strings.Join([]string{goidc.ScopeOpenID.ID, ScopePayments.ID, ScopeRecurringPayments.ID, ScopeConsents.ID,
		ScopeResources.ID, ScopeAccounts.ID, ScopeConsent.ID, ScopeRecurringConsent.ID}, " ")
}

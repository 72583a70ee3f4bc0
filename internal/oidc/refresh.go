package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/ponte-ofb/ponte/internal/clock"
)

// storeConsentExpiry is the key, in a grant's goidc.GrantInfo.Store, of the
// instant (unix ms on Ponte's clock) its refresh token must not outlive:
// the consent's expiry, or MaxRefreshTokenLifetime from now for a consent
// without one. The grant handler writes it each time it asks the consent;
// the storage makes it the grant session's expiry.
const storeConsentExpiry = "ponte_consent_expires_at"

// expiredRefreshMemory is how long the storage keeps a grant session past
// its refresh token's expiry, so that a late refresh is answered
// invalid_grant (RFC 6749 §5.2) by handleGrant. go-oidc v0.13.0 answers an
// unknown refresh token with invalid_request and one it sees expired with
// unauthorized_client (fixed upstream after that release); after this
// memory the row is swept and go-oidc's answer is what the client gets.
const expiredRefreshMemory = 7 * 24 * time.Hour

// refreshPolicy binds refresh tokens to their consent: one is issued with
// an authorization_code grant for a consent-bound scope whose consent is
// active, lives until the consent expires, and each refresh asks the
// consent again — a consent that is no longer active (revoked, rejected,
// consumed, expired) ends it with invalid_grant.
type refreshPolicy struct {
	consents ConsentChecker // nil: no refresh tokens
	clock    clock.Clock
}

// handleGrant runs in go-oidc's grant handling, after the scopes are
// settled and before the token is made.
func (p refreshPolicy) handleGrant(ctx context.Context, gi *goidc.GrantInfo) error {
	if p.consents == nil || (gi.GrantType != goidc.GrantAuthorizationCode && gi.GrantType != goidc.GrantRefreshToken) {
		return nil
	}
	consentID := ConsentIDIn(gi.GrantedScopes)
	if consentID == "" {
		return nil
	}
	now := p.clock.Now()
	if until, ok := consentExpiry(gi.Store); ok && gi.GrantType == goidc.GrantRefreshToken && !now.Before(time.UnixMilli(until)) {
		// The storage still remembers it (expiredRefreshMemory).
		return goidc.NewError(goidc.ErrorCodeInvalidGrant, "the refresh token expired with the consent "+consentID)
	}
	active, expiresAt, err := p.consents.ConsentStatus(ctx, gi.ClientID, consentID)
	if err != nil {
		return fmt.Errorf("oidc: consent %s status: %w", consentID, err)
	}
	if active && !expiresAt.IsZero() && !now.Before(expiresAt) {
		active = false
	}
	// A copy: at the code exchange the map is the authorization session's.
	store := maps.Clone(gi.Store)
	if store == nil {
		store = map[string]any{}
	}
	delete(store, storeConsentExpiry)
	if !active {
		if gi.GrantType == goidc.GrantRefreshToken {
			return goidc.NewError(goidc.ErrorCodeInvalidGrant, "the consent "+consentID+" is no longer active")
		}
		// The code exchange keeps its access token (the resource APIs judge
		// the consent's status on each call); it just gets no refresh token.
		gi.Store = store
		return nil
	}
	until := now.Add(MaxRefreshTokenLifetime * time.Second)
	if !expiresAt.IsZero() && expiresAt.Before(until) {
		until = expiresAt
	}
	store[storeConsentExpiry] = until.UnixMilli()
	gi.Store = store
	return nil
}

// shouldIssue is go-oidc's ShouldIssueRefreshTokenFunc: only a code
// exchange whose consent handleGrant found active.
func (p refreshPolicy) shouldIssue(_ *goidc.Client, gi goidc.GrantInfo) bool {
	_, ok := consentExpiry(gi.Store)
	return ok && gi.GrantType == goidc.GrantAuthorizationCode
}

// consentExpiry reads storeConsentExpiry, which is an int64 when
// handleGrant wrote it and a float64 once it has been through JSON.
func consentExpiry(store map[string]any) (int64, bool) {
	switch v := store[storeConsentExpiry].(type) {
	case int64:
		return v, true
	case float64:
		return int64(v), true
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	}
	return 0, false
}

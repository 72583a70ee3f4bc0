package oidc

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

func TestConsentScopes(t *testing.T) {
	t.Parallel()
	const (
		payment   = "urn:ponte:5d9b3c2e-0c6f-4b0a-9d8e-2f4b8a1c7e10"
		recurring = "urn:ponte:rc:5d9b3c2e-0c6f-4b0a-9d8e-2f4b8a1c7e10"
		data      = "urn:ponte:dc:5d9b3c2e-0c6f-4b0a-9d8e-2f4b8a1c7e10"
	)
	tests := []struct {
		scope         string
		consent       bool // ScopeConsent offers it
		recurringForm bool // ScopeRecurringConsent offers it
		id            string
	}{
		{"consent:" + payment, true, false, payment},
		{"consent:" + data, true, false, data},
		{"recurring-consent:" + recurring, false, true, recurring},
		// A recurring consent is named the specification's way only.
		{"consent:" + recurring, false, false, recurring},
		{"recurring-consent:" + payment, false, false, payment},
		// Refused by the scopes, though the id is read as written.
		{"consent:urn:ponte:", false, false, "urn:ponte:"},
		{"recurring-consent:urn:ponte:rc:", false, false, "urn:ponte:rc:"},
		{"consent:", false, false, ""},
		{"recurring-consent:", false, false, ""},
		{"consent:not-ponte", false, false, "not-ponte"},
		{"payments", false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.scope, func(t *testing.T) {
			if got := ScopeConsent.Matches(tt.scope); got != tt.consent {
				t.Errorf("ScopeConsent matches = %v, want %v", got, tt.consent)
			}
			if got := ScopeRecurringConsent.Matches(tt.scope); got != tt.recurringForm {
				t.Errorf("ScopeRecurringConsent matches = %v, want %v", got, tt.recurringForm)
			}
			if got := ConsentIDIn("openid payments " + tt.scope); got != tt.id {
				t.Errorf("ConsentIDIn = %q, want %q", got, tt.id)
			}
			if got := ConsentScopeIn("openid " + tt.scope); got != (tt.id != "") {
				t.Errorf("ConsentScopeIn = %v", got)
			}
			if got := ConsentID(&goidc.AuthnSession{AuthorizationParameters: goidc.AuthorizationParameters{Scopes: tt.scope + " openid"}}); got != tt.id {
				t.Errorf("ConsentID = %q, want %q", got, tt.id)
			}
		})
	}
}

// consentsFunc is a ConsentChecker from a function.
type consentsFunc func(clientID, consentID string) (bool, time.Time, error)

func (f consentsFunc) ConsentStatus(_ context.Context, clientID, consentID string) (bool, time.Time, error) {
	return f(clientID, consentID)
}

func TestRefreshPolicy(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(epoch)
	const recurring = "urn:ponte:rc:5d9b3c2e-0c6f-4b0a-9d8e-2f4b8a1c7e10"
	inTenDays := epoch.Add(10 * 24 * time.Hour)
	ceiling := epoch.Add(MaxRefreshTokenLifetime * time.Second)
	var asked []string
	consents := consentsFunc(func(clientID, consentID string) (bool, time.Time, error) {
		asked = append(asked, clientID+" "+consentID)
		switch consentID {
		case "urn:ponte:active":
			return true, inTenDays, nil
		case recurring: // open-ended
			return true, time.Time{}, nil
		case "urn:ponte:far":
			return true, epoch.AddDate(3, 0, 0), nil
		case "urn:ponte:past": // still AUTHORISED, its timer not yet run
			return true, epoch, nil
		case "urn:ponte:broken":
			return false, time.Time{}, errors.New("database down")
		}
		return false, time.Time{}, nil // revoked, consumed, unknown
	})
	p := refreshPolicy{consents: consents, clock: clk}
	tests := []struct {
		name    string
		grant   goidc.GrantType
		scopes  string
		until   time.Time // zero: no refresh token
		errCode goidc.ErrorCode
		asks    bool
	}{
		{"code, active consent", goidc.GrantAuthorizationCode, "openid payments consent:urn:ponte:active", inTenDays, "", true},
		{"code, open-ended recurring consent", goidc.GrantAuthorizationCode, "openid recurring-payments recurring-consent:" + recurring, ceiling, "", true},
		{"code, consent beyond the ceiling", goidc.GrantAuthorizationCode, "openid consents consent:urn:ponte:far", ceiling, "", true},
		{"code, inactive consent: access token only", goidc.GrantAuthorizationCode, "openid payments consent:urn:ponte:revoked", time.Time{}, "", true},
		{"code, expired consent", goidc.GrantAuthorizationCode, "openid payments consent:urn:ponte:past", time.Time{}, "", true},
		{"code without a consent", goidc.GrantAuthorizationCode, "openid payments", time.Time{}, "", false},
		{"refresh, active consent", goidc.GrantRefreshToken, "openid payments consent:urn:ponte:active", inTenDays, "", true},
		{"refresh, inactive consent", goidc.GrantRefreshToken, "openid payments consent:urn:ponte:consumed", time.Time{}, goidc.ErrorCodeInvalidGrant, true},
		{"refresh, expired consent", goidc.GrantRefreshToken, "openid payments consent:urn:ponte:past", time.Time{}, goidc.ErrorCodeInvalidGrant, true},
		{"client_credentials", goidc.GrantClientCredentials, "payments", time.Time{}, "", false},
		// The refresh token's own expiry (the consent's, as last read) passed.
		{"refresh past its expiry", goidc.GrantRefreshToken, "openid payments consent:urn:ponte:active", time.Time{}, goidc.ErrorCodeInvalidGrant, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked = nil
			authn := map[string]any{"kept": "yes", storeConsentExpiry: float64(epoch.Add(time.Hour).UnixMilli())}
			if tt.name == "refresh past its expiry" {
				authn[storeConsentExpiry] = float64(epoch.UnixMilli())
			}
			gi := &goidc.GrantInfo{GrantType: tt.grant, ClientID: "initiator-a", GrantedScopes: tt.scopes, ActiveScopes: tt.scopes, Store: authn}
			err := p.handleGrant(context.Background(), gi)
			var oerr goidc.Error
			switch {
			case tt.errCode != "" && (!errors.As(err, &oerr) || oerr.Code != tt.errCode):
				t.Fatalf("err = %v, want %s", err, tt.errCode)
			case tt.errCode == "" && err != nil:
				t.Fatalf("err = %v", err)
			}
			if (len(asked) == 1) != tt.asks || (tt.asks && asked[0] != "initiator-a "+ConsentIDIn(tt.scopes)) {
				t.Errorf("asked %v", asked)
			}
			if tt.errCode != "" {
				return
			}
			got, ok := consentExpiry(gi.Store)
			if !tt.asks {
				return // untouched
			}
			if tt.until.IsZero() {
				if ok || p.shouldIssue(nil, *gi) {
					t.Errorf("a refresh token would be issued (store %v)", gi.Store)
				}
			} else if !ok || got != tt.until.UnixMilli() {
				t.Errorf("expiry = %v, want %v", time.UnixMilli(got).UTC(), tt.until)
			}
			if want := tt.grant == goidc.GrantAuthorizationCode && !tt.until.IsZero(); p.shouldIssue(nil, *gi) != want {
				t.Errorf("shouldIssue = %v, want %v", !want, want)
			}
			if gi.Store["kept"] != "yes" {
				t.Errorf("store lost its other keys: %v", gi.Store)
			}
			if _, ok := authn[storeConsentExpiry].(float64); !ok {
				t.Errorf("the authorization session's map was changed: %v", authn)
			}
		})
	}
	if err := p.handleGrant(context.Background(), &goidc.GrantInfo{GrantType: goidc.GrantRefreshToken, GrantedScopes: "consent:urn:ponte:broken"}); err == nil {
		t.Error("a failing consent lookup let the refresh through")
	}
	// Without a ConsentChecker there are no refresh tokens.
	gi := &goidc.GrantInfo{GrantType: goidc.GrantAuthorizationCode, GrantedScopes: "openid payments consent:urn:ponte:active"}
	if err := (refreshPolicy{clock: clk}).handleGrant(context.Background(), gi); err != nil || (refreshPolicy{}).shouldIssue(nil, *gi) {
		t.Errorf("no checker: err %v, store %v", err, gi.Store)
	}
}

// TestGrantSessionConsentExpiry checks the storage's two clocks of a grant
// with a refresh token: the access token dies after its own lifetime, the
// grant (the refresh token) at the consent's expiry the grant handler last
// wrote, which a refresh may move (an extended consent).
func TestGrantSessionConsentExpiry(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(epoch)
		m := NewStorage(db, clk).GrantSessions()
		day := 24 * time.Hour
		gs := &goidc.GrantSession{
			ID: "g1", TokenID: "tok-1", RefreshToken: "refresh-1",
			ExpiresAtTimestamp: goidc.TimestampNow() + MaxRefreshTokenLifetime, LastTokenExpiresAtTimestamp: goidc.TimestampNow() + AccessTokenLifetime,
			GrantInfo: goidc.GrantInfo{GrantType: goidc.GrantAuthorizationCode, ClientID: "c1", GrantedScopes: "openid payments consent:urn:ponte:x",
				Store: map[string]any{storeConsentExpiry: epoch.Add(10 * day).UnixMilli()}},
		}
		if err := m.Save(ctx, gs); err != nil {
			t.Fatal(err)
		}
		clk.Advance(AccessTokenLifetime*time.Second + time.Second)
		if _, err := m.SessionByTokenID(ctx, "tok-1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("access token after its lifetime: err = %v", err)
		}
		got, err := m.SessionByRefreshToken(ctx, "refresh-1")
		if err != nil {
			t.Fatalf("refresh token within the consent: %v", err)
		}
		// go-oidc's wall-clock copy says the consent's expiry too.
		if left := time.Duration(got.ExpiresAtTimestamp-goidc.TimestampNow()) * time.Second; left < 10*day+expiredRefreshMemory-10*time.Minute || left > 10*day+expiredRefreshMemory {
			t.Errorf("stored expiry is %v away, want the consent's (10 days from the save) and a week", left)
		}

		// A refresh 9 days later: a new access token, and the consent now
		// ends in 20 days (extended).
		clk.Advance(9 * day)
		got.TokenID, got.LastTokenExpiresAtTimestamp = "tok-2", goidc.TimestampNow()+AccessTokenLifetime
		got.Store = map[string]any{storeConsentExpiry: float64(epoch.Add(20 * day).UnixMilli())}
		if err := m.Save(ctx, got); err != nil {
			t.Fatal(err)
		}
		if _, err := m.SessionByTokenID(ctx, "tok-2"); err != nil {
			t.Fatalf("refreshed access token: %v", err)
		}
		clk.Advance(10 * day)
		if _, err := m.SessionByRefreshToken(ctx, "refresh-1"); err != nil {
			t.Fatalf("refresh token on day 19 of an extended consent: %v", err)
		}
		if _, err := m.SessionByTokenID(ctx, "tok-2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("access token 10 days old: err = %v", err)
		}
		// Past the consent's expiry the grant handler refuses the refresh
		// (invalid_grant) while the storage remembers it, a week.
		clk.Advance(day)
		if got, err := m.SessionByRefreshToken(ctx, "refresh-1"); err != nil {
			t.Fatalf("refresh token just past the consent's expiry: %v", err)
		} else if got.GrantType = goidc.GrantRefreshToken; (refreshPolicy{consents: consentsFunc(func(string, string) (bool, time.Time, error) {
			return true, time.Time{}, nil
		}), clock: clk}).handleGrant(ctx, &got.GrantInfo) == nil {
			t.Fatal("the grant handler let an expired refresh token through")
		}
		clk.Advance(expiredRefreshMemory)
		if _, err := m.SessionByRefreshToken(ctx, "refresh-1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("refresh token a week past the consent's expiry: err = %v", err)
		}
	})
}

// TestClientPolicyOnLoad: a client stored by an older version (without the
// refresh_token grant or the recurring-consent scope) is served with today's
// grant types and scopes.
func TestClientPolicyOnLoad(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		m := NewStorage(db, clock.NewFake(epoch)).Clients()
		old := &goidc.Client{ID: "initiator-old", ClientMeta: goidc.ClientMeta{
			RedirectURIs: []string{"https://tpp.example/cb"}, TokenAuthnMethod: goidc.ClientAuthnPrivateKeyJWT,
			GrantTypes: []goidc.GrantType{goidc.GrantAuthorizationCode, goidc.GrantImplicit, goidc.GrantClientCredentials},
			ScopeIDs:   "openid payments recurring-payments consents resources accounts consent",
		}}
		if err := m.Save(ctx, old); err != nil {
			t.Fatal(err)
		}
		got, err := m.Client(ctx, old.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(got.GrantTypes, goidc.GrantRefreshToken) || !slices.Contains(strings.Fields(got.ScopeIDs), ScopeRecurringConsent.ID) {
			t.Fatalf("loaded client: grants %v, scopes %q", got.GrantTypes, got.ScopeIDs)
		}
	})
}

package oidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

var epoch = time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)

func TestClientStorage(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		m := NewStorage(db, clock.NewFake(epoch)).Clients()
		if _, err := m.Client(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown client: err = %v, want ErrNotFound", err)
		}
		c := &goidc.Client{ID: "initiator-1", ClientMeta: goidc.ClientMeta{
			RedirectURIs:     []string{"https://tpp.example/cb"},
			TokenAuthnMethod: goidc.ClientAuthnPrivateKeyJWT,
			PublicJWKS: &goidc.JSONWebKeySet{Keys: []goidc.JSONWebKey{{
				Key: &key.PublicKey, KeyID: "k1", Algorithm: "PS256", Use: "sig",
			}}},
		}}
		if err := m.Save(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.RedirectURIs = append(c.RedirectURIs, "https://tpp.example/cb2")
		if err := m.Save(ctx, c); err != nil { // upsert
			t.Fatal(err)
		}
		got, err := m.Client(ctx, "initiator-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(got.RedirectURIs) != 2 || got.TokenAuthnMethod != goidc.ClientAuthnPrivateKeyJWT {
			t.Fatalf("client = %+v", got.ClientMeta)
		}
		if got.PublicJWKS == nil || len(got.PublicJWKS.Keys) != 1 || got.PublicJWKS.Keys[0].KeyID != "k1" {
			t.Fatalf("jwks = %+v", got.PublicJWKS)
		}
		if pub, ok := got.PublicJWKS.Keys[0].Key.(*rsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
			t.Fatalf("jwks key = %T", got.PublicJWKS.Keys[0].Key)
		}
		if err := m.Delete(ctx, "initiator-1"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Client(ctx, "initiator-1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted client: err = %v", err)
		}
	})
}

func TestAuthnSessionStorage(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(epoch)
		s := NewStorage(db, clk)
		m := s.AuthnSessions()
		as := &goidc.AuthnSession{
			ID: "s1", ClientID: "c1", PushedAuthReqID: "urn:ietf:params:oauth:request_uri:abc",
			ExpiresAtTimestamp: goidc.TimestampNow() + 60,
			AuthorizationParameters: goidc.AuthorizationParameters{
				State: "st", Scopes: "openid payments", RedirectURI: "https://tpp.example/cb",
			},
		}
		if err := m.Save(ctx, as); err != nil {
			t.Fatal(err)
		}
		got, err := m.SessionByPushedAuthReqID(ctx, as.PushedAuthReqID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ClientID != "c1" || got.State != "st" || got.Scopes != "openid payments" {
			t.Fatalf("session = %+v", got)
		}
		// A second session may also lack a callback id or code (NULLs are not unique).
		if err := m.Save(ctx, &goidc.AuthnSession{ID: "s2", ClientID: "c1", PushedAuthReqID: "urn:x:2", ExpiresAtTimestamp: goidc.TimestampNow() + 60}); err != nil {
			t.Fatal(err)
		}

		// The authorize step moves the session to a callback id; the code comes last.
		got.PushedAuthReqID, got.CallbackID = "", "cb-1"
		if err := m.Save(ctx, got); err != nil {
			t.Fatal(err)
		}
		if _, err := m.SessionByPushedAuthReqID(ctx, as.PushedAuthReqID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("old request_uri: err = %v", err)
		}
		if _, err := m.SessionByCallbackID(ctx, "cb-1"); err != nil {
			t.Fatal(err)
		}
		got.CallbackID, got.AuthCode = "", "the-code"
		if err := m.Save(ctx, got); err != nil {
			t.Fatal(err)
		}
		byCode, err := m.SessionByAuthCode(ctx, "the-code")
		if err != nil {
			t.Fatal(err)
		}
		if byCode.AuthCode != "the-code" || byCode.ID != "s1" {
			t.Fatalf("by code = %+v", byCode)
		}
		var stored string
		if err := db.Read().QueryRow(`SELECT data FROM oidc_authn_sessions WHERE id = 's1'`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stored, "the-code") {
			t.Fatal("authorization code stored in clear")
		}

		// Expiry follows Ponte's clock.
		if _, err := m.SessionByPushedAuthReqID(ctx, "urn:x:2"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(61 * time.Second)
		if _, err := m.SessionByPushedAuthReqID(ctx, "urn:x:2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired session: err = %v", err)
		}
		if err := s.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.Read().QueryRow(`SELECT COUNT(*) FROM oidc_authn_sessions`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("after sweep: %d rows, %v", n, err)
		}

		if err := m.Save(ctx, &goidc.AuthnSession{ID: "s3", CIBAAuthID: "ciba-1", ExpiresAtTimestamp: goidc.TimestampNow() + 60}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.SessionByCIBAAuthID(ctx, "ciba-1"); err != nil {
			t.Fatal(err)
		}
		if err := m.Delete(ctx, "s3"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.SessionByCIBAAuthID(ctx, "ciba-1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted: err = %v", err)
		}
	})
}

func TestGrantSessionStorage(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(epoch)
		m := NewStorage(db, clk).GrantSessions()
		gs := &goidc.GrantSession{
			ID: "g1", TokenID: "tok-1", RefreshToken: "refresh-1", AuthCode: "code-1",
			ExpiresAtTimestamp: goidc.TimestampNow() + 600, LastTokenExpiresAtTimestamp: goidc.TimestampNow() + 300,
			GrantInfo: goidc.GrantInfo{GrantType: goidc.GrantAuthorizationCode, ClientID: "c1", Subject: "u1", GrantedScopes: "openid payments"},
		}
		if err := m.Save(ctx, gs); err != nil {
			t.Fatal(err)
		}
		got, err := m.SessionByTokenID(ctx, "tok-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.TokenID != "tok-1" || got.Subject != "u1" || got.GrantedScopes != "openid payments" {
			t.Fatalf("by token id = %+v", got)
		}
		// Saving what was loaded by token id keeps the refresh token usable.
		got.TokenID = "tok-2"
		if err := m.Save(ctx, got); err != nil {
			t.Fatal(err)
		}
		byRefresh, err := m.SessionByRefreshToken(ctx, "refresh-1")
		if err != nil {
			t.Fatal(err)
		}
		if byRefresh.ID != "g1" || byRefresh.RefreshToken != "refresh-1" {
			t.Fatalf("by refresh = %+v", byRefresh)
		}
		if _, err := m.SessionByTokenID(ctx, "tok-1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("rotated token id: err = %v", err)
		}
		if err := m.DeleteByAuthCode(ctx, "code-1"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.SessionByTokenID(ctx, "tok-2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after DeleteByAuthCode: err = %v", err)
		}

		if err := m.Save(ctx, &goidc.GrantSession{ID: "g2", TokenID: "tok-3", ExpiresAtTimestamp: goidc.TimestampNow() + 300}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(301 * time.Second)
		if _, err := m.SessionByTokenID(ctx, "tok-3"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired: err = %v", err)
		}
		if err := m.Delete(ctx, "g2"); err != nil {
			t.Fatal(err)
		}
	})
}

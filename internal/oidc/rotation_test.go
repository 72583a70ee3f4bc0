package oidc_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/keyset"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/payments"
)

// TestSigningKeyRotationIDTokens: an ID token the authorization server
// signed before the signing key was rotated still verifies against the JWKS
// it publishes after the restart, which lists both keys; the ID tokens it
// signs from then on carry the new key id.
func TestSigningKeyRotationIDTokens(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{Clock: clock.NewFake(time.Now())})
	sigKey := rsaKey(t, 2048)
	sig := jose.JSONWebKey{Key: &sigKey.PublicKey, KeyID: "itp-sig", Algorithm: "PS256", Use: "sig"}
	appJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{sig}})
	app, _, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Rotating ITP", CompanyKey: "ROT", Scopes: []string{"payments"}, JWKS: appJWKS})
	if err != nil {
		t.Fatal(err)
	}
	in := &oidctest.Initiator{ClientID: app.ClientID, RedirectURI: "https://initiator.example/rot/callback", Key: sigKey, KeyID: "itp-sig", Issuer: s.URL}
	if _, err := s.App.AuthServer.Storage().RegisterInitiator(t.Context(), oidc.Initiator{
		ClientID: app.ClientID, Name: "Rotating ITP", JWKS: appJWKS, RedirectURIs: []string{in.RedirectURI}}); err != nil {
		t.Fatal(err)
	}
	// idToken runs one hybrid flow and returns the authorization response's id_token.
	idToken := func(s *apptest.Server) string {
		t.Helper()
		fc := &fapiclient.Client{Issuer: s.URL, APIBase: s.URL, ClientID: app.ClientID, Key: sigKey, KeyID: "itp-sig",
			RedirectURI: in.RedirectURI, HTTP: &http.Client{Timeout: 10 * time.Second}, Clock: clock.System{}}
		token, err := fc.Token(t.Context(), "payments")
		if err != nil {
			t.Fatal(err)
		}
		created, err := fc.CreateConsent(t.Context(), token, payments.ConsentsPath, json.RawMessage(paymentConsent(s.Clock.Now())), uuid.NewString())
		if err != nil {
			t.Fatal(err)
		}
		req := oidctest.NewRequest(created.ID)
		var par struct {
			RequestURI string `json:"request_uri"`
		}
		decode(t, in.PAR(t, oidctest.NoRedirects(), s.URL, req), &par)
		authorize := s.URL + oidc.PathAuthorize + "?" + url.Values{"client_id": {in.ClientID}, "request_uri": {par.RequestURI}}.Encode()
		back := apptest.NewSandboxUser("47742663023", "1234567").Decide(t, s, authorize, true)
		frag, _ := url.ParseQuery(back.Fragment)
		if frag.Get("id_token") == "" {
			t.Fatalf("no id_token in %s", back)
		}
		return frag.Get("id_token")
	}
	kidOf := func(raw string) string {
		t.Helper()
		jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.PS256})
		if err != nil || len(jws.Signatures) != 1 {
			t.Fatalf("not a PS256 JWS: %v", err)
		}
		return jws.Signatures[0].Header.KeyID
	}
	verify := func(raw string, set *jose.JSONWebKeySet) error {
		jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.PS256})
		if err != nil {
			return err
		}
		keys := set.Key(jws.Signatures[0].Header.KeyID)
		if len(keys) != 1 {
			return jose.ErrCryptoFailure
		}
		_, err = jws.Verify(keys[0].Key)
		return err
	}

	before := idToken(s)
	oldKID := kidOf(before)
	rotated, err := auth.RotateSigningKey(filepath.Join(s.Options.DataDir, "signing-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	recordRotation(t, s)
	if len(rotated.Retired) != 1 || rotated.Retired[0].KeyID != oldKID || rotated.KeyID == oldKID {
		t.Fatalf("rotation: current %s, retired %v; the old kid was %s", rotated.KeyID, rotated.Retired, oldKID)
	}
	s = s.Restart(t)

	published := serverJWKS(t, s)
	if len(published.Keys) != 2 || published.Keys[0].KeyID != rotated.KeyID || published.Keys[1].KeyID != oldKID {
		t.Fatalf("JWKS after rotation lists %d keys %v, want the new %s then the retired %s", len(published.Keys), published.Keys, rotated.KeyID, oldKID)
	}
	for _, k := range published.Keys {
		if !k.IsPublic() {
			t.Errorf("JWKS publishes a private key: %s", k.KeyID)
		}
	}
	if err := verify(before, published); err != nil {
		t.Errorf("the ID token signed before the rotation does not verify against the published JWKS: %v", err)
	}
	after := idToken(s)
	if kid := kidOf(after); kid != rotated.KeyID {
		t.Errorf("ID token after rotation signed with kid %s, want the new key %s", kid, rotated.KeyID)
	}
	if err := verify(after, published); err != nil {
		t.Errorf("the ID token signed after the rotation does not verify: %v", err)
	}
}

// recordRotation records the rotated signing key as the database's current
// one, as 'ponte keys rotate-signing-key' does, so the restart passes the
// key check.
func recordRotation(t *testing.T, s *apptest.Server) {
	t.Helper()
	k, _ := keyset.Lookup(keyset.SigningKey)
	e, err := keyset.FingerprintFile(k, filepath.Join(s.Options.DataDir, "signing-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := keyset.Rotate(t.Context(), s.App.DB, time.Now(), keyset.SigningKey, e.Fingerprint); err != nil {
		t.Fatal(err)
	}
}

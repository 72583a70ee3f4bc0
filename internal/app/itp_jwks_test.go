package app_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestInitiatorJWKS: GET /itp/jwks.json publishes the public signing key of
// Ponte's registration at the sandbox brand and its encryption key (use
// enc, RSA-OAEP), never a private part; that encryption key is the one
// registered at the sandbox brand.
func TestInitiatorJWKS(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	r := s.Do(t, "GET", app.PathITPJWKS, nil, "")
	if r.Status != 200 {
		t.Fatalf("jwks: %d %s", r.Status, r.Body)
	}
	var set jose.JSONWebKeySet
	r.JSON(t, &set)
	enc := ponteEncryptionKey(t, s)
	var sig, encs int
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Fatalf("key %q is not public", k.KeyID)
		}
		switch k.Use {
		case "sig":
			sig++
			if k.Algorithm != "PS256" {
				t.Errorf("signing key %q alg %q", k.KeyID, k.Algorithm)
			}
		case "enc":
			encs++
			if k.Algorithm != "RSA-OAEP" || k.KeyID != enc.KeyID {
				t.Errorf("encryption key %q alg %q, want %q RSA-OAEP", k.KeyID, k.Algorithm, enc.KeyID)
			}
		}
	}
	if sig != 1 || encs != 1 || strings.Contains(string(r.Body), `"d"`) {
		t.Fatalf("jwks = %s; want one signing and one encryption key, public only", r.Body)
	}
	registered, err := s.App.AuthServer.Storage().Clients().Client(t.Context(), sandboxClientID(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := registered.PublicJWKS.Key(enc.KeyID); err != nil || k.Use != "enc" || registered.IDTokenKeyEncAlg != "RSA-OAEP" {
		t.Errorf("sandbox registration: encryption key %+v %v, id_token alg %q", k, err, registered.IDTokenKeyEncAlg)
	}

	// A restart on the same data directory keeps the key and the registration.
	s2 := s.Restart(t)
	if again := ponteEncryptionKey(t, s2); again.KeyID != enc.KeyID {
		t.Errorf("the encryption key changed across a restart: %s → %s", enc.KeyID, again.KeyID)
	}
}

// TestBrickCallbackEncryptedIDToken runs seed 002's Brick journey at the
// sandbox brand, which encrypts ID tokens to the key Ponte registered
// there: the callback carries a five-part JWE id_token and succeeds, while
// a token encrypted to another key, a tampered one, one with algorithms
// FAPI-BR does not allow, one whose nested signature is bad, and a plain
// signed one are each refused with 422 CALLBACK_INVALIDO, changing nothing.
func TestBrickCallbackEncryptedIDToken(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), Clock: wallClock(t)})
			_, tok := brickFintech(t, s)
			r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents", tok, brickConsentBody(s.Clock.Now(), s.App.SandboxBrandID))
			if r.Status != 201 {
				t.Fatalf("consent: %d %s", r.Status, r.Body)
			}
			var out struct {
				Data struct{ AuthorizationURL string } `json:"data"`
			}
			r.JSON(t, &out)
			back := apptest.NewSandboxUser("47742663023", "1234567").Decide(t, s, out.Data.AuthorizationURL, true)
			f, _ := url.ParseQuery(back.Fragment)
			idToken := f.Get("id_token")
			if n := strings.Count(idToken, "."); n != 4 {
				t.Fatalf("the callback's id_token has %d parts, want a 5-part JWE", n+1)
			}
			enc := ponteEncryptionKey(t, s)
			jwe, err := jose.ParseEncryptedCompact(idToken, []jose.KeyAlgorithm{jose.RSA_OAEP}, []jose.ContentEncryption{jose.A256GCM})
			if err != nil || jwe.Header.KeyID != enc.KeyID {
				t.Fatalf("JWE header: %v, kid %q want %q", err, jwe.Header.KeyID, enc.KeyID)
			}
			nested, err := jwe.Decrypt(enc.Private)
			if err != nil {
				t.Fatal(err)
			}
			other, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(idToken, ".")
			ct, _ := base64.RawURLEncoding.DecodeString(parts[3])
			ct[len(ct)/2] ^= 1
			parts[3] = base64.RawURLEncoding.EncodeToString(ct)
			signed := string(nested)
			pub := &enc.Private.PublicKey
			refused := []struct{ name, idToken, reason string }{
				{"encrypted to another key", jweOf(t, signed, &other.PublicKey, jose.RSA_OAEP, jose.A256GCM, enc.KeyID), "cannot be decrypted"},
				{"tampered ciphertext", strings.Join(parts, "."), "cannot be decrypted"},
				{"RSA1_5", jweOf(t, signed, pub, jose.RSA1_5, jose.A256GCM, enc.KeyID), "RSA-OAEP"},
				{"A128CBC-HS256", jweOf(t, signed, pub, jose.RSA_OAEP, jose.A128CBC_HS256, enc.KeyID), "A256GCM"},
				{"nested token with a bad signature", jweOf(t, signed[:len(signed)-8]+"AAAAAAAA", pub, jose.RSA_OAEP, jose.A256GCM, enc.KeyID), "signature"},
				{"plain signed token", signed, "not encrypted"},
			}
			body := fragmentCallback(back)
			for _, c := range refused {
				forged := strings.Replace(body, idToken, c.idToken, 1)
				r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents/callback", tok, forged)
				if r.Status != 422 || !strings.Contains(string(r.Body), "CALLBACK_INVALIDO") || !strings.Contains(string(r.Body), c.reason) {
					t.Errorf("%s: %d %s", c.name, r.Status, r.Body)
				}
			}
			// Nothing changed: the genuine callback still completes it.
			r = s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents/callback", tok, body)
			if r.Status != 200 || !strings.Contains(string(r.Body), `"status":"AUTHORISED"`) || !strings.Contains(string(r.Body), `"flowStatus":"AUTHORISED"`) {
				t.Fatalf("callback: %d %s", r.Status, r.Body)
			}
		})
	}
}

// TestJourneyCallbackEncryptedIDToken: the hosted sweeping journey at the
// sandbox brand comes back with a JWE id_token; one encrypted to another
// key gets the page's 400 and leaves the session AWAITING_AUTHORISATION,
// and the genuine one finishes it.
func TestJourneyCallbackEncryptedIDToken(t *testing.T) {
	t.Parallel()
	f := newSessionFlow(t, "")
	id, pageURL := f.create(t, "enc-1")
	back := f.user.Decide(t, f.s, f.confirm(t, pageURL), true)
	fields, _ := url.ParseQuery(back.Fragment)
	idToken := fields.Get("id_token")
	if strings.Count(idToken, ".") != 4 {
		t.Fatalf("the journey's id_token is not a 5-part JWE: %.60s", idToken)
	}
	enc := ponteEncryptionKey(t, f.s)
	jwe, err := jose.ParseEncryptedCompact(idToken, []jose.KeyAlgorithm{jose.RSA_OAEP}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatal(err)
	}
	nested, err := jwe.Decrypt(enc.Private)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	forged := *back
	fields.Set("id_token", jweOf(t, string(nested), &other.PublicKey, jose.RSA_OAEP, jose.A256GCM, enc.KeyID))
	forged.Fragment = fields.Encode()
	if resp, page := f.callback(t, &forged); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Retorno inválido") {
		t.Errorf("id_token encrypted to another key: %d", resp.StatusCode)
	}
	if st, _, _ := f.session(t, id); st != "AWAITING_AUTHORISATION" {
		t.Fatalf("after the refused callback the session is %s", st)
	}
	if resp, page := f.callback(t, back); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %d %s", resp.StatusCode, page)
	}
	if st, _, _ := f.session(t, id); st != "FINISHED" {
		t.Fatalf("session = %s, want FINISHED", st)
	}
}

// ponteEncryptionKey reads the sandbox's initiator encryption key from the
// data directory.
func ponteEncryptionKey(t *testing.T, s *apptest.Server) *auth.SigningKey {
	t.Helper()
	k, err := auth.LoadOrCreateKey(filepath.Join(s.Options.DataDir, config.SandboxITPEncryptionKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sandboxClientID is Ponte-as-initiator's client_id at the sandbox brand.
func sandboxClientID(t *testing.T, s *apptest.Server) string {
	t.Helper()
	b, err := s.App.ITP.Brand(t.Context(), s.App.SandboxBrandID)
	if err != nil {
		t.Fatal(err)
	}
	return b.ClientID
}

// jweOf encrypts payload to pub as a compact JWE (cty JWT).
func jweOf(t *testing.T, payload string, pub *rsa.PublicKey, alg jose.KeyAlgorithm, enc jose.ContentEncryption, kid string) string {
	t.Helper()
	e, err := jose.NewEncrypter(enc, jose.Recipient{Algorithm: alg, Key: pub, KeyID: kid}, (&jose.EncrypterOptions{}).WithContentType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := e.Encrypt([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

package oidc_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

func rsaKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestEncryptionDiscovery: discovery advertises exactly FAPI-BR's ID token
// encryption algorithms.
func TestEncryptionDiscovery(t *testing.T) {
	t.Parallel()
	s, _ := start(t, "")
	resp, err := http.Get(s.URL + oidc.PathDiscovery)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	decode(t, resp, &d)
	for k, want := range map[string]string{
		"id_token_encryption_alg_values_supported": "RSA-OAEP",
		"id_token_encryption_enc_values_supported": "A256GCM",
	} {
		list, _ := d[k].([]any)
		if len(list) != 1 || list[0] != want {
			t.Errorf("%s = %v, want [%s]", k, d[k], want)
		}
	}
}

// TestRegisterInitiatorEncryptionKeys: an RSA encryption key for RSA-OAEP
// turns ID token encryption on; other encryption keys are refused, and a
// client without one is not encrypted to.
func TestRegisterInitiatorEncryptionKeys(t *testing.T) {
	t.Parallel()
	s, _ := start(t, "")
	sig := jose.JSONWebKey{Key: &rsaKey(t, 2048).PublicKey, KeyID: "sig-1", Algorithm: "PS256", Use: "sig"}
	enc := &rsaKey(t, 2048).PublicKey
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		enc     *jose.JSONWebKey
		wantErr bool
		wantAlg string // stored alg of the encryption key
	}{
		{"no encryption key", nil, false, ""},
		{"RSA-OAEP", &jose.JSONWebKey{Key: enc, KeyID: "enc-1", Algorithm: "RSA-OAEP", Use: "enc"}, false, "RSA-OAEP"},
		{"use enc, no alg", &jose.JSONWebKey{Key: enc, KeyID: "enc-1", Use: "enc"}, false, "RSA-OAEP"},
		{"alg RSA-OAEP, no use", &jose.JSONWebKey{Key: enc, KeyID: "enc-1", Algorithm: "RSA-OAEP"}, false, "RSA-OAEP"},
		{"RSA1_5", &jose.JSONWebKey{Key: enc, KeyID: "enc-1", Algorithm: "RSA1_5", Use: "enc"}, true, ""},
		{"RSA-OAEP-256", &jose.JSONWebKey{Key: enc, KeyID: "enc-1", Algorithm: "RSA-OAEP-256", Use: "enc"}, true, ""},
		{"RSA1_5, no use", &jose.JSONWebKey{Key: enc, KeyID: "enc-1", Algorithm: "RSA1_5"}, true, ""},
		{"EC key", &jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "enc-1", Algorithm: "ECDH-ES", Use: "enc"}, true, ""},
		{"EC key, no alg", &jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "enc-1", Use: "enc"}, true, ""},
		{"1024-bit RSA", &jose.JSONWebKey{Key: &rsaKey(t, 1024).PublicKey, KeyID: "enc-1", Algorithm: "RSA-OAEP", Use: "enc"}, true, ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{sig}}
			if c.enc != nil {
				set.Keys = append(set.Keys, *c.enc)
			}
			jwks, err := json.Marshal(set)
			if err != nil {
				t.Fatal(err)
			}
			clientID := "enc-client-" + string(rune('a'+i))
			got, err := s.App.AuthServer.Storage().RegisterInitiator(t.Context(), oidc.Initiator{
				ClientID: clientID, Name: c.name, JWKS: jwks, RedirectURIs: []string{"https://initiator.example/cb"}})
			if c.wantErr {
				if !errors.Is(err, oidc.ErrInvalidClient) {
					t.Fatalf("register: %v, want ErrInvalidClient", err)
				}
				if _, err := s.App.AuthServer.Storage().Clients().Client(t.Context(), clientID); err == nil {
					t.Error("a refused client was stored")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			stored, err := s.App.AuthServer.Storage().Clients().Client(t.Context(), clientID)
			if err != nil {
				t.Fatal(err)
			}
			for _, cl := range []*struct {
				alg, enc string
			}{{string(got.IDTokenKeyEncAlg), string(got.IDTokenContentEncAlg)}, {string(stored.IDTokenKeyEncAlg), string(stored.IDTokenContentEncAlg)}} {
				wantEnc := ""
				if c.wantAlg != "" {
					wantEnc = "A256GCM"
				}
				if cl.alg != c.wantAlg || cl.enc != wantEnc {
					t.Errorf("id_token encryption = %q/%q, want %q/%q", cl.alg, cl.enc, c.wantAlg, wantEnc)
				}
			}
			if c.wantAlg != "" {
				k, err := stored.PublicJWKS.Key("enc-1")
				if err != nil || k.Algorithm != "RSA-OAEP" || k.Use != "enc" {
					t.Errorf("stored encryption key = %+v %v", k, err)
				}
			}
		})
	}
}

// TestEncryptedIDTokens runs the hybrid flow for a client that registered
// an encryption key and opens both ID tokens, the authorization response's
// and the token endpoint's, with go-jose directly (not Ponte's initiator
// code): RSA-OAEP, A256GCM, cty JWT, the client's kid, and inside a PS256
// JWT signed by the authorization server with the flow's claims.
func TestEncryptedIDTokens(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			// go-oidc reads the wall clock; the consent date follows it.
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), Clock: clock.NewFake(time.Now())})
			sigKey, encKey := rsaKey(t, 2048), rsaKey(t, 2048)
			sig := jose.JSONWebKey{Key: &sigKey.PublicKey, KeyID: "itp-sig", Algorithm: "PS256", Use: "sig"}
			appJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{sig}})
			app, _, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Encrypting ITP", CompanyKey: "ENC", Scopes: []string{"payments"}, JWKS: appJWKS})
			if err != nil {
				t.Fatal(err)
			}
			in := &oidctest.Initiator{ClientID: app.ClientID, RedirectURI: "https://initiator.example/enc/callback", Key: sigKey, KeyID: "itp-sig", Issuer: s.URL}
			clientJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{sig, {Key: &encKey.PublicKey, KeyID: "itp-enc", Algorithm: "RSA-OAEP", Use: "enc"}}})
			if _, err := s.App.AuthServer.Storage().RegisterInitiator(t.Context(), oidc.Initiator{
				ClientID: app.ClientID, Name: "Encrypting ITP", JWKS: clientJWKS, RedirectURIs: []string{in.RedirectURI}}); err != nil {
				t.Fatal(err)
			}
			// The consent is created with a signed body (fapiclient is only
			// the consent API's client here; the ID tokens are opened below).
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

			c := oidctest.NoRedirects()
			req := oidctest.NewRequest(created.ID)
			var par struct {
				RequestURI string `json:"request_uri"`
			}
			decode(t, in.PAR(t, c, s.URL, req), &par)
			authorize := s.URL + oidc.PathAuthorize + "?" + url.Values{"client_id": {in.ClientID}, "request_uri": {par.RequestURI}}.Encode()
			back := apptest.NewSandboxUser("47742663023", "1234567").Decide(t, s, authorize, true)
			frag, _ := url.ParseQuery(back.Fragment)
			code := frag.Get("code")
			if code == "" {
				t.Fatalf("no code in %s", back)
			}
			serverKeys := serverJWKS(t, s)
			claims := openEncrypted(t, frag.Get("id_token"), encKey, serverKeys)
			if claims["nonce"] != req.Nonce || claims["aud"] != in.ClientID || claims["iss"] != s.URL || claims["c_hash"] == nil || claims["s_hash"] == nil {
				t.Errorf("authorization response id_token claims = %v", claims)
			}

			status, tok := in.ExchangeCode(t, c, s.URL, code, req)
			if status != http.StatusOK {
				t.Fatalf("exchange: %d %v", status, tok)
			}
			raw, _ := tok["id_token"].(string)
			claims = openEncrypted(t, raw, encKey, serverKeys)
			if claims["aud"] != in.ClientID || claims["iss"] != s.URL || claims["sub"] == nil {
				t.Errorf("token endpoint id_token claims = %v", claims)
			}
		})
	}
}

// paymentConsent is a Payments v4 consent for the sandbox user 47742663023
// on now's date in Brasília.
func paymentConsent(now time.Time) string {
	return `{"data":{
  "loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
  "creditor":{"personType":"PESSOA_NATURAL","cpfCnpj":"12345678909","name":"Marco Antonio de Brito"},
  "payment":{"type":"PIX","date":"` + now.In(time.FixedZone("BRT", -3*3600)).Format("2006-01-02") + `","currency":"BRL","amount":"100.00",
    "details":{"localInstrument":"DICT","proxy":"12345678909",
      "creditorAccount":{"ispb":"12345678","issuer":"1774","number":"1234567890","accountType":"CACC"}}}}}`
}

func serverJWKS(t *testing.T, s *apptest.Server) *jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(s.URL + oidc.PathJWKS)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	decode(t, resp, &set)
	return &set
}

// openEncrypted decrypts a compact JWE id_token with go-jose, checks its
// header, verifies the nested JWS against the server's keys and returns
// its claims.
func openEncrypted(t *testing.T, raw string, key *rsa.PrivateKey, server *jose.JSONWebKeySet) map[string]any {
	t.Helper()
	if n := strings.Count(raw, "."); n != 4 {
		t.Fatalf("id_token has %d parts, want a 5-part JWE: %.60s", n+1, raw)
	}
	jwe, err := jose.ParseEncryptedCompact(raw, []jose.KeyAlgorithm{jose.RSA_OAEP}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatalf("parse JWE: %v", err)
	}
	if cty, _ := jwe.Header.ExtraHeaders[jose.HeaderContentType].(string); !strings.EqualFold(cty, "JWT") {
		t.Errorf("JWE cty = %q, want JWT (a nested JWT)", cty)
	}
	if jwe.Header.KeyID != "itp-enc" || jwe.Header.Algorithm != "RSA-OAEP" {
		t.Errorf("JWE header kid %q alg %q, want itp-enc RSA-OAEP", jwe.Header.KeyID, jwe.Header.Algorithm)
	}
	nested, err := jwe.Decrypt(key)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	jws, err := jose.ParseSignedCompact(string(nested), []jose.SignatureAlgorithm{jose.PS256})
	if err != nil || len(jws.Signatures) != 1 {
		t.Fatalf("nested token is not a PS256 JWS: %v", err)
	}
	keys := server.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("nested token signed with unknown kid %q", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("nested signature: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

package fapiclient_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// idTokenKeys are the keys of the id_token tests, generated once: the
// brand's signing key, Ponte's current and rotated-out encryption keys,
// and a stranger's key.
type idTokenKeys struct {
	brand, current, old, stranger *rsa.PrivateKey
}

var (
	keysOnce sync.Once
	keysVal  idTokenKeys
)

func testKeys(t testing.TB) idTokenKeys {
	t.Helper()
	keysOnce.Do(func() {
		gen := func() *rsa.PrivateKey {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			return k
		}
		keysVal = idTokenKeys{brand: gen(), current: gen(), old: gen(), stranger: gen()}
	})
	return keysVal
}

// signIDToken signs claims as the brand does (PS256, kid brand-1), with key.
func signIDToken(t testing.TB, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "brand-1"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// encrypt wraps payload in a compact JWE to pub with the given algorithms,
// kid and content type ("" leaves them out).
func encrypt(t testing.TB, payload string, pub *rsa.PublicKey, alg jose.KeyAlgorithm, enc jose.ContentEncryption, kid, cty string) string {
	t.Helper()
	opts := &jose.EncrypterOptions{}
	if cty != "" {
		opts = opts.WithContentType(jose.ContentType(cty))
	}
	e, err := jose.NewEncrypter(enc, jose.Recipient{Algorithm: alg, Key: pub, KeyID: kid}, opts)
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

func opener(k idTokenKeys, require bool) fapiclient.IDTokenOpener {
	return fapiclient.IDTokenOpener{
		BrandKeys:         &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.brand.PublicKey, KeyID: "brand-1", Algorithm: "PS256", Use: "sig"}}},
		DecryptionKeys:    []fapiclient.DecryptionKey{{KeyID: "ponte-enc-2", Key: k.current}, {KeyID: "ponte-enc-1", Key: k.old}},
		RequireEncryption: require,
	}
}

// TestIDTokenOpener: plain and nested encrypted id_tokens are opened as
// FAPI-BR allows, and every other shape is refused with ErrCallback.
func TestIDTokenOpener(t *testing.T) {
	t.Parallel()
	k := testKeys(t)
	claims := map[string]any{"iss": "https://brand.example", "aud": "ponte", "nonce": "n-1", "exp": time.Now().Add(time.Minute).Unix()}
	signed := signIDToken(t, k.brand, claims)
	good := encrypt(t, signed, &k.current.PublicKey, jose.RSA_OAEP, jose.A256GCM, "ponte-enc-2", "JWT")
	parts := strings.Split(good, ".")
	ct, _ := base64.RawURLEncoding.DecodeString(parts[3])
	ct[0] ^= 1
	tampered := strings.Join([]string{parts[0], parts[1], parts[2], base64.RawURLEncoding.EncodeToString(ct), parts[4]}, ".")
	badSig := signed[:len(signed)-6] + "AAAAAA"

	cases := []struct {
		name    string
		raw     string
		require bool
		ok      bool
	}{
		{"plain, the brand does not encrypt", signed, false, true},
		{"plain where encryption was registered", signed, true, false},
		{"RSA-OAEP, A256GCM, current key", good, true, true},
		{"lower-case cty (go-oidc's)", encrypt(t, signed, &k.current.PublicKey, jose.RSA_OAEP, jose.A256GCM, "ponte-enc-2", "jwt"), true, true},
		{"no cty", encrypt(t, signed, &k.current.PublicKey, jose.RSA_OAEP, jose.A256GCM, "ponte-enc-2", ""), true, true},
		{"rotated-out key, by kid", encrypt(t, signed, &k.old.PublicKey, jose.RSA_OAEP, jose.A256GCM, "ponte-enc-1", "JWT"), true, true},
		{"rotated-out key, no kid", encrypt(t, signed, &k.old.PublicKey, jose.RSA_OAEP, jose.A256GCM, "", "JWT"), true, true},
		{"another party's key, unknown kid", encrypt(t, signed, &k.stranger.PublicKey, jose.RSA_OAEP, jose.A256GCM, "other", "JWT"), true, false},
		{"another party's key under Ponte's kid", encrypt(t, signed, &k.stranger.PublicKey, jose.RSA_OAEP, jose.A256GCM, "ponte-enc-2", "JWT"), true, false},
		{"another party's key, no kid", encrypt(t, signed, &k.stranger.PublicKey, jose.RSA_OAEP, jose.A256GCM, "", "JWT"), true, false},
		{"tampered ciphertext", tampered, true, false},
		{"RSA1_5", encrypt(t, signed, &k.current.PublicKey, jose.RSA1_5, jose.A256GCM, "ponte-enc-2", "JWT"), true, false},
		{"RSA-OAEP-256", encrypt(t, signed, &k.current.PublicKey, jose.RSA_OAEP_256, jose.A256GCM, "ponte-enc-2", "JWT"), true, false},
		{"A128CBC-HS256", encrypt(t, signed, &k.current.PublicKey, jose.RSA_OAEP, jose.A128CBC_HS256, "ponte-enc-2", "JWT"), true, false},
		{"cty JSON", encrypt(t, signed, &k.current.PublicKey, jose.RSA_OAEP, jose.A256GCM, "ponte-enc-2", "JSON"), true, false},
		{"nested token with a bad signature", encrypt(t, badSig, &k.current.PublicKey, jose.RSA_OAEP, jose.A256GCM, "ponte-enc-2", "JWT"), true, false},
		{"nested token signed by a stranger", encrypt(t, signIDToken(t, k.stranger, claims), &k.current.PublicKey, jose.RSA_OAEP, jose.A256GCM, "ponte-enc-2", "JWT"), true, false},
		{"encrypted JSON, not a JWT", encrypt(t, `{"iss":"https://brand.example"}`, &k.current.PublicKey, jose.RSA_OAEP, jose.A256GCM, "ponte-enc-2", "JWT"), true, false},
		{"five parts of nothing", "a.b.c.d.e", false, false},
		{"four parts", "a.b.c.d", false, false},
		{"empty", "", false, false},
		{"too large", strings.Repeat("a", 20000) + ".b.c", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := opener(k, c.require).Open(c.raw)
			if c.ok {
				if err != nil || got.Nonce != "n-1" || got.Issuer != "https://brand.example" {
					t.Fatalf("Open = %+v, %v; want the claims", got, err)
				}
				return
			}
			if !errors.Is(err, fapiclient.ErrCallback) {
				t.Fatalf("Open = %+v, %v; want ErrCallback", got, err)
			}
		})
	}

	// Without keys of its own Ponte says so instead of failing obscurely.
	o := opener(k, false)
	o.DecryptionKeys = nil
	if _, err := o.Open(good); !errors.Is(err, fapiclient.ErrCallback) || !strings.Contains(err.Error(), "--itp-encryption-key") {
		t.Errorf("no decryption keys: %v", err)
	}
}

// FuzzIDTokenOpener: whatever arrives as an id_token, Open either returns
// claims or an ErrCallback; it never panics.
func FuzzIDTokenOpener(f *testing.F) {
	k := testKeys(f)
	signed := signIDToken(f, k.brand, map[string]any{"iss": "https://brand.example", "aud": "ponte", "nonce": "n"})
	f.Add(signed)
	f.Add(encrypt(f, signed, &k.current.PublicKey, jose.RSA_OAEP, jose.A256GCM, "ponte-enc-2", "JWT"))
	f.Add(encrypt(f, signed, &k.current.PublicKey, jose.RSA1_5, jose.A256GCM, "ponte-enc-2", "JWT"))
	f.Add(encrypt(f, "not a jwt", &k.old.PublicKey, jose.RSA_OAEP, jose.A256GCM, "", ""))
	f.Add("eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00iLCJjdHkiOiJKV1QifQ....")
	f.Add("a.b.c.d.e")
	f.Add("")
	o := opener(k, false)
	f.Fuzz(func(t *testing.T, raw string) {
		claims, err := o.Open(raw)
		if err == nil && claims == nil {
			t.Fatal("no claims and no error")
		}
		if err != nil && !errors.Is(err, fapiclient.ErrCallback) {
			t.Fatalf("error %v is not ErrCallback", err)
		}
	})
}

// TestEncryptedLoopAgainstPonte runs the redirect journey against Ponte's
// holder side with an initiator that registered an encryption key: the
// callback's id_token and the token endpoint's are nested JWEs, Ponte's
// checks accept them, and a client with the wrong key refuses them.
func TestEncryptedLoopAgainstPonte(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), Clock: clock.NewFake(time.Now())})
			k := testKeys(t)
			sigKey, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			sig := jose.JSONWebKey{Key: &sigKey.PublicKey, KeyID: "itp-1", Algorithm: "PS256", Use: "sig"}
			appJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{sig}})
			app, _, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Ponte ITP", CompanyKey: "ITP", Scopes: []string{"payments"}, JWKS: appJWKS})
			if err != nil {
				t.Fatal(err)
			}
			// At the authorization server the client also registers its encryption key.
			clientJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{sig,
				{Key: &k.current.PublicKey, KeyID: "ponte-enc-2", Algorithm: "RSA-OAEP", Use: "enc"}}})
			if _, err := s.App.AuthServer.Storage().RegisterInitiator(t.Context(), oidc.Initiator{
				ClientID: app.ClientID, Name: "Ponte ITP", JWKS: clientJWKS, RedirectURIs: []string{redirectURI}}); err != nil {
				t.Fatal(err)
			}
			c := &fapiclient.Client{Issuer: s.URL, APIBase: s.URL, ClientID: app.ClientID, Key: sigKey, KeyID: "itp-1",
				RedirectURI: redirectURI, HTTP: &http.Client{Timeout: 10 * time.Second}, Clock: clock.System{},
				DecryptionKeys: []fapiclient.DecryptionKey{{KeyID: "ponte-enc-2", Key: k.current}}, RequireEncryptedIDToken: true}
			ctx := t.Context()
			token, err := c.Token(ctx, "payments")
			if err != nil {
				t.Fatal(err)
			}
			body := strings.Replace(consent, "2024-10-15", s.Clock.Now().In(time.FixedZone("BRT", -3*3600)).Format("2006-01-02"), 1)
			created, err := c.CreateConsent(ctx, token, payments.ConsentsPath, json.RawMessage(body), uuid.NewString())
			if err != nil {
				t.Fatal(err)
			}
			ar := fapiclient.NewAuthRequest("openid payments consent:" + created.ID)
			authorize, err := c.Push(ctx, ar)
			if err != nil {
				t.Fatal(err)
			}
			cb := callbackOf(apptest.NewSandboxUser("47742663023", "1234567").Decide(t, s, authorize, true))
			if n := strings.Count(cb.IDToken, "."); n != 4 {
				t.Fatalf("the callback's id_token has %d parts, want a 5-part JWE: %.80s", n+1, cb.IDToken)
			}

			// Ponte without the key, or with another key under the same kid, refuses it.
			for name, keys := range map[string][]fapiclient.DecryptionKey{
				"no key":    nil,
				"wrong key": {{KeyID: "ponte-enc-2", Key: k.stranger}},
			} {
				wrong := &fapiclient.Client{Issuer: s.URL, APIBase: s.URL, ClientID: app.ClientID, Key: sigKey, KeyID: "itp-1",
					RedirectURI: redirectURI, HTTP: &http.Client{Timeout: 10 * time.Second}, Clock: clock.System{}, DecryptionKeys: keys}
				if _, err := wrong.VerifyCallback(ctx, cb, ar); !errors.Is(err, fapiclient.ErrCallback) {
					t.Errorf("%s: %v, want ErrCallback", name, err)
				}
			}
			// The callback's checks still hold inside the encryption.
			if _, err := c.VerifyCallback(ctx, fapiclient.Callback{Code: cb.Code + "x", IDToken: cb.IDToken, State: cb.State}, ar); !errors.Is(err, fapiclient.ErrCallback) {
				t.Errorf("other code: %v, want ErrCallback", err)
			}
			code, err := c.VerifyCallback(ctx, cb, ar)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := c.ExchangeCode(ctx, code, ar)
			if err != nil || tok.AccessToken == "" {
				t.Fatalf("exchange: %+v %v", tok, err)
			}
			if n := strings.Count(tok.IDToken, "."); n != 4 {
				t.Errorf("the token endpoint's id_token has %d parts, want a 5-part JWE", n+1)
			}
		})
	}
}

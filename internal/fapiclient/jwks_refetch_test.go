package fapiclient_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/fapiclient"
)

// rotatingBrand is a brand that publishes a JWKS the test changes (a key
// rotation) and counts how often it is fetched; its consent reads are
// signed with whichever key the test names.
type rotatingBrand struct {
	srv *httptest.Server

	mu        sync.Mutex
	published []jose.JSONWebKey
	fetches   int
	signer    signingKey // signs consent reads
}

type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

func newRotatingBrand(t *testing.T, first signingKey) *rotatingBrand {
	t.Helper()
	b := &rotatingBrand{signer: first}
	b.publish(first)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": b.srv.URL, "authorization_endpoint": b.srv.URL + "/authorize",
			"token_endpoint": b.srv.URL + "/token", "pushed_authorization_request_endpoint": b.srv.URL + "/par", "jwks_uri": b.srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.fetches++
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: b.published})
	})
	mux.HandleFunc("GET /open-banking/payments/v4/consents/{id}", func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		k := b.signer
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwt")
		_, _ = w.Write([]byte(sign(t, k, map[string]any{"aud": "ponte-client", "iss": "brand-org",
			"data": map[string]any{"consentId": r.PathValue("id"), "status": "AUTHORISED"}})))
	})
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	return b
}

// publish replaces the brand's JWKS with keys.
func (b *rotatingBrand) publish(keys ...signingKey) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published = nil
	for _, k := range keys {
		b.published = append(b.published, jose.JSONWebKey{Key: &k.key.PublicKey, KeyID: k.kid, Algorithm: "PS256", Use: "sig"})
	}
}

func (b *rotatingBrand) signWith(k signingKey) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.signer = k
}

func (b *rotatingBrand) fetchCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fetches
}

func sign(t testing.TB, k signingKey, claims any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: k.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.kid))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func genKey(t *testing.T, kid string) signingKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, key: k}
}

func half(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// TestJWKSRefetchOnUnknownKid: a brand rotates its signing key while a
// client holds its old JWKS; the first ID token and the first signed answer
// with the new kid verify (one fetch of the JWKS each rotation); a kid the
// brand never published is refused and costs at most one fetch per
// interval, however many tokens name it, also when they come at once.
func TestJWKSRefetchOnUnknownKid(t *testing.T) {
	t.Parallel()
	k1, k2, k3, stranger := genKey(t, "k1"), genKey(t, "k2"), genKey(t, "k3"), genKey(t, "never")
	b := newRotatingBrand(t, k1)
	clk := clock.NewFake(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	c := &fapiclient.Client{Issuer: b.srv.URL, APIBase: b.srv.URL, ClientID: "ponte-client", HTTP: b.srv.Client(), Clock: clk}
	ctx := t.Context()

	callback := func(k signingKey) (fapiclient.Callback, fapiclient.AuthRequest) {
		ar := fapiclient.NewAuthRequest("openid payments")
		code := "code-" + k.kid
		now := clk.Now()
		tok := sign(t, k, map[string]any{"iss": b.srv.URL, "aud": "ponte-client", "sub": "u", "iat": now.Unix(),
			"exp": now.Add(5 * time.Minute).Unix(), "nonce": ar.Nonce, "c_hash": half(code), "s_hash": half(ar.State)})
		return fapiclient.Callback{Code: code, IDToken: tok, State: ar.State}, ar
	}
	verify := func(client *fapiclient.Client, k signingKey) error {
		cb, ar := callback(k)
		_, err := client.VerifyCallback(ctx, cb, ar)
		return err
	}

	if err := verify(c, k1); err != nil {
		t.Fatalf("the first key: %v", err)
	}
	if n := b.fetchCount(); n != 1 {
		t.Fatalf("fetches after discovery: %d, want 1", n)
	}

	// The brand rotates to k2 (still publishing k1). A client derived for
	// another redirect URI meets k2 first; the refetch serves both.
	b.publish(k2, k1)
	derived := c.WithRedirectURI("https://itp.example/other")
	if err := verify(derived, k2); err != nil {
		t.Fatalf("the rotated key through the derived client: %v", err)
	}
	if err := verify(c, k2); err != nil {
		t.Fatalf("the rotated key through the first client: %v", err)
	}
	if err := verify(c, k1); err != nil {
		t.Fatalf("the old key, still published: %v", err)
	}
	if n := b.fetchCount(); n != 2 {
		t.Fatalf("fetches after the rotation: %d, want 2", n)
	}

	// A kid the brand never published: refused; within the interval of
	// the last fetch, no fetch at all, even 20 at once.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := verify(c, stranger); !errors.Is(err, fapiclient.ErrCallback) {
				t.Errorf("the unknown kid: %v, want ErrCallback", err)
			}
		}()
	}
	wg.Wait()
	if n := b.fetchCount(); n != 2 {
		t.Errorf("fetches for an unknown kid within the interval: %d, want 2", n)
	}
	// After the interval: one fetch for 20 tokens at once, still refused.
	clk.Advance(fapiclient.DefaultJWKSRefetchInterval)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := verify(c, stranger); !errors.Is(err, fapiclient.ErrCallback) {
				t.Errorf("the unknown kid after the interval: %v, want ErrCallback", err)
			}
		}()
	}
	wg.Wait()
	if n := b.fetchCount(); n != 3 {
		t.Errorf("fetches for an unknown kid after the interval: %d, want 3", n)
	}

	// A signed answer with a rotated key: within the interval it is refused
	// (the brand's rotation waits for the interval), after it it verifies.
	b.publish(k3, k2)
	b.signWith(k3)
	if _, err := c.GetConsent(ctx, "at", "/open-banking/payments/v4/consents/c1"); !errors.Is(err, fapiclient.ErrBrand) {
		t.Errorf("an answer signed with a new key within the interval: %v, want ErrBrand", err)
	}
	clk.Advance(fapiclient.DefaultJWKSRefetchInterval)
	consent, err := c.GetConsent(ctx, "at", "/open-banking/payments/v4/consents/c1")
	if err != nil || consent.Status != "AUTHORISED" {
		t.Fatalf("an answer signed with the new key: %+v %v", consent, err)
	}
	if err := verify(c, k3); err != nil {
		t.Errorf("an ID token with the new key: %v", err)
	}
	if n := b.fetchCount(); n != 4 {
		t.Errorf("fetches after the second rotation: %d, want 4", n)
	}
	// The refetched set replaced the cached one: k1, no longer published, is refused.
	if err := verify(c, k1); !errors.Is(err, fapiclient.ErrCallback) {
		t.Errorf("the retired key: %v, want ErrCallback", err)
	}
}

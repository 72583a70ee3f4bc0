package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/keyset"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/internal/vault"
)

// TestRollingRotation: two instances share a key set and a database; the
// signing key and the data key are rotated (as 'ponte keys rotate-…' does)
// and only A is restarted. B, not yet restarted, accepts the tokens A now
// signs with the new key and publishes that key, and opens what A seals
// with the new data key; A accepts B's tokens and opens B's values.
func TestRollingRotation(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	if _, err := keyset.Init(keys, keyset.InitOptions{Sandbox: true, Now: apptest.Epoch}); err != nil {
		t.Fatal(err)
	}
	engines := storetest.Engines()
	e := engines[len(engines)-1] // PostgreSQL when configured: the scale-out engine
	dbURL := e.URL(t)
	a, err := newInstance(t, dbURL, keys)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newInstance(t, dbURL, keys)
	if err != nil {
		t.Fatal(err)
	}
	srvA, srvB := httptest.NewServer(a.Handler()), httptest.NewServer(b.Handler())
	defer srvB.Close()
	var creds auth.DemoCredentials
	if raw, err := os.ReadFile(filepath.Join(keys, "sandbox-demo-client.json")); err != nil || json.Unmarshal(raw, &creds) != nil {
		t.Fatalf("demo client: %v", err)
	}
	oldToken := clientToken(t, srvA.URL, creds)

	// The rotation, as the commands do it: files, then fingerprints.
	signingPath, dataPath := filepath.Join(keys, "signing-key.pem"), filepath.Join(keys, "data.key")
	signing, err := auth.RotateSigningKey(signingPath)
	if err != nil {
		t.Fatal(err)
	}
	data, err := vault.Rotate(dataPath)
	if err != nil {
		t.Fatal(err)
	}
	for id, path := range map[string]string{keyset.SigningKey: signingPath, keyset.DataKeyID: dataPath} {
		k, _ := keyset.Lookup(id)
		en, err := keyset.FingerprintFile(k, path)
		if err != nil {
			t.Fatal(err)
		}
		if err := keyset.Rotate(t.Context(), a.DB, time.Now(), id, en.Fingerprint); err != nil {
			t.Fatal(err)
		}
	}

	// A restarts with the rotated set; B does not.
	srvA.Close()
	a.Close()
	a, err = newInstance(t, dbURL, keys)
	if err != nil {
		t.Fatalf("A restarted with the rotated key set: %v", err)
	}
	srvA = httptest.NewServer(a.Handler())
	defer srvA.Close()
	newToken := clientToken(t, srvA.URL, creds)
	if kid := jwsKID(t, newToken); kid != signing.KeyID {
		t.Fatalf("A signs with %s, want the new key %s", kid, signing.KeyID)
	}
	for _, c := range []struct {
		name, base, token string
	}{{"B, a token of the new key", srvB.URL, newToken}, {"A, a token of the old key", srvA.URL, oldToken}} {
		if status := getStatus(t, c.base+"/webhooks/v1/subscriptions", c.token); status != http.StatusOK {
			t.Errorf("%s: %d", c.name, status)
		}
	}
	for _, base := range []string{srvA.URL, srvB.URL} {
		for _, path := range []string{"/oauth/jwks", "/.well-known/jwks.json"} {
			var set jose.JSONWebKeySet
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			err = json.NewDecoder(resp.Body).Decode(&set)
			resp.Body.Close()
			if err != nil || len(set.Key(signing.KeyID)) != 1 || len(set.Key(signing.Retired[0].KeyID)) != 1 {
				t.Errorf("%s%s does not publish both keys: %v %v", base, path, set.Keys, err)
			}
		}
	}

	sealedByA, err := a.Vault.Seal([]byte("5555444433332222"), "card-pan:rolling")
	if err != nil || !strings.HasPrefix(sealedByA, "v2:"+data.KeyID()+":") {
		t.Fatalf("A seals %q (%v), want the new key %s", sealedByA, err, data.KeyID())
	}
	if pt, err := b.Vault.Open(sealedByA, "card-pan:rolling"); err != nil || string(pt) != "5555444433332222" {
		t.Errorf("B cannot open what A sealed with the new key: %v", err)
	}
	sealedByB, _ := b.Vault.Seal([]byte("4444"), "card-pan:b")
	if pt, err := a.Vault.Open(sealedByB, "card-pan:b"); err != nil || string(pt) != "4444" {
		t.Errorf("A cannot open what B sealed with the old key: %v", err)
	}
}

func jwsKID(t *testing.T, raw string) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.PS256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}

func getStatus(t *testing.T, u, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

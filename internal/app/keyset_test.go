package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/keyset"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// instance is one Ponte of a scale-out test: its own data directory, the
// shared database and key set, and the public URL every instance shares
// (the load balancer's).
func newInstance(t *testing.T, dbURL, keysDir string) (*app.App, error) {
	t.Helper()
	return newModeInstance(t, dbURL, keysDir, config.Sandbox)
}

func newModeInstance(t *testing.T, dbURL, keysDir, mode string) (*app.App, error) {
	t.Helper()
	cfg := config.Config{
		Addr: "127.0.0.1:1", DatabaseURL: dbURL, DataDir: t.TempDir(), KeysDir: keysDir, Mode: mode,
		PublicURL: "http://ponte.test", TokenTTL: 5 * time.Minute, LogFormat: "json", ShutdownTimeout: 5 * time.Second, SweepInterval: time.Hour,
	}
	if err := cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg, app.NewLogger(io.Discard, "json"), app.WithClock(clock.NewFake(apptest.Epoch)))
	if err == nil {
		t.Cleanup(func() { a.Close() })
	}
	return a, err
}

// copyKeys copies a key set into a new directory the test may change.
func copyKeys(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "keys")
	if err := os.Mkdir(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestKeySetSharedByInstances: two instances started from one key set
// against one database are one Ponte: a token one issues the other
// verifies, a value one seals the other opens, the demo client is the same
// client with the same secret. An instance with another signing key is
// refused naming it, and a key set missing a file is refused naming the
// file and `ponte keys init`; neither creates a file.
func TestKeySetSharedByInstances(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	// Dated like the test clock, so the Apple Pay test root is valid then.
	if _, err := keyset.Init(keys, keyset.InitOptions{Sandbox: true, Now: apptest.Epoch}); err != nil {
		t.Fatal(err)
	}
	engines := storetest.Engines()
	e := engines[len(engines)-1] // PostgreSQL when configured: the scale-out engine
	dbURL := e.URL(t)
	a, err := newInstance(t, dbURL, keys)
	if err != nil {
		t.Fatalf("%s: instance A: %v", e.Name, err)
	}
	b, err := newInstance(t, dbURL, keys)
	if err != nil {
		t.Fatalf("%s: instance B: %v", e.Name, err)
	}
	srvA, srvB := httptest.NewServer(a.Handler()), httptest.NewServer(b.Handler())
	defer srvA.Close()
	defer srvB.Close()

	if a.Demo.ClientID != b.Demo.ClientID || a.DemoSecret != b.DemoSecret {
		t.Fatalf("demo clients differ: %s/%s", a.Demo.ClientID, b.Demo.ClientID)
	}
	var creds auth.DemoCredentials
	if raw, err := os.ReadFile(filepath.Join(keys, "sandbox-demo-client.json")); err != nil || json.Unmarshal(raw, &creds) != nil ||
		creds.ClientID != a.Demo.ClientID || creds.ClientSecret != a.DemoSecret {
		t.Fatalf("the demo client is not the key set's (%v)", err)
	}
	// A token issued by A is accepted by B, and the other way round.
	for _, pair := range [][2]*httptest.Server{{srvA, srvB}, {srvB, srvA}} {
		tok := clientToken(t, pair[0].URL, creds)
		req, _ := http.NewRequest("GET", pair[1].URL+"/webhooks/v1/subscriptions", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("a token from %s at %s: %d %s", pair[0].URL, pair[1].URL, resp.StatusCode, body)
		}
	}
	sealed, err := a.Vault.Seal([]byte("5555444433332222"), "card-pan:test")
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := b.Vault.Open(sealed, "card-pan:test"); err != nil || string(pt) != "5555444433332222" {
		t.Errorf("B cannot open what A sealed: %q %v", pt, err)
	}

	// Another signing key: refused, naming the key and its file.
	other := copyKeys(t, keys)
	if err := os.Remove(filepath.Join(other, "signing-key.pem")); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.LoadOrCreateKey(filepath.Join(other, "signing-key.pem")); err != nil {
		t.Fatal(err)
	}
	_, err = newInstance(t, dbURL, other)
	if err == nil {
		t.Fatal("an instance with another signing key started")
	}
	for _, w := range []string{"token signing key", filepath.Join(other, "signing-key.pem"), "ponte keys rotate-signing-key"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q does not name %q", err, w)
		}
	}

	// A key set missing a file: refused, and nothing is created.
	missing := copyKeys(t, keys)
	if err := os.Remove(filepath.Join(missing, "admin-token")); err != nil {
		t.Fatal(err)
	}
	_, err = newInstance(t, dbURL, missing)
	if err == nil {
		t.Fatal("an instance with an incomplete key set started")
	}
	for _, w := range []string{"admin token", filepath.Join(missing, "admin-token"), "ponte keys init --dir " + missing} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q does not name %q", err, w)
		}
	}
	if _, err := os.Stat(filepath.Join(missing, "admin-token")); err == nil {
		t.Error("the missing admin token was created in the key set")
	}
}

// clientToken gets a client_credentials token at base.
func clientToken(t *testing.T, base string, c auth.DemoCredentials) string {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ClientID, c.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.AccessToken == "" {
		t.Fatalf("token at %s: %d %v", base, resp.StatusCode, err)
	}
	return out.AccessToken
}

// TestKeySetProduction: a production instance takes everything from a
// production key set, its organisation id too (no --org-id), publishes the
// set's initiator encryption key, answers the set's admin token, and
// writes no key into its data directory.
func TestKeySetProduction(t *testing.T) {
	t.Parallel()
	keys := filepath.Join(t.TempDir(), "keys")
	const org = "5b1e2a8c-3f4d-4e6a-9b7c-1d2e3f4a5b6c"
	if _, err := keyset.Init(keys, keyset.InitOptions{OrgID: org, Now: apptest.Epoch}); err != nil {
		t.Fatal(err)
	}
	// SQLite in the data directory, which then holds the database only.
	a, err := newModeInstance(t, "", keys, config.Production)
	if err != nil {
		t.Fatal(err)
	}
	if a.Config.OrganisationID != org {
		t.Errorf("organisation id %q, want the key set's %s", a.Config.OrganisationID, org)
	}
	token, err := os.ReadFile(filepath.Join(keys, "admin-token"))
	if err != nil || a.PCM.AdminToken != strings.TrimSpace(string(token)) {
		t.Errorf("admin token is not the key set's (%v)", err)
	}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + app.PathITPJWKS)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	enc, err := auth.LoadOrCreateKey(filepath.Join(keys, "itp-encryption-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"kid":"`+enc.KeyID+`"`) {
		t.Errorf("%s: %d %s, want the key set's encryption key %s", app.PathITPJWKS, resp.StatusCode, body, enc.KeyID)
	}
	files, err := os.ReadDir(a.Config.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !strings.HasPrefix(f.Name(), "ponte.db") {
			t.Errorf("the data directory holds %s", f.Name())
		}
	}
}

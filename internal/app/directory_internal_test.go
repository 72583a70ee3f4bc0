package app

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/directory"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestWireDirectoryConfig: which keys, issuer and keystore the verifier
// uses for each combination of mode and --directory-* flags.
func TestWireDirectoryConfig(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "real-1", Algorithm: "PS256"}}})
	jwksFile := filepath.Join(t.TempDir(), "directory.jwks")
	if err := os.WriteFile(jwksFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	const public = "http://ponte.test"
	for _, tc := range []struct {
		name                       string
		cfg                        config.Config
		sandbox                    bool
		issuer, keystore, knownKid string
	}{
		{"sandbox defaults", config.Config{Mode: config.Sandbox}, true, directory.SandboxIssuer, public + "/sandbox/directory/keystore", ""},
		{"sandbox against the real sandbox Directory",
			config.Config{Mode: config.Sandbox, DirectoryJWKS: jwksFile, DirectoryIssuer: "Open Banking Open Banking Brasil sandbox SSA issuer",
				DirectoryKeystore: "https://keystore.sandbox.directory.openbankingbrasil.org.br"},
			true, "Open Banking Open Banking Brasil sandbox SSA issuer", "https://keystore.sandbox.directory.openbankingbrasil.org.br", "real-1"},
		{"production defaults", config.Config{Mode: config.Production}, false, directory.ProductionIssuer, directory.ProductionKeystore, ""},
		{"production with a keys file", config.Config{Mode: config.Production, DirectoryJWKS: jwksFile, DirectoryIssuer: "Other issuer"},
			false, "Other issuer", directory.ProductionKeystore, "real-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.DataDir, cfg.PublicURL = t.TempDir(), public
			b := base{cfg: cfg, logger: slog.New(slog.NewTextHandler(io.Discard, nil)), clock: clock.NewFake(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)),
				db: storetest.Open(t, storetest.Engines()[0].URL(t))}
			mux := http.NewServeMux()
			d, err := wireDirectory(b, mux, "admin")
			if err != nil {
				t.Fatal(err)
			}
			if (d.Sandbox != nil) != tc.sandbox || d.Verifier.Issuer != tc.issuer || d.Verifier.Keystore != tc.keystore || d.Keystore != tc.keystore {
				t.Fatalf("directory %+v, verifier %+v", d, d.Verifier)
			}
			if _, pattern := mux.Handler(&http.Request{Method: "GET", URL: mustURL(t, public+directory.PathJWKS)}); (pattern != "") != tc.sandbox {
				t.Fatalf("sandbox routes mounted: %q, want %v", pattern, tc.sandbox)
			}
			if tc.knownKid != "" {
				if _, err := d.Verifier.Keys.Key(context.Background(), tc.knownKid); err != nil {
					t.Fatalf("configured key %s: %v", tc.knownKid, err)
				}
			}
			if tc.sandbox && tc.knownKid == "" {
				// The sandbox's own key, in process.
				if _, err := d.Verifier.Keys.Key(context.Background(), d.Sandbox.PublicKeys().Keys[0].KeyID); err != nil {
					t.Fatalf("sandbox key: %v", err)
				}
			}
		})
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

package app_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/cards"
	"github.com/ponte-ofb/ponte/internal/dataapi"
)

// TestFirstStartMaterial: on an empty data directory the keys are generated
// concurrently while the database migrates; once ready, every key file
// exists, the keys in use are the ones in the files, and the sandbox data
// set (the demo customer's 2,200 transactions) is already there.
func TestFirstStartMaterial(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	s := apptest.Start(t, apptest.Options{DataDir: dir})
	if r := s.Do(t, "GET", "/readyz", nil, ""); r.Status != 200 {
		t.Fatalf("readyz %d %s", r.Status, r.Body)
	}
	kid := func(name string) string {
		t.Helper()
		k, err := auth.LoadOrCreateKey(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return k.KeyID
	}
	var published jose.JSONWebKeySet
	if r := s.Do(t, "GET", "/.well-known/jwks.json", nil, ""); r.Status != 200 || json.Unmarshal(r.Body, &published) != nil {
		t.Fatalf("jwks: %d %s", r.Status, r.Body)
	}
	if len(published.Key(kid("signing-key.pem"))) != 1 {
		t.Errorf("published keys %s do not hold signing-key.pem's", mustJSON(t, published))
	}
	var demo jose.JSONWebKeySet
	if err := json.Unmarshal(s.App.Demo.JWKS, &demo); err != nil || len(demo.Key(kid("sandbox-partner-key.pem"))) != 1 {
		t.Errorf("demo application's keys %s do not hold sandbox-partner-key.pem's (%v)", s.App.Demo.JWKS, err)
	}
	for _, name := range []string{cards.SandboxTAVKeyFile, cards.SandboxPEPKPrivateFile, "sandbox-itp-key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("key file: %v", err)
		}
	}
	var n int
	if err := s.App.DB.Read().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM account_transactions t
		JOIN accounts a ON a.id = t.account_id JOIN customers c ON c.id = a.customer_id
		WHERE c.application_id = $1 AND c.document = $2`, s.App.Demo.ID, dataapi.SandboxDocument).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2200 {
		t.Errorf("sandbox transactions: %d, want 2200", n)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

package auth_test

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/keyset"
)

// TestRotateSigningKeyFiles: rotation retires the current key into
// signing-key.retired/<kid>.pem (0600) and writes a new one; loading the
// key finds the retired ones, newest first; a missing key is not created.
func TestRotateSigningKeyFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "signing-key.pem")
	if _, err := auth.RotateSigningKey(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("rotating a missing key: %v, want fs.ErrNotExist", err)
	}
	first, err := auth.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	second, err := auth.RotateSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	third, err := auth.RotateSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if auth.RetiredDir(path) != filepath.Join(dir, "signing-key.retired") {
		t.Errorf("RetiredDir = %s", auth.RetiredDir(path))
	}
	for _, k := range []*auth.SigningKey{first, second} {
		fi, err := os.Stat(filepath.Join(dir, "signing-key.retired", k.KeyID+".pem"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("retired key %s: %v %v", k.KeyID, fi, err)
		}
	}
	loaded, err := auth.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.KeyID != third.KeyID || len(loaded.Retired) != 2 {
		t.Fatalf("loaded %s with %d retired, want %s with 2", loaded.KeyID, len(loaded.Retired), third.KeyID)
	}
	kids := map[string]bool{first.KeyID: true, second.KeyID: true}
	for _, r := range loaded.Retired {
		if !kids[r.KeyID] {
			t.Errorf("unexpected retired key %s", r.KeyID)
		}
	}
	set := loaded.JWKS()
	if len(set.Keys) != 3 || set.Keys[0].KeyID != third.KeyID {
		t.Errorf("JWKS = %v, want the current key first and both retired", set.Keys)
	}
	// A retired copy of the current key (a rotation interrupted after
	// retiring it) is not listed twice.
	os.WriteFile(filepath.Join(dir, "signing-key.retired", third.KeyID+".pem"), mustRead(t, path), 0o600)
	if again, err := auth.ReadKey(path); err != nil || len(again.Retired) != 2 {
		t.Errorf("current key also retired: %d retired, %v", len(again.Retired), err)
	}
	os.WriteFile(filepath.Join(dir, "signing-key.retired", "broken.pem"), []byte("not a key"), 0o600)
	if _, err := auth.ReadKey(path); err == nil {
		t.Error("a broken retired key file was accepted")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSigningKeyRotationTokens: after the signing key is rotated and the
// instance restarted, an access token issued before still verifies (until
// it expires), a new one is signed by the new key, and both JWKS endpoints
// list both keys. A token whose kid names no key of the set is refused.
func TestSigningKeyRotationTokens(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	old := s.Token(t, "")
	rotated, err := auth.RotateSigningKey(filepath.Join(s.Options.DataDir, "signing-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	recordRotation(t, s)
	s = s.Restart(t)
	authorized := func(tok string) int {
		r := s.Do(t, "GET", "/openfinance/consent-flow/ticket/0123456789abcdef0123456789abcdef", map[string]string{"Authorization": "Bearer " + tok}, "")
		return r.Status
	}
	if st := authorized(old); st != http.StatusNotFound {
		t.Errorf("token from before the rotation: %d, want 404 (authenticated, no such ticket)", st)
	}
	fresh := s.Token(t, "")
	if kid := tokenKID(t, fresh); kid != rotated.KeyID {
		t.Errorf("new token kid %s, want %s", kid, rotated.KeyID)
	}
	if st := authorized(fresh); st != http.StatusNotFound {
		t.Errorf("new token: %d", st)
	}
	for _, path := range []string{"/.well-known/jwks.json", "/oauth/jwks"} {
		var set jose.JSONWebKeySet
		s.Do(t, "GET", path, nil, "").JSON(t, &set)
		if len(set.Keys) != 2 || set.Keys[0].KeyID != rotated.KeyID || set.Keys[1].KeyID != rotated.Retired[0].KeyID || set.Keys[1].KeyID != tokenKID(t, old) {
			t.Errorf("%s lists %v, want the new key then the retired one", path, set.Keys)
		}
	}
	// Once the retired key is removed, its tokens stop verifying.
	if err := os.RemoveAll(auth.RetiredDir(filepath.Join(s.Options.DataDir, "signing-key.pem"))); err != nil {
		t.Fatal(err)
	}
	s = s.Restart(t)
	if st := authorized(old); st != http.StatusUnauthorized {
		t.Errorf("token of a removed key: %d, want 401", st)
	}
}

func tokenKID(t *testing.T, raw string) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.PS256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
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

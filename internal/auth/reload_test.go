package auth

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ponte-ofb/ponte/internal/clock"
)

// TestRunningInstanceAfterRotation: an instance loaded before the key set was
// rotated (not yet restarted) verifies tokens a restarted instance signs
// with the new key and publishes the new key in its JWKS, by looking at its
// key files again; it keeps signing with its own key.
func TestRunningInstanceAfterRotation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "signing-key.pem")
	c := clock.NewFake(time.Now())
	loaded, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	running, _ := NewTokens(loaded, "https://ponte.example", time.Minute, c, nil)
	rotated, err := RotateSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	restarted, _ := NewTokens(rotated, "https://ponte.example", time.Minute, c, nil)
	app := &Application{ClientID: "client-1"}
	fresh, err := restarted.Issue(app, []string{"s"})
	if err != nil {
		t.Fatal(err)
	}
	if claims, err := running.verify(fresh, c.Now()); err != nil || claims.AuthorizedParty != "client-1" {
		t.Fatalf("the running instance refuses a token of the new key: %v", err)
	}
	old, _ := running.Issue(app, []string{"s"})
	if _, err := restarted.verify(old, c.Now()); err != nil {
		t.Errorf("the restarted instance refuses a token of the old key: %v", err)
	}
	if kid := headerKID(t, old); kid != loaded.KeyID {
		t.Errorf("the running instance signs with %s, want its own key %s", kid, loaded.KeyID)
	}

	// The JWKS of an instance loaded before the rotation lists the new key.
	again, err := ReadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RotateSigningKey(path); err != nil {
		t.Fatal(err)
	}
	newest, _ := ReadKey(path)
	set := again.JWKS()
	if len(set.Keys) != 3 || set.Keys[0].KeyID != again.KeyID || len(set.Key(newest.KeyID)) != 1 {
		t.Errorf("JWKS of the running instance: %v, want its key first and the newest %s", set.Keys, newest.KeyID)
	}

	// A key id no file has stays refused.
	other, _ := LoadOrCreateKey(filepath.Join(t.TempDir(), "other.pem"))
	stranger, _ := NewTokens(other, "https://ponte.example", time.Minute, c, nil)
	foreign, _ := stranger.Issue(app, []string{"s"})
	if _, err := running.verify(foreign, c.Now()); err == nil {
		t.Error("a token of a key in no file verified")
	}
}

func headerKID(t *testing.T, raw string) string {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.PS256})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Headers[0].KeyID
}

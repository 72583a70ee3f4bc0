package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func TestCLIInitiators(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	public, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "PS256", Use: "sig"}}})
	private, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key, KeyID: "k1", Algorithm: "PS256", Use: "sig"}}})
	pubFile, privFile := filepath.Join(dir, "public.json"), filepath.Join(dir, "private.json")
	os.WriteFile(pubFile, public, 0o600)
	os.WriteFile(privFile, private, 0o600)
	// An initiator is a partner application: an unknown client_id is refused.
	unknown := append([]string{"initiators", "add"}, storage(dir)...)
	unknown = append(unknown, "--app", "itp-1", "--name", "Iniciadora Exemplo", "--jwks", pubFile, "--redirect-url", "https://itp.example/cb")
	if r := ponteCLI(t, unknown...); r.code != 1 || !strings.Contains(r.output(), "ponte apps create") {
		t.Errorf("unknown application accepted: %s", r)
	}
	app := createApp(t, dir)
	add := func(jwks string, extra ...string) cliResult {
		args := append([]string{"initiators", "add"}, storage(dir)...)
		args = append(args, "--app", app.clientID, "--name", "Iniciadora Exemplo", "--jwks", jwks)
		return ponteCLI(t, append(args, extra...)...)
	}
	if r := add(pubFile, "--redirect-url", "https://itp.example/cb"); r.code != 0 || !strings.Contains(r.stdout, app.clientID) {
		t.Fatalf("add: %s", r)
	}
	if r := add(privFile, "--redirect-url", "https://itp.example/cb"); r.code != 1 || !strings.Contains(r.output(), "not a public key") {
		t.Errorf("private key accepted: %s", r)
	}
	if r := add(pubFile); r.code != 1 || !strings.Contains(r.output(), "redirect_uri") {
		t.Errorf("no redirect URI accepted: %s", r)
	}
	if r := add(pubFile, "--redirect-url", "/relative"); r.code != 1 {
		t.Errorf("relative redirect URI accepted: %s", r)
	}
	list := mustCLI(t, 0, append([]string{"initiators", "list"}, storage(dir)...)...)
	if !strings.Contains(list.stdout, app.clientID) || !strings.Contains(list.stdout, "Iniciadora Exemplo") || !strings.Contains(list.stdout, "https://itp.example/cb") {
		t.Errorf("list: %s", list)
	}
	if r := ponteCLI(t, append([]string{"initiators", "add"}, storage(dir)...)...); r.code != 2 {
		t.Errorf("missing flags: %s", r)
	}
}

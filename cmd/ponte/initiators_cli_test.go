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
	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/store"
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
	if !strings.Contains(list.stdout, app.clientID) || !strings.Contains(list.stdout, "Iniciadora Exemplo") || !strings.Contains(list.stdout, "https://itp.example/cb") ||
		!strings.Contains(list.stdout, "ORIGIN") || !strings.Contains(list.stdout, " hand ") {
		t.Errorf("list: %s", list)
	}

	// Organisation id and webhook URLs: stored on the client (and the id on
	// the application), each refused when malformed.
	const org = "3f1d2c4b-5a6e-4f70-8a9b-0c1d2e3f4a5b"
	for _, tt := range []struct {
		name  string
		extra []string
		want  string
	}{
		{"org id not a UUID", []string{"--org-id", "org-1"}, "must be a UUID"},
		{"webhook over http", []string{"--webhook-url", "http://itp.example/hooks"}, "https URL"},
		{"webhook with trailing slash", []string{"--webhook-url", "https://itp.example/hooks/"}, "trailing slash"},
		{"webhook with query", []string{"--webhook-url", "https://itp.example/hooks?a=1"}, "query"},
	} {
		if r := add(pubFile, append([]string{"--redirect-url", "https://itp.example/cb"}, tt.extra...)...); r.code != 1 || !strings.Contains(r.output(), tt.want) {
			t.Errorf("%s: %s", tt.name, r)
		}
	}
	if r := add(pubFile, "--redirect-url", "https://itp.example/cb", "--org-id", org, "--webhook-url", "https://itp.example/hooks",
		"--webhook-url", "http://127.0.0.1:9000/hooks"); r.code != 0 {
		t.Fatalf("add with org id and webhooks: %s", r)
	}
	list = mustCLI(t, 0, append([]string{"initiators", "list"}, storage(dir)...)...)
	if !strings.Contains(list.stdout, org) || !strings.Contains(list.stdout, "https://itp.example/hooks http://127.0.0.1:9000/hooks") {
		t.Errorf("list after --org-id/--webhook-url: %s", list)
	}
	apps := mustCLI(t, 0, append([]string{"apps", "show", "--app", app.clientID}, storage(dir)...)...)
	if !strings.Contains(apps.stdout, org) {
		t.Errorf("the application's organisation id is not %s: %s", org, apps)
	}
	// A client that registered itself (POST /register) is listed as "dcr"
	// and cannot be replaced by hand.
	dynamic := createApp(t, dir)
	db, err := store.Open(t.Context(), store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := &goidc.Client{ID: dynamic.clientID, ClientMeta: goidc.ClientMeta{Name: "Registrada", RedirectURIs: []string{"https://dcr.example/cb"},
		PublicJWKSURI: "https://keystore.example/org/sw/application.jwks"}}
	c.SetCustomAttribute(oidc.AttrSoftwareID, "5c0b1f2e-3d4a-4b5c-8d6e-7f8091a2b3c4")
	c.SetCustomAttribute(oidc.AttrOrganisationID, org)
	err = oidc.NewStorage(db, clock.System{}).Clients().Save(t.Context(), c)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"initiators", "add"}, storage(dir)...)
	args = append(args, "--app", dynamic.clientID, "--name", "Por cima", "--jwks", pubFile, "--redirect-url", "https://itp.example/cb")
	if r := ponteCLI(t, args...); r.code != 1 || !strings.Contains(r.output(), "/register/"+dynamic.clientID) {
		t.Errorf("a dynamically registered client replaced by hand: %s", r)
	}
	list = mustCLI(t, 0, append([]string{"initiators", "list"}, storage(dir)...)...)
	if line := lineWith(list.stdout, dynamic.clientID); !strings.Contains(line, " dcr ") || !strings.Contains(line, "jwks_uri") || !strings.Contains(line, "Registrada") {
		t.Errorf("list shows the registered client as %q", line)
	}

	if r := ponteCLI(t, append([]string{"initiators", "add"}, storage(dir)...)...); r.code != 2 {
		t.Errorf("missing flags: %s", r)
	}
}

func lineWith(out, s string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/directory"
)

// TestCLIDirectory: a statement issued by `ponte directory issue-ssa` on a
// server's data directory is one that server's registration accepts, and
// its keystore serves the uploaded keys.
func TestCLIDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The server's clock is the wall clock: the CLI signs with it.
	s := apptest.Start(t, apptest.Options{DataDir: dir, Clock: clock.NewFake(clock.System{}.Now())})
	apptest.FollowWallClock(t, s.Clock)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	public, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "itp-1", Algorithm: "PS256", Use: "sig"}}})
	private, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key, KeyID: "itp-1"}}})
	pubFile, privFile := filepath.Join(dir, "itp-public.json"), filepath.Join(dir, "itp-private.json")
	if err := os.WriteFile(pubFile, public, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(privFile, private, 0o600); err != nil {
		t.Fatal(err)
	}
	const org, software = "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b", "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
	issue := func(extra ...string) cliResult {
		args := append([]string{"directory", "issue-ssa"}, storage(dir)...)
		return ponteCLI(t, append(args, extra...)...)
	}
	r := issue("--org-id", org, "--software-id", software, "--role", "PAGTO", "--role", "DADOS", "--redirect-url", "https://itp.example/cb",
		"--webhook-url", "https://itp.example/hooks", "--jwks", pubFile, "--org-name", "Iniciadora Exemplo", "--public-url", s.URL+"/")
	if r.code != 0 {
		t.Fatalf("issue-ssa: %s", r)
	}
	ssa := strings.TrimSpace(r.stdout)
	if strings.Count(ssa, ".") != 2 || strings.Contains(ssa, "\n") || !strings.Contains(r.stderr, software) {
		t.Fatalf("issue-ssa printed %s", r)
	}
	st, err := s.App.Directory.Verifier.Verify(context.Background(), ssa)
	if err != nil {
		t.Fatalf("the server refuses the CLI's statement: %v", err)
	}
	if st.OrgName != "Iniciadora Exemplo" || strings.Join(st.ActiveRoles(), " ") != "PAGTO DADOS" ||
		st.SoftwareJWKSURI != directory.KeystoreJWKSURI(s.URL+directory.PathKeystore, org, software) {
		t.Fatalf("statement = %+v", st)
	}
	if r := s.Do(t, "GET", strings.TrimPrefix(st.SoftwareJWKSURI, s.URL), nil, ""); r.Status != 200 || !strings.Contains(string(r.Body), `"itp-1"`) {
		t.Fatalf("keystore: %d %s", r.Status, r.Body)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no role", []string{"--org-id", org, "--redirect-url", "https://itp.example/cb", "--jwks", pubFile}, 2, "--role is required"},
		{"no redirect", []string{"--org-id", org, "--role", "PAGTO", "--jwks", pubFile}, 2, "--redirect-url is required"},
		{"no org", []string{"--role", "PAGTO", "--redirect-url", "https://itp.example/cb", "--jwks", pubFile}, 2, "--org-id is required"},
		{"unknown role", []string{"--org-id", org, "--role", "BOSS", "--redirect-url", "https://itp.example/cb", "--jwks", pubFile}, 2, `"BOSS" is not a role`},
		{"private key", []string{"--org-id", org, "--role", "PAGTO", "--redirect-url", "https://itp.example/cb", "--jwks", privFile}, 2, "private key"},
		{"missing file", []string{"--org-id", org, "--role", "PAGTO", "--redirect-url", "https://itp.example/cb", "--jwks", filepath.Join(dir, "none")}, 1, "read --jwks"},
		{"bad public URL", []string{"--org-id", org, "--role", "PAGTO", "--redirect-url", "https://itp.example/cb", "--jwks", pubFile, "--public-url", "ponte"}, 2, "--public-url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := issue(tc.args...); r.code != tc.code || r.stdout != "" || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("want exit %d and %q on standard error: %s", tc.code, tc.want, r)
			}
		})
	}

	list := mustCLI(t, 0, append([]string{"directory", "list"}, storage(dir)...)...)
	if !strings.Contains(list.stdout, software) || !strings.Contains(list.stdout, "PAGTO,DADOS") || !strings.Contains(list.stdout, "https://itp.example/cb") {
		t.Errorf("list: %s", list)
	}
	var listed []directory.SoftwareJSON
	asJSON := mustCLI(t, 0, append([]string{"directory", "list", "--json", "--public-url", s.URL}, storage(dir)...)...)
	if err := json.Unmarshal([]byte(asJSON.stdout), &listed); err != nil || len(listed) != 1 || listed[0].SoftwareJWKSURI != st.SoftwareJWKSURI {
		t.Errorf("list --json: %v %s", err, asJSON)
	}
}

package keyset

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/cards"
	"github.com/ponte-ofb/ponte/internal/cards/applepay"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/vault"
)

// sandboxSet is one generated sandbox key set, shared by the tests that
// only read it (generating eight RSA keys is the slow part).
var sandboxSet = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "keyset-test-*")
	if err != nil {
		return "", err
	}
	dir = filepath.Join(dir, "keys")
	_, err = Init(dir, InitOptions{Sandbox: true, OrgID: "0b7e5f3a-6c2d-4f1e-8a9b-3c4d5e6f7a8b", Now: testNow})
	return dir, err
})

func TestMain(m *testing.M) {
	code := m.Run()
	if dir, err := sandboxSet(); err == nil {
		os.RemoveAll(filepath.Dir(dir))
	}
	os.Exit(code)
}

var testNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func generatedSet(t *testing.T) string {
	t.Helper()
	dir, err := sandboxSet()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// copySet copies the shared set into a new directory the test may change.
func copySet(t *testing.T) string {
	t.Helper()
	src := generatedSet(t)
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

// TestInitLayout: a sandbox set holds exactly the layout's files, 0600 in a
// 0700 directory, each loadable by the package that uses it.
func TestInitLayout(t *testing.T) {
	dir := generatedSet(t)
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("directory mode %04o, want 0700", perm)
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name())
		fi, err := f.Info()
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", f.Name(), perm)
		}
	}
	var want []string
	for _, k := range Layout {
		want = append(want, k.File)
	}
	if strings.Join(sorted(names), " ") != strings.Join(sorted(want), " ") {
		t.Errorf("files %v, want %v", sorted(names), sorted(want))
	}
	if _, err := auth.LoadOrCreateKey(filepath.Join(dir, config.SigningKeyFileName)); err != nil {
		t.Error(err)
	}
	if _, err := vault.LoadOrCreate(filepath.Join(dir, config.DataKeyFileName)); err != nil {
		t.Error(err)
	}
	org, err := os.ReadFile(filepath.Join(dir, "org-id"))
	if err != nil || strings.TrimSpace(string(org)) != "0b7e5f3a-6c2d-4f1e-8a9b-3c4d5e6f7a8b" {
		t.Errorf("org-id = %q, %v; want the one given", org, err)
	}
	// The sandbox's card keys load with the key set as their directory.
	if _, _, missing, err := cards.LoadKeys(cards.KeyFiles{Sandbox: true, DataDir: dir}, testNow); err != nil || len(missing) > 0 {
		t.Errorf("cards.LoadKeys: missing %v, %v", missing, err)
	}
	entries, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(Layout) {
		t.Errorf("Load: %d entries, want %d", len(entries), len(Layout))
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if e.Fingerprint == "" || seen[e.Fingerprint] && e.Kind != Certificate && e.Kind != ECKey {
			t.Errorf("%s: fingerprint %q empty or repeated", e.ID, e.Fingerprint)
		}
		seen[e.Fingerprint] = true
	}
}

// TestLayoutNames: the layout's file names are the ones the packages that
// default into a data directory use, so a data directory's keys move into
// a key set unchanged.
func TestLayoutNames(t *testing.T) {
	for id, file := range map[string]string{
		SandboxTAVKey:        cards.SandboxTAVKeyFile,
		SandboxPEPKKey:       cards.SandboxPEPKPrivateFile,
		SandboxNetworkSecret: cards.SandboxNetworkSecretFile,
		SandboxAppleRootKey:  applepay.TestRootKeyFile,
		SandboxAppleRoot:     applepay.TestRootCertFile,
	} {
		if k, ok := Lookup(id); !ok || k.File != file {
			t.Errorf("%s: file %q, want %q", id, k.File, file)
		}
	}
}

// TestProductionSet: without --sandbox only the production keys are
// generated, and the organisation id is a fresh UUID when none is given.
func TestProductionSet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "prod")
	entries, err := Init(dir, InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.ID)
	}
	if got := strings.Join(ids, " "); got != "signing-key data-key admin-token org-id itp-encryption-key" {
		t.Errorf("production set: %s", got)
	}
}

// TestInitRefuses: a set is never generated over an existing one, nor
// with an organisation id that is not a UUID; an empty directory is fine.
func TestInitRefuses(t *testing.T) {
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "signing-key.pem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(full, InitOptions{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Init into a non-empty directory: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(full, "signing-key.pem")); string(b) != "x" {
		t.Error("Init changed a file of the existing directory")
	}
	if _, err := Init(filepath.Join(t.TempDir(), "k"), InitOptions{OrgID: "acme"}); err == nil || !strings.Contains(err.Error(), "UUID") {
		t.Errorf("Init with a bad org id: %v", err)
	}
	empty := t.TempDir()
	if err := os.Chmod(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(empty, InitOptions{}); err != nil {
		t.Fatalf("Init into an empty directory: %v", err)
	}
	if info, _ := os.Stat(empty); info.Mode().Perm() != 0o700 {
		t.Errorf("empty directory left %04o, want 0700", info.Mode().Perm())
	}
}

// TestLoadErrors: a missing or damaged file is named with its key, and a
// missing one points at `ponte keys init`.
func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name   string
		change func(dir string) error
		want   []string
	}{
		{"missing signing key", func(dir string) error { return os.Remove(filepath.Join(dir, "signing-key.pem")) },
			[]string{"token signing key", "signing-key.pem", "ponte keys init --dir"}},
		{"missing sandbox key of a sandbox set", func(dir string) error { return os.Remove(filepath.Join(dir, "sandbox-directory-key.pem")) },
			[]string{"sandbox Directory key", "sandbox-directory-key.pem", "is missing", "--sandbox"}},
		{"damaged data key", func(dir string) error { return os.WriteFile(filepath.Join(dir, "data.key"), []byte("short\n"), 0o600) },
			[]string{"data key", "data.key", "shorter than 16"}},
		{"org id not a UUID", func(dir string) error { return os.WriteFile(filepath.Join(dir, "org-id"), []byte("acme\n"), 0o600) },
			[]string{"organisation id", "org-id", "UUID"}},
		{"not PEM", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "itp-encryption-key.pem"), []byte("hello"), 0o600)
		}, []string{"initiator encryption key", "itp-encryption-key.pem", "not PEM"}},
		{"demo credentials", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "sandbox-demo-client.json"), []byte(`{"client_id":"a"}`), 0o600)
		}, []string{"sandbox demo client credentials", "client_secret"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copySet(t)
			if err := c.change(dir); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing directory: %v", err)
	}
}

// TestFingerprints: one-way and stable: the same content gives the same
// fingerprint, different content another, and a secret's fingerprint holds
// nothing of the secret.
func TestFingerprints(t *testing.T) {
	admin, _ := Lookup(AdminToken)
	a1, err := Fingerprint(admin, []byte("correct horse battery staple\n"))
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := Fingerprint(admin, []byte("correct horse battery staple"))
	b, _ := Fingerprint(admin, []byte("correct horse battery stapler"))
	if a1 != a2 || a1 == b || !strings.HasPrefix(a1, "pbkdf2:") || strings.Contains(a1, "horse") {
		t.Errorf("admin token fingerprints %q %q %q", a1, a2, b)
	}
	// The same secret under another key's id gives another digest.
	secret, _ := Lookup(SandboxNetworkSecret)
	if n, _ := Fingerprint(secret, []byte("correct horse battery staple")); n == a1 {
		t.Error("fingerprints are not salted by key")
	}
	dir := generatedSet(t)
	root, _ := Lookup(SandboxAppleRoot)
	rootKey, _ := Lookup(SandboxAppleRootKey)
	c, err := FingerprintFile(root, filepath.Join(dir, root.File))
	if err != nil {
		t.Fatal(err)
	}
	k, err := FingerprintFile(rootKey, filepath.Join(dir, rootKey.File))
	if err != nil {
		t.Fatal(err)
	}
	if c.Fingerprint != k.Fingerprint {
		t.Errorf("the test root's certificate and key fingerprint differently: %s %s", c.Fingerprint, k.Fingerprint)
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// BenchmarkLoad is what every start pays to fingerprint a sandbox set
// (PBKDF2 on the four secrets dominates).
func BenchmarkLoad(b *testing.B) {
	dir, err := sandboxSet()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/keyset"
	"github.com/ponte-ofb/ponte/internal/store"
)

// TestCLIKeys: `ponte keys init` generates a set, prints its fingerprints
// and how to hand it to every instance, never prints key material, and
// refuses to write over a set; `ponte keys show` lists a set and, with a
// database, whether each key matches what the database recorded, exiting 1
// when one differs.
func TestCLIKeys(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	keys := filepath.Join(root, "keys")
	const org = "0b7e5f3a-6c2d-4f1e-8a9b-3c4d5e6f7a8b"
	out := mustCLI(t, 0, "keys", "init", "--dir", keys, "--org-id", org)
	for _, w := range []string{"production key set", "token signing key", "signing-key.pem", "sha256:", "data key", "pbkdf2:",
		"--keys-dir " + keys, "ponte keys show --dir " + keys} {
		if !strings.Contains(out.stdout, w) {
			t.Errorf("init output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out.stdout, "sandbox") {
		t.Errorf("a production set names sandbox keys:\n%s", out)
	}
	for _, f := range []string{"admin-token", "data.key"} {
		secret, err := os.ReadFile(filepath.Join(keys, f))
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.TrimSpace(string(secret)); strings.Contains(out.stdout, s) || strings.Contains(out.stdout, strings.TrimPrefix(s, "ponte-data-key-v1:")) {
			t.Errorf("init printed the content of %s", f)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(keys, "org-id")); strings.TrimSpace(string(got)) != org {
		t.Errorf("org-id %q, want %s", got, org)
	}
	if r := ponteCLI(t, "keys", "init", "--dir", keys); r.code != 1 || !strings.Contains(r.stderr, "not empty") {
		t.Errorf("init over an existing set:\n%s", r)
	}
	if r := ponteCLI(t, "keys", "init"); r.code != 2 || !strings.Contains(r.stderr, "--dir is required") {
		t.Errorf("init without --dir:\n%s", r)
	}
	if r := ponteCLI(t, "keys", "init", "--dir", filepath.Join(root, "bad"), "--org-id", "acme"); r.code != 1 || !strings.Contains(r.stderr, "UUID") {
		t.Errorf("init with a bad org id:\n%s", r)
	}

	show := mustCLI(t, 0, "keys", "show", "--dir", keys, "--database-url=")
	entries, err := keyset.Load(keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.Contains(show.stdout, e.Fingerprint) || !strings.Contains(show.stdout, e.Name) {
			t.Errorf("show lacks %s %s:\n%s", e.Name, e.Fingerprint, show)
		}
	}

	// A database that recorded this set (as `ponte serve` does on its first start).
	dbURL := "sqlite:" + filepath.Join(root, "ponte.db")
	db, err := store.Open(context.Background(), store.Options{URL: dbURL})
	if err != nil {
		t.Fatal(err)
	}
	err = keyset.Verify(context.Background(), db, time.Now(), entries)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	match := mustCLI(t, 0, "keys", "show", "--dir", keys, "--database-url", dbURL)
	if n := strings.Count(match.stdout, "matches (current)"); n != len(entries) {
		t.Errorf("%d keys match, want %d:\n%s", n, len(entries), match)
	}

	// Another set against that database: every key differs, exit 1.
	other := filepath.Join(root, "other")
	mustCLI(t, 0, "keys", "init", "--dir", other)
	differ := ponteCLI(t, "keys", "show", "--dir", other, "--database-url", dbURL)
	if differ.code != 1 || !strings.Contains(differ.stdout, "DIFFERS") || !strings.Contains(differ.stderr, "differ from the ones the database was used with") {
		t.Errorf("show of another set:\n%s", differ)
	}
	if r := ponteCLI(t, "keys", "show", "--dir", filepath.Join(root, "nope"), "--database-url="); r.code != 1 || !strings.Contains(r.stderr, "ponte keys init") {
		t.Errorf("show of a missing set:\n%s", r)
	}
}

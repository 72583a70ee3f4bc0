package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/cards/applepay"
)

func cardsCmdArgs(sub, dir string, args ...string) []string {
	return append(append([]string{"cards", sub}, storage(dir)...), args...)
}

// TestCLICards registers a card from standard input, lists it without its
// number, changes its status, and scans the database file for the number.
func TestCLICards(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	app := createApp(t, dir)
	const pan = "5204247750001497"
	create := func(stdin, proxy string) cliResult {
		return ponteCLIInput(t, stdin, cardsCmdArgs("create", dir, "--app", app.clientID, "--proxy", proxy,
			"--expiry-month", "7", "--expiry-year", "2031", "--name", "ANA LIMA", "--phone", "11987654321",
			"--zip-code", "01310100", "--street", "Avenida Paulista", "--number", "1000", "--city", "São Paulo", "--state", "SP")...)
	}
	r := create(pan+"\n", "cli-card")
	if r.code != 0 || !strings.Contains(r.stdout, "**** 1497") {
		t.Fatalf("create: %s", r)
	}
	if bad := create("5204247750001498\n", "cli-bad"); bad.code != 1 || !strings.Contains(bad.output(), "cardNumber") || strings.Contains(bad.output(), "5204247750001498") {
		t.Errorf("bad Luhn: %s", bad)
	}
	if dup := create(pan+"\n", "cli-card"); dup.code != 1 || !strings.Contains(dup.output(), "proxy") {
		t.Errorf("duplicate proxy: %s", dup)
	}
	list := mustCLI(t, 0, cardsCmdArgs("list", dir, "--json")...)
	if !strings.Contains(list.stdout, `"lastFourDigits": "1497"`) || strings.Contains(list.output(), pan) {
		t.Errorf("list: %s", list)
	}
	mustCLI(t, 0, cardsCmdArgs("set-status", dir, "cli-card", "blocked")...)
	if l := mustCLI(t, 0, cardsCmdArgs("list", dir)...); !strings.Contains(l.stdout, "BLOCKED") {
		t.Errorf("status not changed: %s", l)
	}
	if r := ponteCLI(t, cardsCmdArgs("set-status", dir, "cli-card", "FROZEN")...); r.code != 1 {
		t.Errorf("unknown status accepted: %s", r)
	}
	if r := ponteCLI(t, cardsCmdArgs("set-status", dir, "nope", "ACTIVE")...); r.code != 1 || !strings.Contains(r.output(), "card not found") {
		t.Errorf("unknown card: %s", r)
	}
	for _, f := range []string{"ponte.db", "ponte.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil && f == "ponte.db" {
			t.Fatal(err)
		}
		if strings.Contains(string(b), pan) {
			t.Errorf("%s holds the card number in clear", f)
		}
	}
}

// TestCLIAppleTestDevice writes a device certificate that verifies against
// the sandbox root and a key that matches it.
func TestCLIAppleTestDevice(t *testing.T) {
	t.Parallel()
	dir, out := t.TempDir(), filepath.Join(t.TempDir(), "device")
	r := mustCLI(t, 0, cardsCmdArgs("apple-test-device", dir, "--out", out)...)
	if !strings.Contains(r.stdout, "device-certificate.pem") {
		t.Errorf("output: %s", r)
	}
	certPEM, err := os.ReadFile(filepath.Join(out, "device-certificate.pem"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(out, "device-key.pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("device key file: %v %v", fi, err)
	}
	root, _, err := applepay.LoadOrCreateTestRoot(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	chain, err := applepay.ParseCertificates(string(certPEM))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (applepay.Verifier{Roots: pool, RequireMarker: true}).Verify(chain); err != nil {
		t.Errorf("device certificate does not verify against the sandbox root: %v", err)
	}
	keyPEM, _ := os.ReadFile(filepath.Join(out, "device-key.pem"))
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		t.Fatal("device key is not PEM")
	}
	if r := ponteCLI(t, cardsCmdArgs("apple-test-device", dir)...); r.code != 2 {
		t.Errorf("missing --out: %s", r)
	}
}

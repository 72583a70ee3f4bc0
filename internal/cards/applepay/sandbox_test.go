package applepay

import (
	"crypto/rand"
	"crypto/x509"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestIssueTestDevice(t *testing.T) {
	root, rootKey, err := NewTestRoot(rand.Reader, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if root.Subject.CommonName != TestRootCommonName || !root.IsCA {
		t.Fatalf("root = %s, CA %v", root.Subject, root.IsCA)
	}
	leafPEM, _, err := IssueTestDevice(rand.Reader, root, rootKey, testNow)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := ParseCertificates(string(leafPEM))
	if err != nil {
		t.Fatal(err)
	}
	leaf := chain[0]
	if want := x509.KeyUsageKeyAgreement | x509.KeyUsageKeyEncipherment; leaf.KeyUsage != want {
		t.Errorf("KeyUsage = %v, want %v", leaf.KeyUsage, want)
	}
	var marker bool
	for _, e := range leaf.Extensions {
		if e.Id.String() == MarkerOID {
			marker = e.Critical
		}
	}
	if !marker {
		t.Error("leaf lacks the critical marker extension")
	}
	if got := leaf.NotAfter.Sub(testNow); got < 729*24*time.Hour || got > 731*24*time.Hour {
		t.Errorf("leaf valid for %s after now, want about two years", got)
	}
	v := Verifier{Roots: pool(root), RequireMarker: true}
	for _, at := range []time.Time{testNow, testNow.Add(700 * 24 * time.Hour)} {
		v.Now = func() time.Time { return at }
		if _, err := v.Verify(chain); err != nil {
			t.Errorf("at %s: %v", at, err)
		}
	}
}

func TestTestRootPEMRoundTrip(t *testing.T) {
	root, key, err := NewTestRoot(nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := EncodeTestRoot(root, key)
	if err != nil {
		t.Fatal(err)
	}
	gotCert, gotKey, err := DecodeTestRoot(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !gotCert.Equal(root) || !gotKey.Equal(key) {
		t.Error("round trip changed the root")
	}
	_, otherKey, err := NewTestRoot(nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	_, otherKeyPEM, err := EncodeTestRoot(root, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := DecodeTestRoot(certPEM, otherKeyPEM); err == nil {
		t.Error("DecodeTestRoot accepted a key that does not match the certificate")
	}
	if _, _, err := DecodeTestRoot(certPEM, certPEM); err == nil {
		t.Error("DecodeTestRoot accepted a certificate as the key")
	}
}

func TestLoadOrCreateTestRoot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sandbox")
	root, key, err := LoadOrCreateTestRoot(dir, testNow)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{TestRootKeyFile: 0o600, TestRootCertFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode = %v, want %v", name, fi.Mode().Perm(), want)
		}
	}

	again, againKey, err := LoadOrCreateTestRoot(dir, testNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Equal(root) || !againKey.Equal(key) {
		t.Fatal("second start did not load the stored root")
	}

	// A device issued under the old certificate still verifies after the
	// certificate file is lost and re-issued from the key.
	leafPEM, _, err := IssueTestDevice(nil, root, key, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, TestRootCertFile)); err != nil {
		t.Fatal(err)
	}
	reissued, _, err := LoadOrCreateTestRoot(dir, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if reissued.Equal(root) {
		t.Fatal("certificate was not re-issued")
	}
	chain, err := ParseCertificates(string(leafPEM))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Verifier{Roots: pool(reissued), Now: func() time.Time { return testNow }}).Verify(chain); err != nil {
		t.Errorf("old device under re-issued root: %v", err)
	}

	// A certificate for another key is refused, not overwritten.
	other, otherKey, err := NewTestRoot(nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, _, err := EncodeTestRoot(other, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, TestRootCertFile), otherPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateTestRoot(dir, testNow); err == nil {
		t.Error("mismatched certificate accepted")
	}
}

func TestLoadOrCreateTestRootConcurrent(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	keys := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, key, err := LoadOrCreateTestRoot(dir, testNow)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i], _ = x509.MarshalPKCS8PrivateKey(key)
		}()
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if string(keys[i]) != string(keys[0]) {
			t.Fatal("concurrent starts ended with different root keys")
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want 2 (temporary files left behind?)", len(entries))
	}
}

package mastercard

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestLoadOrCreateRSAKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "tav.pem")
	key, err := LoadOrCreateRSAKey(path, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if key.N.BitLen() != 2048 {
		t.Errorf("key has %d bits", key.N.BitLen())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(data); block == nil || block.Type != "PRIVATE KEY" {
		t.Fatal("key file is not PKCS#8 PEM")
	}
	again, err := LoadOrCreateRSAKey(path, 3072)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Equal(key) {
		t.Error("second call generated a new key instead of loading")
	}

	pubPEM, err := EncodePublicKeyPEM(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pubPEM)
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil || !key.PublicKey.Equal(pub) {
		t.Errorf("public key PEM does not round-trip: %v", err)
	}
}

func TestLoadOrCreateRSAKeyRejects(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreateRSAKey(filepath.Join(dir, "small.pem"), 1024); err == nil {
		t.Error("accepted a 1024-bit size")
	}

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"ec.pem":      pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"garbage.pem": []byte("not a key"),
		"pkcs1.pem":   pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1}}),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateRSAKey(path, 2048); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if got, _ := os.ReadFile(path); string(got) != string(content) {
			t.Errorf("%s: existing file was overwritten", name)
		}
	}
}

func TestLoadOrCreateRSAKeyConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pepk.pem")
	const n = 4
	mods := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := LoadOrCreateRSAKey(path, 2048)
			if err != nil {
				t.Error(err)
				return
			}
			mods[i] = k.N.String()
		}()
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if mods[i] != mods[0] {
			t.Fatal("concurrent callers ended with different keys")
		}
	}
}

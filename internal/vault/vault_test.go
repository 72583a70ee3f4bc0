package vault

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "data.key")
	v, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi, err)
	}
	pan := []byte("5204247750001471")
	sealed, err := v.Seal(pan, "card:1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "5204247750001471") {
		t.Fatal("sealed value contains the plaintext")
	}
	again, _ := v.Seal(pan, "card:1")
	if again == sealed {
		t.Error("two seals of one value are equal: nonce reuse")
	}
	got, err := v.Open(sealed, "card:1")
	if err != nil || !bytes.Equal(got, pan) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := v.Open(sealed, "card:2"); err != ErrOpen {
		t.Errorf("opened under another context: %v", err)
	}
	tampered := sealed[:len(sealed)-2] + "AA"
	if _, err := v.Open(tampered, "card:1"); err != ErrOpen {
		t.Errorf("opened a tampered value: %v", err)
	}
	for _, bad := range []string{"", "v1:", "v1:!!", "v2:abc", "v1:AAAA"} {
		if _, err := v.Open(bad, "card:1"); err != ErrOpen {
			t.Errorf("Open(%q) = %v", bad, err)
		}
	}
	// The same file gives the same key; another file does not.
	v2, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v2.Open(sealed, "card:1"); err != nil || !bytes.Equal(got, pan) {
		t.Errorf("reloaded key cannot open: %v", err)
	}
	other, _ := LoadOrCreate(filepath.Join(t.TempDir(), "other.key"))
	if _, err := other.Open(sealed, "card:1"); err != ErrOpen {
		t.Errorf("another key opened it: %v", err)
	}
	if v.Hash("pan", pan) != v2.Hash("pan", pan) || v.Hash("pan", pan) == other.Hash("pan", pan) || v.Hash("pan", pan) == v.Hash("other", pan) {
		t.Error("keyed hash is not stable per key and domain")
	}
}

func TestLoadRejectsForeignFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "k")
	os.WriteFile(path, []byte("hello"), 0o600)
	if _, err := LoadOrCreate(path); err == nil {
		t.Error("accepted a file that is not a data key")
	}
}

package vault

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sealV1 seals as the vault did before key ids: "v1:" and no key id.
func sealV1(t testing.TB, v *Vault, pt []byte, context string) string {
	t.Helper()
	nonce := make([]byte, v.current.aead.NonceSize())
	rand.Read(nonce)
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(v.current.aead.Seal(nonce, nonce, pt, []byte(context)))
}

// TestRotate: values sealed before a rotation — with a key id or in the
// original "v1:" form — open after it; new seals name the new key; the
// lookup hash does not change; Reseal converts every value, after which
// the retired keys can be removed.
func TestRotate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "data.key")
	if _, err := Rotate(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("rotating a missing key: %v", err)
	}
	orig, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	pan := []byte("5204247750001471")
	legacy := sealV1(t, orig, pan, "card-pan:1")
	before, err := orig.Seal(pan, "card-pan:2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(before, "v2:"+orig.KeyID()+":") {
		t.Fatalf("sealed value %q does not name key %s", before, orig.KeyID())
	}
	hash := orig.Hash("card-pan", pan)

	v, err := Rotate(path)
	if err != nil {
		t.Fatal(err)
	}
	if RetiredDir(path) != filepath.Join(dir, "data-key.retired") {
		t.Errorf("RetiredDir = %s", RetiredDir(path))
	}
	if fi, err := os.Stat(filepath.Join(dir, "data-key.retired", orig.KeyID()+".key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("retired key file: %v %v", fi, err)
	}
	if v.KeyID() == orig.KeyID() || len(v.RetiredKeyIDs()) != 1 || v.RetiredKeyIDs()[0] != orig.KeyID() {
		t.Fatalf("after rotation: current %s retired %v (was %s)", v.KeyID(), v.RetiredKeyIDs(), orig.KeyID())
	}
	// A second rotation: the original key is two keys back and still opens v1.
	v, err = Rotate(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.RetiredKeyIDs()) != 2 {
		t.Fatalf("retired after two rotations: %v", v.RetiredKeyIDs())
	}
	for _, c := range []struct{ sealed, context string }{{legacy, "card-pan:1"}, {before, "card-pan:2"}} {
		if got, err := v.Open(c.sealed, c.context); err != nil || !bytes.Equal(got, pan) {
			t.Errorf("value sealed before the rotation: %q %v", got, err)
		}
		if v.Current(c.sealed) {
			t.Errorf("%.12s… reported as sealed by the current key", c.sealed)
		}
	}
	after, _ := v.Seal(pan, "card-pan:3")
	if !strings.HasPrefix(after, "v2:"+v.KeyID()+":") || !v.Current(after) {
		t.Errorf("new seal %q does not name the current key %s", after, v.KeyID())
	}
	if stranger, _ := New(bytes.Repeat([]byte{1}, 32)); stranger != nil {
		if _, err := stranger.Open(after, "card-pan:3"); err != ErrOpen {
			t.Errorf("another key opened a value of the new one: %v", err)
		}
	}
	if got := v.Hash("card-pan", pan); got != hash {
		t.Errorf("lookup hash changed on rotation: %s, was %s", got, hash)
	}
	reloaded, err := Read(path)
	if err != nil || reloaded.KeyID() != v.KeyID() || reloaded.Hash("card-pan", pan) != hash {
		t.Fatalf("reloaded: %v", err)
	}

	// Reseal converts, and leaves a converted value alone.
	var resealed []string
	for i, c := range []struct{ sealed, context string }{{legacy, "card-pan:1"}, {before, "card-pan:2"}, {after, "card-pan:3"}} {
		out, changed, err := v.Reseal(c.sealed, c.context)
		if err != nil {
			t.Fatal(err)
		}
		if changed != (i < 2) || !v.Current(out) {
			t.Errorf("reseal %d: changed %v, current %v", i, changed, v.Current(out))
		}
		if again, changed, err := v.Reseal(out, c.context); err != nil || changed || again != out {
			t.Errorf("resealing a resealed value changed it: %v %v", changed, err)
		}
		resealed = append(resealed, out)
	}
	if _, _, err := v.Reseal(before, "card-pan:9"); err != ErrOpen {
		t.Errorf("reseal under the wrong context: %v", err)
	}

	// The retired keys removed: resealed values open, the old ones no longer.
	if err := os.RemoveAll(RetiredDir(path)); err != nil {
		t.Fatal(err)
	}
	v, err = Read(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, out := range resealed {
		if got, err := v.Open(out, "card-pan:"+string(rune('1'+i))); err != nil || !bytes.Equal(got, pan) {
			t.Errorf("resealed %d after the retired keys went: %q %v", i, got, err)
		}
	}
	for _, old := range []string{legacy, before} {
		if _, err := v.Open(old, "card-pan:1"); err != ErrOpen {
			t.Errorf("opened a value of a removed key: %v", err)
		}
	}
	if v.Hash("card-pan", pan) != hash {
		t.Error("lookup hash changed when the retired keys were removed")
	}
}

// TestRotateInterrupted: a rotation that stopped after retiring the old key
// (the old key still current, a copy retired) loads, and running it again
// finishes it.
func TestRotateInterrupted(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "data.key")
	v, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := v.Seal([]byte("secret"), "ctx")
	b, _ := os.ReadFile(path)
	os.MkdirAll(RetiredDir(path), 0o700)
	os.WriteFile(filepath.Join(RetiredDir(path), v.KeyID()+".key"), b, 0o600)
	half, err := Read(path)
	if err != nil || half.KeyID() != v.KeyID() || len(half.RetiredKeyIDs()) != 0 {
		t.Fatalf("half-rotated: %v %v", half, err)
	}
	done, err := Rotate(path)
	if err != nil || done.KeyID() == v.KeyID() {
		t.Fatalf("rotation again: %v", err)
	}
	if got, err := done.Open(sealed, "ctx"); err != nil || string(got) != "secret" {
		t.Errorf("open after finishing the rotation: %q %v", got, err)
	}
	os.WriteFile(filepath.Join(RetiredDir(path), "broken.key"), []byte("ponte-data-key-v1:xx"), 0o600)
	if _, err := Read(path); err == nil {
		t.Error("a broken retired key was accepted")
	}
}

// FuzzVaultOpen: no input makes Open panic or open under a wrong context or
// key, and every sealed value opens to its plaintext, also in the v1 form.
func FuzzVaultOpen(f *testing.F) {
	v, err := New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	other, _ := New(bytes.Repeat([]byte{8}, 32))
	s, _ := v.Seal([]byte("hello"), "c")
	for _, seed := range []string{s, sealV1(f, v, []byte("x"), "c"), "v2:", "v2::", "v2:" + v.KeyID() + ":", "v1:", "v2:" + v.KeyID() + ":AAAA", "v2:zz:" + s[strings.LastIndex(s, ":")+1:]} {
		f.Add(seed, "c", []byte("pt"))
	}
	f.Fuzz(func(t *testing.T, sealed, context string, pt []byte) {
		if got, err := v.Open(sealed, context); err == nil {
			// Only a value this vault sealed opens: then it reseals to itself.
			if again, err := v.Seal(got, context); err != nil {
				t.Fatal(err)
			} else if back, err := v.Open(again, context); err != nil || !bytes.Equal(back, got) {
				t.Fatalf("round trip of an opened value failed: %v", err)
			}
		} else if err != ErrOpen {
			t.Fatalf("Open error %v is not ErrOpen", err)
		}
		for _, s := range []string{mustSeal(t, v, pt, context), sealV1(t, v, pt, context)} {
			got, err := v.Open(s, context)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("Open(Seal(%q)) = %q, %v", pt, got, err)
			}
			if _, err := v.Open(s, context+"x"); err != ErrOpen {
				t.Fatalf("opened under another context: %v", err)
			}
			if _, err := other.Open(s, context); err != ErrOpen {
				t.Fatalf("another key opened it: %v", err)
			}
		}
	})
}

func mustSeal(t *testing.T, v *Vault, pt []byte, context string) string {
	t.Helper()
	s, err := v.Seal(pt, context)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReloadAfterRotation: a vault loaded before its key set was rotated (an
// instance not yet restarted) opens what a vault of the rotated set seals,
// by looking at its key files again; it keeps sealing with its own key, and
// a value naming no key of the files still does not open.
func TestReloadAfterRotation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "data.key")
	running, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	restarted, err := Rotate(path)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := restarted.Seal([]byte("pan"), "card-pan:1")
	if got, err := running.Open(sealed, "card-pan:1"); err != nil || string(got) != "pan" {
		t.Fatalf("the running vault cannot open the new key's value: %q %v", got, err)
	}
	if mine, _ := running.Seal([]byte("x"), "c"); !strings.HasPrefix(mine, "v2:"+running.KeyID()+":") || running.KeyID() == restarted.KeyID() {
		t.Errorf("the running vault changed its sealing key: %s", mine)
	}
	if ids := running.RetiredKeyIDs(); len(ids) != 1 || ids[0] != restarted.KeyID() {
		t.Errorf("keys added by the reload: %v", ids)
	}
	other, _ := New(bytes.Repeat([]byte{9}, 32))
	foreign, _ := other.Seal([]byte("x"), "c")
	if _, err := running.Open(foreign, "c"); err != ErrOpen {
		t.Errorf("a value of a key in no file: %v", err)
	}
}

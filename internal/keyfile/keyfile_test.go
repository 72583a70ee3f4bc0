package keyfile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestLoadOrCreateConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "key")
	const n = 16
	got := make([][]byte, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, c, err := LoadOrCreate(path, func() ([]byte, error) { return []byte(fmt.Sprint("key-", i)), nil })
			if err != nil {
				t.Error(err)
			}
			got[i], created[i] = b, c
		}()
	}
	wg.Wait()
	winners := 0
	for i := range n {
		if created[i] {
			winners++
		}
		if !bytes.Equal(got[i], got[0]) {
			t.Errorf("instance %d loaded %q, instance 0 %q: two keys in use", i, got[i], got[0])
		}
	}
	if winners != 1 {
		t.Errorf("%d creators, want 1", winners)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", fi, err)
	}
	onDisk, _ := os.ReadFile(path)
	if !bytes.Equal(onDisk, got[0]) {
		t.Errorf("file holds %q, instances use %q", onDisk, got[0])
	}
}

func TestWriteAtomicReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := WriteAtomic(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteAtomic(path, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "two" {
		t.Errorf("got %q", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

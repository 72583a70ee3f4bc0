// Package vault seals secrets at rest — card numbers, webhook signing secrets —
// with AES-256-GCM under a data key kept in a file outside the database, and
// computes keyed hashes for looking sealed values up without opening them.
//
// A vault holds one current data key, which seals, and the retired keys it
// replaced (Rotate), which only open what they sealed until every value is
// re-sealed under the current key (Reseal). A sealed value names its key:
// "v2:<key id>:<nonce and ciphertext>". Values from before key ids, "v1:…",
// were sealed by the original data key, the one the lookup-hash key was
// derived from, and open with it for as long as it is in the set.
//
// The lookup-hash key does not change on rotation: a rotated key file carries
// it along, so the hashes stored beside sealed values (a card number's, to
// find its card) keep matching without re-hashing any row.
package vault

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ponte-ofb/ponte/internal/keyfile"
)

// Key file formats. v1 holds one key, both subkeys derived from it; v2 (a
// rotated key) holds the key and the lookup-hash key it inherited.
const (
	keyFileVersion  = "ponte-data-key-v1:"
	keyFileVersion2 = "ponte-data-key-v2:"
)

// Sealed value prefixes: v1 without a key id (the original key), v2 with one.
const (
	sealedPrefix   = "v1:"
	sealedPrefixV2 = "v2:"
)

// ErrOpen means a sealed value could not be opened: wrong key, wrong context or tampering.
var ErrOpen = errors.New("vault: cannot open sealed value")

// dataKey is one data key: its id and its sealing cipher.
type dataKey struct {
	id   string
	aead cipher.AEAD
	// derivedHash is the lookup-hash key derived from this key: the set's
	// hash key when this is the original key.
	derivedHash []byte
}

// Vault seals with its current data key and opens with any key of its set.
type Vault struct {
	current *dataKey
	hashKey []byte
	// path is the key file the vault was loaded from ("" for New): a value
	// naming a key the vault does not know makes it look there again, so
	// an instance not yet restarted after a rotation opens what restarted
	// instances seal with the new key once the key set is updated.
	path string

	mu       sync.RWMutex
	byID     map[string]*dataKey
	retired  []string // ids, in the order loaded
	legacy   *dataKey // opens "v1:" values: the original key, nil once it is removed
	reloaded time.Time
}

// reloadEvery bounds how often an unknown key id sends the vault back to
// its key files, so values naming no key cannot make it read them on every call.
const reloadEvery = time.Second

// RetiredDir is the directory of the retired keys of the data key at path:
// beside it, named for it (data.key: data-key.retired/), one <key id>.key
// file per key.
func RetiredDir(path string) string {
	base := filepath.Base(path)
	ext := filepath.Ext(base)
	name := strings.TrimSuffix(base, ext)
	if ext != "" {
		name += "-" + strings.TrimPrefix(ext, ".")
	}
	return filepath.Join(filepath.Dir(path), name+".retired")
}

// LoadOrCreate reads the data key at path, creating a random 256-bit key (mode
// 0600, written atomically) if the file does not exist, and the retired keys
// in RetiredDir(path).
func LoadOrCreate(path string) (*Vault, error) {
	b, _, err := keyfile.LoadOrCreate(path, newKeyFile)
	if err != nil {
		return nil, fmt.Errorf("vault: data key %s: %w", path, err)
	}
	return load(path, b)
}

// Read reads the data key at path and its retired keys without creating
// anything: a missing file is an error wrapping fs.ErrNotExist.
func Read(path string) (*Vault, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vault: data key: %w", err)
	}
	return load(path, b)
}

// Rotate makes a new data key current at path and retires the one there
// (which must exist) into RetiredDir(path), keeping the lookup-hash key. The
// old key file is copied to the retired directory before the new one
// replaces it, so a crash in between leaves the old key current and a copy
// retired, and running Rotate again finishes the rotation.
func Rotate(path string) (*Vault, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vault: data key: %w", err)
	}
	old, err := load(path, b)
	if err != nil {
		return nil, err
	}
	dir := RetiredDir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("vault: retired keys: %w", err)
	}
	if err := keyfile.WriteAtomic(filepath.Join(dir, old.current.id+".key"), b, 0o600); err != nil {
		return nil, fmt.Errorf("vault: retire data key %s: %w", old.current.id, err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("vault: generate data key: %w", err)
	}
	text := keyFileVersion2 + base64.StdEncoding.EncodeToString(key) + ":" + base64.StdEncoding.EncodeToString(old.hashKey) + "\n"
	if err := keyfile.WriteAtomic(path, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("vault: write new data key %s: %w", path, err)
	}
	return Read(path)
}

func newKeyFile() ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return []byte(keyFileVersion + base64.StdEncoding.EncodeToString(key) + "\n"), nil
}

// parseKeyFile returns a key file's key and, for a rotated key, the hash
// key it carries (nil for v1: derived from the key).
func parseKeyFile(path string, b []byte) (key, hashKey []byte, err error) {
	text := strings.TrimSpace(string(b))
	decode := func(s string) ([]byte, error) {
		k, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("vault: decode data key %s: %w", path, err)
		}
		if len(k) != 32 {
			return nil, fmt.Errorf("vault: data key %s must be 32 bytes, got %d", path, len(k))
		}
		return k, nil
	}
	if rest, ok := strings.CutPrefix(text, keyFileVersion); ok {
		key, err = decode(rest)
		return key, nil, err
	}
	if rest, ok := strings.CutPrefix(text, keyFileVersion2); ok {
		k, h, found := strings.Cut(rest, ":")
		if !found {
			return nil, nil, fmt.Errorf("vault: %s is not a Ponte data key file", path)
		}
		if key, err = decode(k); err != nil {
			return nil, nil, err
		}
		hashKey, err = decode(h)
		return key, hashKey, err
	}
	return nil, nil, fmt.Errorf("vault: %s is not a Ponte data key file", path)
}

// load builds the vault of the key file at path (contents b) and its retired keys.
func load(path string, b []byte) (*Vault, error) {
	key, hashKey, err := parseKeyFile(path, b)
	if err != nil {
		return nil, err
	}
	current, err := newDataKey(key)
	if err != nil {
		return nil, err
	}
	if hashKey == nil {
		hashKey = current.derivedHash
	}
	v := &Vault{current: current, byID: map[string]*dataKey{current.id: current}, hashKey: hashKey, path: path}
	dir := RetiredDir(path)
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("vault: retired keys %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".key" {
			continue
		}
		p := filepath.Join(dir, e.Name())
		rb, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("vault: retired key: %w", err)
		}
		rk, _, err := parseKeyFile(p, rb)
		if err != nil {
			return nil, err
		}
		k, err := newDataKey(rk)
		if err != nil {
			return nil, err
		}
		if _, dup := v.byID[k.id]; dup {
			continue // the current key retired by an interrupted rotation, or a copy
		}
		v.byID[k.id] = k
		v.retired = append(v.retired, k.id)
	}
	for _, k := range v.byID {
		if hmac.Equal(k.derivedHash, v.hashKey) {
			v.legacy = k
		}
	}
	return v, nil
}

// New returns a vault for a 32-byte data key. Separate subkeys are derived for
// sealing and for hashing, so a hash never reveals anything about the sealing key.
func New(key []byte) (*Vault, error) {
	k, err := newDataKey(key)
	if err != nil {
		return nil, err
	}
	return &Vault{current: k, byID: map[string]*dataKey{k.id: k}, legacy: k, hashKey: k.derivedHash}, nil
}

func newDataKey(key []byte) (*dataKey, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("vault: data key must be 32 bytes, got %d", len(key))
	}
	sealKey, err := hkdf.Key(sha256.New, key, nil, "ponte vault seal", 32)
	if err != nil {
		return nil, err
	}
	hashKey, err := hkdf.Key(sha256.New, key, nil, "ponte vault lookup hash", 32)
	if err != nil {
		return nil, err
	}
	// The id names the key in sealed values without revealing anything of it.
	id, err := hkdf.Key(sha256.New, key, nil, "ponte vault key id", 8)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &dataKey{id: hex.EncodeToString(id), aead: aead, derivedHash: hashKey}, nil
}

// KeyID is the current data key's id, the one new seals name.
func (v *Vault) KeyID() string { return v.current.id }

// RetiredKeyIDs are the ids of the keys loaded beside the current one.
func (v *Vault) RetiredKeyIDs() []string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return append([]string(nil), v.retired...)
}

// key is the key named id, looking in the key files again (at most once
// per reloadEvery) when it is not loaded: after a rotation on another host.
func (v *Vault) key(id string) *dataKey {
	v.mu.RLock()
	k := v.byID[id]
	v.mu.RUnlock()
	if k != nil || v.path == "" {
		return k
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if k := v.byID[id]; k != nil {
		return k
	}
	if now := time.Now(); now.Sub(v.reloaded) >= reloadEvery {
		v.reloaded = now
		if fresh, err := Read(v.path); err == nil && bytes.Equal(fresh.hashKey, v.hashKey) {
			// Keys are only added: the current one stays until restart.
			for _, id := range fresh.RetiredKeyIDs() {
				v.add(fresh.byID[id])
			}
			v.add(fresh.current)
		}
	}
	return v.byID[id]
}

// add puts k in the set, as a retired key, unless it is there. v.mu is held.
func (v *Vault) add(k *dataKey) {
	if _, ok := v.byID[k.id]; ok {
		return
	}
	v.byID[k.id] = k
	v.retired = append(v.retired, k.id)
}

func (v *Vault) legacyKey() *dataKey {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.legacy
}

// Seal encrypts plaintext bound to context (e.g. "card-pan:<card id>"), so a
// sealed value copied to another row does not open there.
func (v *Vault) Seal(plaintext []byte, context string) (string, error) {
	aead := v.current.aead
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("vault: nonce: %w", err)
	}
	out := aead.Seal(nonce, nonce, plaintext, []byte(context))
	return sealedPrefixV2 + v.current.id + ":" + base64.RawStdEncoding.EncodeToString(out), nil
}

// Open decrypts a value sealed with the same context, by whichever key of
// the set sealed it.
func (v *Vault) Open(sealed, context string) ([]byte, error) {
	var (
		k   *dataKey
		raw string
	)
	if rest, ok := strings.CutPrefix(sealed, sealedPrefixV2); ok {
		id, body, found := strings.Cut(rest, ":")
		if !found {
			return nil, ErrOpen
		}
		k, raw = v.key(id), body
	} else if rest, ok := strings.CutPrefix(sealed, sealedPrefix); ok {
		k, raw = v.legacyKey(), rest
	}
	if k == nil {
		return nil, ErrOpen
	}
	b, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(b) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, ErrOpen
	}
	pt, err := k.aead.Open(nil, b[:k.aead.NonceSize()], b[k.aead.NonceSize():], []byte(context))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Current reports whether sealed names the current key (it may still fail
// to open: only Open checks it).
func (v *Vault) Current(sealed string) bool {
	return strings.HasPrefix(sealed, sealedPrefixV2+v.current.id+":")
}

// Reseal returns sealed re-sealed under the current key, and whether it
// changed: a value already sealed by the current key is returned as it is,
// so resealing again is harmless. A value no key of the set opens is ErrOpen.
func (v *Vault) Reseal(sealed, context string) (string, bool, error) {
	if v.Current(sealed) {
		return sealed, false, nil
	}
	pt, err := v.Open(sealed, context)
	if err != nil {
		return "", false, err
	}
	out, err := v.Seal(pt, context)
	clear(pt)
	if err != nil {
		return "", false, err
	}
	return out, true, nil
}

// Hash returns a keyed hash (HMAC-SHA256, hex) of value in a domain, for
// equality lookups of sealed values: without the data key it cannot be
// brute-forced from the small space of card numbers. The hash key stays the
// same across rotations (see the package documentation).
func (v *Vault) Hash(domain string, value []byte) string {
	m := hmac.New(sha256.New, v.hashKey)
	m.Write([]byte(domain))
	m.Write([]byte{0})
	m.Write(value)
	return hex.EncodeToString(m.Sum(nil))
}

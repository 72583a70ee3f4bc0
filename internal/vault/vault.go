// Package vault seals secrets at rest — card numbers, webhook signing secrets —
// with AES-256-GCM under a data key kept in a file outside the database, and
// computes keyed hashes for looking sealed values up without opening them.
package vault

import (
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
	"strings"

	"github.com/ponte-ofb/ponte/internal/keyfile"
)

// keyFileVersion prefixes the key file so a future format can be told apart.
const keyFileVersion = "ponte-data-key-v1:"

// sealedPrefix marks values sealed by this version of the vault.
const sealedPrefix = "v1:"

// ErrOpen means a sealed value could not be opened: wrong key, wrong context or tampering.
var ErrOpen = errors.New("vault: cannot open sealed value")

// Vault seals and opens values with one data key.
type Vault struct {
	aead    cipher.AEAD
	hashKey []byte
}

// LoadOrCreate reads the data key at path, creating a random 256-bit key (mode
// 0600, written atomically) if the file does not exist.
func LoadOrCreate(path string) (*Vault, error) {
	b, _, err := keyfile.LoadOrCreate(path, func() ([]byte, error) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		return []byte(keyFileVersion + base64.StdEncoding.EncodeToString(key) + "\n"), nil
	})
	if err != nil {
		return nil, fmt.Errorf("vault: data key %s: %w", path, err)
	}
	text := strings.TrimSpace(string(b))
	if !strings.HasPrefix(text, keyFileVersion) {
		return nil, fmt.Errorf("vault: %s is not a Ponte data key file", path)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(text, keyFileVersion))
	if err != nil {
		return nil, fmt.Errorf("vault: decode data key %s: %w", path, err)
	}
	return New(key)
}

// New returns a vault for a 32-byte data key. Separate subkeys are derived for
// sealing and for hashing, so a hash never reveals anything about the sealing key.
func New(key []byte) (*Vault, error) {
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
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Vault{aead: aead, hashKey: hashKey}, nil
}

// Seal encrypts plaintext bound to context (e.g. "card-pan:<card id>"), so a
// sealed value copied to another row does not open there.
func (v *Vault) Seal(plaintext []byte, context string) (string, error) {
	nonce := make([]byte, v.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("vault: nonce: %w", err)
	}
	out := v.aead.Seal(nonce, nonce, plaintext, []byte(context))
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// Open decrypts a value sealed with the same context.
func (v *Vault) Open(sealed, context string) ([]byte, error) {
	raw, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return nil, ErrOpen
	}
	b, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(b) < v.aead.NonceSize()+v.aead.Overhead() {
		return nil, ErrOpen
	}
	pt, err := v.aead.Open(nil, b[:v.aead.NonceSize()], b[v.aead.NonceSize():], []byte(context))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Hash returns a keyed hash (HMAC-SHA256, hex) of value in a domain, for
// equality lookups of sealed values: without the data key it cannot be
// brute-forced from the small space of card numbers.
func (v *Vault) Hash(domain string, value []byte) string {
	m := hmac.New(sha256.New, v.hashKey)
	m.Write([]byte(domain))
	m.Write([]byte{0})
	m.Write(value)
	return hex.EncodeToString(m.Sum(nil))
}

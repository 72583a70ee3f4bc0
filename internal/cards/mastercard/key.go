package mastercard

import (
	"github.com/ponte-ofb/ponte/internal/keyfile"

	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreateRSAKey returns the RSA private key stored at path as a PKCS#8
// PEM "PRIVATE KEY" block, generating a bits-sized key on first use. The file
// is created atomically and exclusively with mode 0600 (the parent directory,
// if created, gets 0700): when several processes start together, the first
// one's key wins and the others load it. An existing key is used whatever its
// size, as long as it has at least MinRSABits.
//
// The sandbox uses it for the TAV signing key and for the stand-in
// "Mastercard payload-encryption" key pair.
func LoadOrCreateRSAKey(path string, bits int) (*rsa.PrivateKey, error) {
	if bits < MinRSABits {
		return nil, fmt.Errorf("mastercard: RSA key size %d is below %d bits", bits, MinRSABits)
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, gerr := createRSAKey(path, bits)
		if gerr == nil {
			return key, nil
		}
		if !errors.Is(gerr, fs.ErrExist) {
			return nil, gerr
		}
		// Another process created it first: use theirs.
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("mastercard: read RSA key: %w", err)
	}
	key, err := DecodeRSAKey(data)
	if err != nil {
		return nil, fmt.Errorf("mastercard: %s: %w", path, err)
	}
	return key, nil
}

func createRSAKey(path string, bits int) (*rsa.PrivateKey, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("mastercard: create key directory: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, fmt.Errorf("mastercard: generate RSA key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("mastercard: encode RSA key: %w", err)
	}
	err = keyfile.WriteExclusive(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("mastercard: write RSA key: %w", err)
	}
	return key, nil
}

// DecodeRSAKey parses a PKCS#8 PEM "PRIVATE KEY" block holding an RSA key of
// at least MinRSABits.
func DecodeRSAKey(data []byte) (*rsa.PrivateKey, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("mastercard: not a PEM PRIVATE KEY (PKCS#8) block")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("mastercard: data after the private key block")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("mastercard: parse PKCS#8 key: %w", err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("mastercard: key is %T, want RSA", parsed)
	}
	if key.N.BitLen() < MinRSABits {
		return nil, fmt.Errorf("mastercard: RSA key has %d bits, need at least %d", key.N.BitLen(), MinRSABits)
	}
	return key, nil
}

// EncodePublicKeyPEM returns pub as a PEM "PUBLIC KEY" (SubjectPublicKeyInfo)
// block, the form in which a public key is registered or shared with a
// partner.
func EncodePublicKeyPEM(pub *rsa.PublicKey) ([]byte, error) {
	if pub == nil {
		return nil, errors.New("mastercard: public key is nil")
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("mastercard: encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

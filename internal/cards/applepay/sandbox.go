package applepay

import (
	"github.com/ponte-ofb/ponte/internal/keyfile"

	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Sandbox trust material. The sandbox root stands in for Apple Root CA - G3
// so a partner can run the whole flow with a device certificate of its own
// and decrypt the payloads it receives.
const (
	// TestRootCommonName is the subject CN of the sandbox root.
	TestRootCommonName = "Ponte Sandbox Apple Root CA"
	// TestRootCertFile and TestRootKeyFile are the file names
	// LoadOrCreateTestRoot uses inside its directory.
	TestRootCertFile = "sandbox-apple-root.pem"
	TestRootKeyFile  = "sandbox-apple-root-key.pem"

	testRootValidity   = 10 * 365 * 24 * time.Hour
	testDeviceValidity = 2 * 365 * 24 * time.Hour
	// backdate absorbs clock skew between Ponte and the partner's machine.
	backdate = time.Hour
)

// NewTestRoot creates a self-signed P-256 CA named TestRootCommonName, valid
// for ten years from now. random may be nil for crypto/rand.
func NewTestRoot(random io.Reader, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if random == nil {
		random = rand.Reader
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, nil, fmt.Errorf("applepay: generate sandbox root key: %w", err)
	}
	cert, err := newRootCert(random, key, now)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// newRootCert self-signs a root for key. Go derives the subject key id from
// the public key, so a root re-issued for the same key still verifies every
// device certificate issued before.
func newRootCert(random io.Reader, key *ecdsa.PrivateKey, now time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial(random)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: TestRootCommonName, Organization: []string{"Ponte Sandbox"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(testRootValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            1,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("applepay: create sandbox root: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("applepay: parse sandbox root: %w", err)
	}
	return cert, nil
}

// IssueTestDevice issues a sandbox encipherment certificate shaped like
// Apple's: P-256, KeyUsage KeyAgreement|KeyEncipherment, the critical
// MarkerOID extension, valid two years (capped at the root's expiry). It
// returns the certificate PEM (what the partner sends as appleCertificate)
// and the PKCS#8 private key PEM (what the partner decrypts with).
func IssueTestDevice(random io.Reader, root *x509.Certificate, rootKey *ecdsa.PrivateKey, now time.Time) (leafPEM, keyPEM []byte, err error) {
	if root == nil || rootKey == nil {
		return nil, nil, errors.New("applepay: sandbox root and key are required")
	}
	if random == nil {
		random = rand.Reader
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, nil, fmt.Errorf("applepay: generate device key: %w", err)
	}
	serial, err := randomSerial(random)
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(testDeviceValidity)
	if notAfter.After(root.NotAfter) {
		notAfter = root.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         "Ponte Sandbox Apple Pay Encipherment",
			OrganizationalUnit: []string{"ApplePay sandbox"},
			Organization:       []string{"Ponte Sandbox"},
		},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageKeyAgreement | x509.KeyUsageKeyEncipherment,
		// The value of Apple's marker is not public; ASN.1 NULL marks presence.
		ExtraExtensions: []pkix.Extension{{Id: markerOID(), Critical: true, Value: []byte{0x05, 0x00}}},
	}
	der, err := x509.CreateCertificate(random, tmpl, root, &key.PublicKey, rootKey)
	if err != nil {
		return nil, nil, fmt.Errorf("applepay: issue device certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("applepay: encode device key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil
}

// EncodeTestRoot returns the root certificate PEM and its PKCS#8 key PEM.
func EncodeTestRoot(cert *x509.Certificate, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	if cert == nil || key == nil {
		return nil, nil, errors.New("applepay: sandbox root and key are required")
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("applepay: encode sandbox root key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil
}

// DecodeTestRoot parses what EncodeTestRoot wrote and checks that the key
// belongs to the certificate and that the certificate is a CA.
func DecodeTestRoot(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := decodeECKey(keyPEM)
	if err != nil {
		return nil, nil, err
	}
	cert, err := decodeRootCert(certPEM, key)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// decodeRootCert parses a single CA certificate and checks it belongs to key.
func decodeRootCert(certPEM []byte, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	certs, err := ParseCertificates(string(certPEM))
	if err != nil {
		return nil, fmt.Errorf("applepay: sandbox root certificate: %w", err)
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("applepay: sandbox root file holds %d certificates, want 1", len(certs))
	}
	cert := certs[0]
	if !cert.IsCA {
		return nil, errors.New("applepay: sandbox root certificate is not a CA")
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("applepay: sandbox root key does not match its certificate")
	}
	return cert, nil
}

// decodeECKey parses a PKCS#8 PEM holding a P-256 ECDSA key.
func decodeECKey(keyPEM []byte) (*ecdsa.PrivateKey, error) {
	block, rest := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("applepay: sandbox root key is not a PEM PRIVATE KEY block")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("applepay: sandbox root key file has data after the key")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("applepay: parse sandbox root key: %w", err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, errors.New("applepay: sandbox root key is not ECDSA P-256")
	}
	return key, nil
}

// LoadOrCreateTestRoot returns the sandbox root stored in dir, creating it on
// first use: TestRootKeyFile (mode 0600) and TestRootCertFile (mode 0644).
//
// The key is the identity: it is created exclusively (the first of several
// concurrent starters wins, the others load its key). The certificate is
// derived from the key, so it is re-issued if missing or no longer valid at
// now; device certificates issued earlier keep verifying. A certificate that
// does not match the key is an error rather than being overwritten.
func LoadOrCreateTestRoot(dir string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("applepay: create sandbox directory: %w", err)
	}
	keyPath := filepath.Join(dir, TestRootKeyFile)
	certPath := filepath.Join(dir, TestRootCertFile)

	key, err := loadOrCreateRootKey(keyPath)
	if err != nil {
		return nil, nil, err
	}

	certPEM, err := os.ReadFile(certPath)
	switch {
	case err == nil:
		cert, derr := decodeRootCert(certPEM, key)
		if derr != nil {
			return nil, nil, fmt.Errorf("applepay: %s: %w", certPath, derr)
		}
		if !now.Before(cert.NotBefore) && !now.After(cert.NotAfter) {
			return cert, key, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("applepay: read sandbox root: %w", err)
	}

	cert, err := newRootCert(rand.Reader, key, now)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if err := keyfile.WriteAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, nil, fmt.Errorf("applepay: write sandbox root: %w", err)
	}
	return cert, key, nil
}

func loadOrCreateRootKey(path string) (*ecdsa.PrivateKey, error) {
	keyPEM, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, gerr := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if gerr != nil {
			return nil, fmt.Errorf("applepay: generate sandbox root key: %w", gerr)
		}
		der, merr := x509.MarshalPKCS8PrivateKey(key)
		if merr != nil {
			return nil, fmt.Errorf("applepay: encode sandbox root key: %w", merr)
		}
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		werr := keyfile.WriteExclusive(path, keyPEM, 0o600)
		if werr == nil {
			return key, nil
		}
		if !errors.Is(werr, fs.ErrExist) {
			return nil, fmt.Errorf("applepay: write sandbox root key: %w", werr)
		}
		// Another process created it first: use theirs.
		keyPEM, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("applepay: read sandbox root key: %w", err)
	}
	key, err := decodeECKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

func randomSerial(random io.Reader) (*big.Int, error) {
	serial, err := rand.Int(random, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("applepay: certificate serial: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil // serials must be positive
}

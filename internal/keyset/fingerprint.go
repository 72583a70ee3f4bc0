package keyset

import (
	"crypto"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/auth"
)

// secretIterations is PBKDF2's work per secret fingerprint: an operator's
// --admin-token may be guessable, and the fingerprints table must not be a
// cheap oracle for it. Generated secrets are 256-bit and need none, but one
// scheme for every secret keeps the rule simple; it costs a few
// milliseconds per secret at start.
const secretIterations = 20000

// Fingerprint is the one-way digest of key k's content (a file's bytes or
// a flag's value) that the database records and `ponte keys show` prints.
// Asymmetric keys: "sha256:" and the SHA-256 of the public key's PKIX DER
// (public information, like a JWK thumbprint). Secrets (the data key, the
// admin token, the network secret, the demo client's credentials): "pbkdf2:"
// and a PBKDF2-SHA256 digest salted with the key's id, from which the
// secret cannot be recovered. The organisation id, not a secret: its
// SHA-256. Content that does not parse as its kind is an error.
func Fingerprint(k Key, content []byte) (string, error) {
	switch k.Kind {
	case RSAKey, ECKey, Certificate:
		pub, err := publicKey(content)
		if err != nil {
			return "", err
		}
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return "", fmt.Errorf("encode public key: %w", err)
		}
		sum := sha256.Sum256(der)
		return "sha256:" + base64.RawURLEncoding.EncodeToString(sum[:]), nil
	case OrgID:
		id := string(trimmed(content))
		if uuid.Validate(id) != nil {
			return "", fmt.Errorf("holds %q, not an organisation id (UUID)", id)
		}
		sum := sha256.Sum256([]byte(id))
		return "sha256:" + base64.RawURLEncoding.EncodeToString(sum[:]), nil
	case DataKey, Secret:
		s := trimmed(content)
		if len(s) < 16 {
			return "", errors.New("is shorter than 16 bytes")
		}
		return secretDigest(k.ID, s)
	case DemoClient:
		var c auth.DemoCredentials
		if err := json.Unmarshal(content, &c); err != nil || c.ClientID == "" || len(c.ClientSecret) < 16 {
			return "", errors.New(`is not {"client_id": ..., "client_secret": ...} with a secret of 16 characters or more`)
		}
		return secretDigest(k.ID, []byte(c.ClientID+"\n"+c.ClientSecret))
	}
	return "", fmt.Errorf("unknown kind %d", k.Kind)
}

func secretDigest(id string, secret []byte) (string, error) {
	d, err := pbkdf2.Key(sha256.New, string(secret), []byte("ponte key fingerprint "+id), secretIterations, 32)
	if err != nil {
		return "", fmt.Errorf("digest: %w", err)
	}
	return "pbkdf2:" + base64.RawURLEncoding.EncodeToString(d), nil
}

// publicKey is the public half of the first PEM block of b: a private key
// (PKCS #8, PKCS #1 or SEC 1), a public key or a certificate.
func publicKey(b []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("is not PEM")
	}
	type signer interface{ Public() crypto.PublicKey }
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "CERTIFICATE":
		c, cerr := x509.ParseCertificate(block.Bytes)
		if cerr != nil {
			return nil, fmt.Errorf("parse certificate: %w", cerr)
		}
		return c.PublicKey, nil
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	s, ok := key.(signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key %T", key)
	}
	return s.Public(), nil
}

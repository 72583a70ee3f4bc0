package cards

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/cards/applepay"
	"github.com/ponte-ofb/ponte/internal/cards/googlepay"
	"github.com/ponte-ofb/ponte/internal/cards/mastercard"
	"github.com/ponte-ofb/ponte/internal/keyfile"
)

// KeyFiles names the files wallet provisioning needs. Empty names mean sandbox
// files in DataDir (created on first start) when Sandbox is set, and "not
// configured" otherwise.
type KeyFiles struct {
	Sandbox           bool
	DataDir           string
	AppleRootCA       string // PEM certificates
	TAVKey            string // RSA private key PEM
	PEPK              string // RSA public key or certificate PEM
	NetworkSecretFile string // the HMAC secret, as text
}

// Sandbox file names in the data directory.
const (
	SandboxTAVKeyFile        = "sandbox-mastercard-tav-key.pem"
	SandboxPEPKPrivateFile   = "sandbox-mastercard-pepk-private-key.pem"
	SandboxNetworkSecretFile = "sandbox-network-secret"
)

// LoadKeys loads (and in the sandbox creates) the wallet keys and the network
// notification secret. A missing production setting leaves that part nil and
// is listed in missing, so start-up can say what is not configured.
func LoadKeys(f KeyFiles, now time.Time) (w Wallets, networkSecret []byte, missing []string, err error) {
	roots := x509.NewCertPool()
	switch {
	case f.AppleRootCA != "":
		b, rerr := os.ReadFile(f.AppleRootCA)
		if rerr != nil {
			return w, nil, nil, fmt.Errorf("cards: read Apple root CA: %w", rerr)
		}
		if !roots.AppendCertsFromPEM(b) {
			return w, nil, nil, fmt.Errorf("cards: %s holds no PEM certificate", f.AppleRootCA)
		}
	case f.Sandbox:
		root, _, lerr := applepay.LoadOrCreateTestRoot(f.DataDir, now)
		if lerr != nil {
			return w, nil, nil, lerr
		}
		roots.AddCert(root)
	default:
		roots = nil
		missing = append(missing, "--apple-root-ca")
	}
	if roots != nil {
		w.Apple = &applepay.Verifier{Roots: roots, RequireMarker: true}
	}

	tavPath := f.TAVKey
	if tavPath == "" && f.Sandbox {
		tavPath = filepath.Join(f.DataDir, SandboxTAVKeyFile)
	}
	if tavPath != "" {
		var key *rsa.PrivateKey
		if f.TAVKey == "" {
			key, err = mastercard.LoadOrCreateRSAKey(tavPath, 2048)
		} else {
			var b []byte
			if b, err = os.ReadFile(tavPath); err == nil {
				key, err = mastercard.DecodeRSAKey(b)
			}
		}
		if err != nil {
			return w, nil, nil, fmt.Errorf("cards: TAV key %s: %w", tavPath, err)
		}
		w.TAV = &mastercard.TAVSigner{Key: key}
	} else {
		missing = append(missing, "--mastercard-tav-key")
	}

	switch {
	case f.PEPK != "":
		pub, perr := readRSAPublicKey(f.PEPK)
		if perr != nil {
			return w, nil, nil, perr
		}
		w.Google = &googlepay.Encryptor{PublicKey: pub}
	case f.Sandbox:
		// The sandbox keeps the private half so partners can decrypt their own OPCs.
		key, kerr := mastercard.LoadOrCreateRSAKey(filepath.Join(f.DataDir, SandboxPEPKPrivateFile), 2048)
		if kerr != nil {
			return w, nil, nil, kerr
		}
		w.Google = &googlepay.Encryptor{PublicKey: &key.PublicKey}
	default:
		missing = append(missing, "--mastercard-pepk")
	}

	secretPath := f.NetworkSecretFile
	if secretPath == "" && f.Sandbox {
		secretPath = filepath.Join(f.DataDir, SandboxNetworkSecretFile)
		if _, _, err := keyfile.LoadOrCreate(secretPath, func() ([]byte, error) {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return nil, err
			}
			return []byte(base64.StdEncoding.EncodeToString(b) + "\n"), nil
		}); err != nil {
			return w, nil, nil, fmt.Errorf("cards: network secret: %w", err)
		}
	}
	if secretPath != "" {
		b, rerr := os.ReadFile(secretPath)
		if rerr != nil {
			return w, nil, nil, fmt.Errorf("cards: read network secret: %w", rerr)
		}
		networkSecret = []byte(strings.TrimSpace(string(b)))
		if len(networkSecret) < 16 {
			return w, nil, nil, fmt.Errorf("cards: network secret in %s is shorter than 16 bytes", secretPath)
		}
	} else {
		missing = append(missing, "--network-secret")
	}
	return w, networkSecret, missing, nil
}

func readRSAPublicKey(path string) (*rsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cards: read Mastercard public key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("cards: %s is not PEM", path)
	}
	var pub any
	switch block.Type {
	case "CERTIFICATE":
		c, cerr := x509.ParseCertificate(block.Bytes)
		if cerr != nil {
			return nil, fmt.Errorf("cards: parse %s: %w", path, cerr)
		}
		pub = c.PublicKey
	default:
		if pub, err = x509.ParsePKIXPublicKey(block.Bytes); err != nil {
			return nil, fmt.Errorf("cards: parse %s: %w", path, err)
		}
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("cards: %s is not an RSA public key", path)
	}
	return rsaPub, nil
}

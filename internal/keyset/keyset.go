// Package keyset is the key set every instance of one database shares: the
// fixed file names of every key and secret an instance needs (Layout), the
// generation of a complete set into a new directory (`ponte keys init`, Init)
// or of one missing key file (Generate, for a sandbox data directory), its
// loading and validation (Load), one-way fingerprints of each key
// (Fingerprint), and what the database remembers of them (Verify, Rotate,
// Recorded in record.go).
package keyset

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/cards/applepay"
	"github.com/ponte-ofb/ponte/internal/cards/mastercard"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/keyfile"
	"github.com/ponte-ofb/ponte/internal/vault"
)

// Kind is a key's file format, which decides how it is generated and
// fingerprinted.
type Kind int

// Kinds.
const (
	RSAKey      Kind = iota // PEM PKCS #8 RSA private key, 2048 bits
	ECKey                   // PEM PKCS #8 P-256 private key
	Certificate             // PEM certificate derived from a key of the set
	DataKey                 // vault's data key file
	Secret                  // a random secret, as text
	OrgID                   // a UUID, as text
	DemoClient              // JSON client_id and client_secret (auth.DemoCredentials)
)

// Key is one key or secret of the set.
type Key struct {
	ID   string // the name the database records it under
	Name string // what messages call it
	File string // its file in a key set directory
	Kind Kind
	// Flag is the `ponte serve` flag that points at another file (or gives
	// the value) instead.
	Flag string
	// Sandbox keys exist only in a sandbox set (`ponte keys init --sandbox`).
	Sandbox bool
	// Rotatable keys may be replaced with a `ponte keys rotate-…` command:
	// the database then knows retired fingerprints too, which still pass.
	Rotatable bool
	// Recorded keys have their fingerprint recorded in the database; a
	// certificate derived from a recorded key is not.
	Recorded bool
}

// IDs of the keys, as the database records them.
const (
	SigningKey           = "signing-key"
	DataKeyID            = "data-key"
	AdminToken           = "admin-token"
	OrganisationID       = "org-id"
	ITPEncryptionKey     = "itp-encryption-key"
	SandboxPartnerKey    = "sandbox-partner-key"
	SandboxITPKey        = "sandbox-itp-key"
	SandboxDirectoryKey  = "sandbox-directory-key"
	SandboxTAVKey        = "sandbox-mastercard-tav-key"
	SandboxPEPKKey       = "sandbox-mastercard-pepk"
	SandboxNetworkSecret = "sandbox-network-secret"
	SandboxAppleRootKey  = "sandbox-apple-root-key"
	SandboxAppleRoot     = "sandbox-apple-root"
	SandboxDemoClient    = "sandbox-demo-client"
)

// Layout is every key of a complete set, production's first. The file
// names are those a sandbox data directory has always used, so a data
// directory's files can be moved into a key set (the initiator encryption
// key excepted: config.SandboxITPEncryptionKeyFile there).
var Layout = []Key{
	{ID: SigningKey, Name: "token signing key", File: config.SigningKeyFileName, Kind: RSAKey, Flag: "--signing-key", Rotatable: true, Recorded: true},
	{ID: DataKeyID, Name: "data key", File: config.DataKeyFileName, Kind: DataKey, Flag: "--data-key", Rotatable: true, Recorded: true},
	{ID: AdminToken, Name: "admin token", File: "admin-token", Kind: Secret, Flag: "--admin-token", Recorded: true},
	{ID: OrganisationID, Name: "organisation id", File: "org-id", Kind: OrgID, Flag: "--org-id", Recorded: true},
	{ID: ITPEncryptionKey, Name: "initiator encryption key", File: config.ITPEncryptionKeyFileName, Kind: RSAKey, Flag: "--itp-encryption-key", Rotatable: true, Recorded: true},
	{ID: SandboxPartnerKey, Name: "sandbox partner key", File: "sandbox-partner-key.pem", Kind: RSAKey, Sandbox: true, Recorded: true},
	{ID: SandboxITPKey, Name: "sandbox initiator signing key", File: "sandbox-itp-key.pem", Kind: RSAKey, Sandbox: true, Recorded: true},
	{ID: SandboxDirectoryKey, Name: "sandbox Directory key", File: "sandbox-directory-key.pem", Kind: RSAKey, Sandbox: true, Recorded: true},
	{ID: SandboxTAVKey, Name: "sandbox Mastercard TAV key", File: "sandbox-mastercard-tav-key.pem", Kind: RSAKey, Flag: "--mastercard-tav-key", Sandbox: true, Recorded: true},
	{ID: SandboxPEPKKey, Name: "sandbox Mastercard PEPK key", File: "sandbox-mastercard-pepk-private-key.pem", Kind: RSAKey, Flag: "--mastercard-pepk", Sandbox: true, Recorded: true},
	{ID: SandboxNetworkSecret, Name: "sandbox network secret", File: "sandbox-network-secret", Kind: Secret, Flag: "--network-secret", Sandbox: true, Recorded: true},
	{ID: SandboxAppleRootKey, Name: "sandbox Apple Pay test root key", File: applepay.TestRootKeyFile, Kind: ECKey, Flag: "--apple-root-ca", Sandbox: true, Recorded: true},
	{ID: SandboxAppleRoot, Name: "sandbox Apple Pay test root", File: applepay.TestRootCertFile, Kind: Certificate, Flag: "--apple-root-ca", Sandbox: true},
	{ID: SandboxDemoClient, Name: "sandbox demo client credentials", File: "sandbox-demo-client.json", Kind: DemoClient, Sandbox: true, Recorded: true},
}

// Lookup returns the key of the layout with id.
func Lookup(id string) (Key, bool) {
	for _, k := range Layout {
		if k.ID == id {
			return k, true
		}
	}
	return Key{}, false
}

// Keys is the layout of a production set, or of a sandbox set.
func Keys(sandbox bool) []Key {
	var out []Key
	for _, k := range Layout {
		if !k.Sandbox || sandbox {
			out = append(out, k)
		}
	}
	return out
}

// InitOptions are the choices of `ponte keys init`.
type InitOptions struct {
	// OrgID is the institution's organisation id at the Open Finance
	// Directory; "" generates one (a sandbox's).
	OrgID string
	// Sandbox adds the sandbox's keys.
	Sandbox bool
	// Now dates the sandbox Apple Pay test root; zero means the wall clock.
	Now time.Time
}

// Init generates a complete key set into dir, which must not exist or be
// empty: a set is generated once and copied, never regenerated over one in
// use. The directory is made 0700 and every file 0600. On failure the files
// written are removed. It returns the set as Load would.
func Init(dir string, opts InitOptions) ([]Entry, error) {
	if opts.OrgID != "" && uuid.Validate(opts.OrgID) != nil {
		return nil, fmt.Errorf("keyset: --org-id %q is not a UUID (the organisation id the Open Finance Directory gave the institution)", opts.OrgID)
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("keyset: %s exists and is not empty: a key set is generated once, into a new directory (back up and move the old one away first)", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("keyset: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keyset: create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keyset: %w", err)
	}
	keys := Keys(opts.Sandbox)
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		if k.Kind == Certificate {
			continue // written with its key
		}
		wg.Add(1)
		go func() { // RSA generation dominates: one key per goroutine
			defer wg.Done()
			errs[i] = generate(k, filepath.Join(dir, k.File), opts)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, k := range keys {
			os.Remove(filepath.Join(dir, k.File))
		}
		return nil, err
	}
	return Load(dir)
}

// Generate creates the file of key k at path unless it exists (a sandbox
// data directory's first start; concurrent starts agree on one file). The
// organisation id is generated by its caller, which may keep an older one.
func Generate(k Key, path string, now time.Time) error {
	if k.Kind == OrgID {
		return fmt.Errorf("keyset: the organisation id is not generated here")
	}
	return generate(k, path, InitOptions{Now: now})
}

func generate(k Key, path string, opts InitOptions) error {
	var err error
	switch k.Kind {
	case RSAKey:
		if k.ID == SandboxTAVKey || k.ID == SandboxPEPKKey {
			_, err = mastercard.LoadOrCreateRSAKey(path, 2048)
		} else {
			_, err = auth.LoadOrCreateKey(path)
		}
	case ECKey, Certificate: // the Apple Pay test root: its key and certificate
		dir := filepath.Dir(path)
		if _, _, err = applepay.LoadOrCreateTestRoot(dir, opts.Now); err == nil {
			// Public, but the whole set is 0600 so a copy keeps one mode.
			err = os.Chmod(filepath.Join(dir, applepay.TestRootCertFile), 0o600)
		}
	case DataKey:
		_, err = vault.LoadOrCreate(path)
	case Secret:
		_, _, err = keyfile.LoadOrCreate(path, func() ([]byte, error) {
			b, err := random(32)
			return []byte(b + "\n"), err
		})
	case OrgID:
		id := opts.OrgID
		if id == "" {
			id = uuid.NewString()
		}
		_, _, err = keyfile.LoadOrCreate(path, func() ([]byte, error) { return []byte(id + "\n"), nil })
	case DemoClient:
		_, _, err = keyfile.LoadOrCreate(path, func() ([]byte, error) {
			secret, err := random(32)
			if err != nil {
				return nil, err
			}
			return json.MarshalIndent(auth.DemoCredentials{ClientID: uuid.NewString(), ClientSecret: secret}, "", "  ")
		})
	default:
		err = fmt.Errorf("unknown kind %d", k.Kind)
	}
	if err != nil {
		return fmt.Errorf("keyset: generate the %s %s: %w", k.Name, path, err)
	}
	return nil
}

// random is n random bytes, base64url.
func random(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Entry is one key as loaded: where it came from and its fingerprint.
type Entry struct {
	Key
	// Source is the file it was read from, or the flag that gave its value.
	Source      string
	Fingerprint string
	// Previous are fingerprints of keys this one replaced that the
	// configuration still lists (--itp-encryption-key's rotated-out keys):
	// when the database's current key is one of them, Verify records this
	// one as current and retires it, the configuration being the rotation.
	Previous []string
}

// Load reads the key set in dir: every production key must be there, and
// the sandbox's keys all or none. Each file must parse as its kind. Errors
// name the key and its file.
func Load(dir string) ([]Entry, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("keyset: %w (generate a key set with 'ponte keys init --dir %s')", err, dir)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("keyset: %s is not a directory", dir)
	}
	sandbox := false
	for _, k := range Layout {
		if _, err := os.Stat(filepath.Join(dir, k.File)); k.Sandbox && err == nil {
			sandbox = true
		}
	}
	var (
		out  []Entry
		errs []error
	)
	for _, k := range Keys(sandbox) {
		e, err := FingerprintFile(k, filepath.Join(dir, k.File))
		if errors.Is(err, fs.ErrNotExist) {
			err = MissingError{Key: k, Path: filepath.Join(dir, k.File), Dir: dir}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// MissingError is a key file absent from a key set.
type MissingError struct {
	Key  Key
	Path string
	Dir  string // the key set's directory
}

func (e MissingError) Error() string {
	init := "ponte keys init --dir " + e.Dir
	if e.Key.Sandbox {
		init += " --sandbox" // a production set has no sandbox keys
	}
	return fmt.Sprintf("keyset: the %s %s is missing: a key set is generated complete with '%s' "+
		"(into a new directory) and the same files are given to every instance; Ponte creates no key when --keys-dir is set", e.Key.Name, e.Path, init)
}

// Unwrap lets errors.Is(err, fs.ErrNotExist) see it.
func (e MissingError) Unwrap() error { return fs.ErrNotExist }

// FingerprintFile reads the key k from path and fingerprints it.
func FingerprintFile(k Key, path string) (Entry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Entry{}, fmt.Errorf("keyset: the %s %s: %w", k.Name, path, err)
	}
	fp, err := Fingerprint(k, b)
	if err != nil {
		return Entry{}, fmt.Errorf("keyset: the %s %s: %w", k.Name, path, err)
	}
	return Entry{Key: k, Source: path, Fingerprint: fp}, nil
}

// FingerprintValue fingerprints a key given as a value (--admin-token,
// --org-id): source names where it came from.
func FingerprintValue(k Key, source string, value []byte) (Entry, error) {
	fp, err := Fingerprint(k, value)
	if err != nil {
		return Entry{}, fmt.Errorf("keyset: the %s (%s): %w", k.Name, source, err)
	}
	return Entry{Key: k, Source: source, Fingerprint: fp}, nil
}

// trimmed is a text file's content without surrounding white space.
func trimmed(b []byte) []byte { return []byte(strings.TrimSpace(string(b))) }

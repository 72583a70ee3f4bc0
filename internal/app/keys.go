package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/keyset"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Sandbox key files in the key directory (config.KeyDir: the key set, or the
// data directory), besides the card ones (cards.Sandbox*File).
var (
	sandboxPartnerKeyFile = layoutFile(keyset.SandboxPartnerKey) // the sandbox partner app's login tokens
	sandboxITPKeyFile     = layoutFile(keyset.SandboxITPKey)     // Ponte-as-initiator at its own sandbox brand
)

func layoutFile(id string) string { return layoutKey(id).File }

func layoutKey(id string) keyset.Key {
	k, ok := keyset.Lookup(id)
	if !ok {
		panic("app: no key " + id + " in keyset.Layout") // a programming error, caught by every test
	}
	return k
}

// keyFile is one key or secret file this start loads.
type keyFile struct {
	key  keyset.Key
	path string
	// create: generated when absent. Only without --keys-dir, and only the
	// files Ponte has always generated (not an operator's explicit card
	// keys, not the org id, which organisationID generates).
	create bool
}

// keyFiles lists the key files cfg loads: every key path defaults into
// cfg.KeyDir(), and an explicit per-key flag wins.
func keyFiles(cfg config.Config) []keyFile {
	gen := cfg.KeysDir == ""
	dir := cfg.KeyDir()
	in := func(id string) keyFile { k := layoutKey(id); return keyFile{k, filepath.Join(dir, k.File), gen} }
	files := []keyFile{
		{layoutKey(keyset.SigningKey), cfg.SigningKeyFile, gen},
		{layoutKey(keyset.DataKeyID), cfg.DataKeyPath(), gen},
	}
	if cfg.AdminToken == "" && (cfg.Sandbox() || cfg.KeysDir != "") {
		files = append(files, in(keyset.AdminToken))
	}
	if cfg.OrganisationID == "" && (cfg.Sandbox() || cfg.KeysDir != "") {
		f := in(keyset.OrganisationID)
		f.create = false
		files = append(files, f)
	}
	if len(cfg.ITPEncryptionKeyFiles) > 0 {
		// Only the current key: the others are rotated-out keys that must
		// exist (loadITPEncryption) and need not agree across instances.
		files = append(files, keyFile{layoutKey(keyset.ITPEncryptionKey), cfg.ITPEncryptionKeyFiles[0], gen})
	}
	if !cfg.Sandbox() {
		return files
	}
	files = append(files, in(keyset.SandboxPartnerKey), in(keyset.SandboxITPKey), in(keyset.SandboxDirectoryKey))
	// Only the files cards.LoadKeys defaults to: configured ones are the operator's.
	if cfg.TAVKeyFile == "" {
		files = append(files, in(keyset.SandboxTAVKey))
	}
	if cfg.PEPKFile == "" {
		files = append(files, in(keyset.SandboxPEPKKey))
	}
	if cfg.NetworkSecretFile == "" {
		files = append(files, in(keyset.SandboxNetworkSecret))
	}
	if cfg.AppleRootCAFile == "" {
		files = append(files, in(keyset.SandboxAppleRootKey), in(keyset.SandboxAppleRoot))
	}
	if cfg.KeysDir != "" {
		// Without a key set the demo's credentials are the database's
		// (auth.EnsureDemo writes them into the data directory).
		files = append(files, in(keyset.SandboxDemoClient))
	}
	return files
}

// createKeys starts creating, each on its own goroutine, the key files this
// start will load and that do not exist yet: on a first sandbox start nine
// 2048-bit RSA keys, which generated one after another were most of the time
// to ready. The returned wait blocks until every key file is written (or
// failed); the wiring that follows then only reads them. keyfile's
// exclusive creation keeps concurrent starts on one data directory agreeing
// on one key each. With --keys-dir nothing is created: a missing file is an
// error naming it and `ponte keys init`.
func createKeys(cfg config.Config, files []keyFile, now time.Time) (wait func() error) {
	if cfg.KeysDir != "" {
		var errs []error
		for _, f := range files {
			if _, err := os.Stat(f.path); errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, keyset.MissingError{Key: f.key, Path: f.path, Dir: cfg.KeysDir})
			} else if err != nil {
				errs = append(errs, fmt.Errorf("app: the %s %s: %w", f.key.Name, f.path, err))
			}
		}
		err := errors.Join(errs...)
		return func() error { return err }
	}
	var wg sync.WaitGroup
	errs := make([]error, len(files))
	for i, f := range files {
		if !f.create || f.key.Kind == keyset.Certificate { // a certificate is written with its key
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = keyset.Generate(f.key, f.path, now)
		}()
	}
	return func() error {
		wg.Wait()
		return errors.Join(errs...)
	}
}

// verifyKeys fingerprints every key this start loaded (files, and the
// values given by --admin-token and --org-id) and checks them against the
// database (keyset.Verify): the first start records them, a later one with
// another key is refused, naming it. cfg is after organisationID.
func verifyKeys(ctx context.Context, db *store.DB, now time.Time, cfg config.Config, files []keyFile) error {
	var entries []keyset.Entry
	orgSource := "--org-id"
	for _, f := range files {
		if f.key.ID == keyset.OrganisationID {
			orgSource = f.path // fingerprinted by value below, as loaded
			continue
		}
		e, err := keyset.FingerprintFile(f.key, f.path)
		if err != nil {
			return err
		}
		if f.key.ID == keyset.ITPEncryptionKey {
			// The rotated-out keys the configuration still lists: a
			// database whose current key is one of them records the
			// rotation (config: --itp-encryption-key NEW,OLD).
			for _, path := range cfg.ITPEncryptionKeyFiles[1:] {
				old, err := keyset.FingerprintFile(f.key, path)
				if err != nil {
					return err
				}
				e.Previous = append(e.Previous, old.Fingerprint)
			}
		}
		entries = append(entries, e)
	}
	org, err := keyset.FingerprintValue(layoutKey(keyset.OrganisationID), orgSource, []byte(cfg.OrganisationID))
	if err != nil {
		return err
	}
	entries = append(entries, org)
	if cfg.AdminToken != "" {
		e, err := keyset.FingerprintValue(layoutKey(keyset.AdminToken), "--admin-token", []byte(cfg.AdminToken))
		if err != nil {
			return err
		}
		entries = append(entries, e)
	}
	return keyset.Verify(ctx, db, now, entries)
}

// ensureDemo makes sure the sandbox demo application exists and returns it
// with its secret: with a key set, under the credentials the set holds (so
// every instance logs in as the same client); otherwise under the data
// directory's credentials file, which it writes.
func ensureDemo(ctx context.Context, cfg config.Config, apps *auth.Applications) (*auth.Application, string, error) {
	if cfg.KeysDir == "" {
		return apps.EnsureDemo(ctx, filepath.Join(cfg.DataDir, layoutFile(keyset.SandboxDemoClient)))
	}
	path := filepath.Join(cfg.KeysDir, layoutFile(keyset.SandboxDemoClient))
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("app: the sandbox demo client credentials: %w", err)
	}
	var creds auth.DemoCredentials
	if err := json.Unmarshal(b, &creds); err != nil {
		return nil, "", fmt.Errorf("app: the sandbox demo client credentials %s: %w", path, err)
	}
	a, err := apps.EnsureDemoCredentials(ctx, creds)
	if err != nil {
		return nil, "", err
	}
	return a, creds.ClientSecret, nil
}

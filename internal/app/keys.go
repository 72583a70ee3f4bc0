package app

import (
	"errors"
	"path/filepath"
	"sync"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/cards"
	"github.com/ponte-ofb/ponte/internal/cards/mastercard"
	"github.com/ponte-ofb/ponte/internal/config"
)

// Sandbox key files in the data directory, besides the card ones (cards.Sandbox*File).
const (
	sandboxPartnerKeyFile = "sandbox-partner-key.pem" // the sandbox partner app's login tokens
	sandboxITPKeyFile     = "sandbox-itp-key.pem"     // Ponte-as-initiator at its own sandbox brand
)

// createKeys starts creating, each on its own goroutine, the RSA keys this
// start will load and that do not exist yet: on a first sandbox start seven
// 2048-bit keys, which generated one after another were most of the time to
// ready. The returned wait blocks until every key file is written (or failed);
// the wiring that follows then only reads them. Keys that exist are read
// and discarded here, cheaply; keyfile's exclusive creation keeps
// concurrent starts on one data directory agreeing on one key each.
func createKeys(cfg config.Config) (wait func() error) {
	jobs := []func() error{
		func() error { _, err := auth.LoadOrCreateKey(cfg.SigningKeyFile); return err },
	}
	if len(cfg.ITPEncryptionKeyFiles) > 0 {
		// Only the current initiator encryption key is created; the others
		// are rotated-out keys that must exist (loadITPEncryption).
		path := cfg.ITPEncryptionKeyFiles[0]
		jobs = append(jobs, func() error { _, err := auth.LoadOrCreateKey(path); return err })
	}
	if cfg.Sandbox() {
		for _, name := range []string{sandboxPartnerKeyFile, sandboxITPKeyFile, SandboxDirectoryKeyFile} {
			path := filepath.Join(cfg.DataDir, name)
			jobs = append(jobs, func() error { _, err := auth.LoadOrCreateKey(path); return err })
		}
		// Only the files cards.LoadKeys generates: configured keys are the operator's.
		if cfg.TAVKeyFile == "" {
			path := filepath.Join(cfg.DataDir, cards.SandboxTAVKeyFile)
			jobs = append(jobs, func() error { _, err := mastercard.LoadOrCreateRSAKey(path, 2048); return err })
		}
		if cfg.PEPKFile == "" {
			path := filepath.Join(cfg.DataDir, cards.SandboxPEPKPrivateFile)
			jobs = append(jobs, func() error { _, err := mastercard.LoadOrCreateRSAKey(path, 2048); return err })
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(jobs))
	for i, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = job()
		}()
	}
	return func() error {
		wg.Wait()
		return errors.Join(errs...)
	}
}

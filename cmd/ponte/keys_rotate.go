package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/keyset"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/vault"
)

// Key rotation (docs/keys.md, "Rotation"): a new key becomes current in the
// key set's files, the old one moves to the retired directory beside it,
// where instances keep verifying (signing key) or opening (data key) with
// it, and the database records the new fingerprint as current and the old
// as retired, so instances with either pass the start-up check.

// rotateFlags are the flags both rotation commands take.
type rotateFlags struct {
	cfg config.Config
	dir string
	// recordOnly records the key set's current key in the database without
	// rotating: the second half of a rotation whose recording failed.
	recordOnly bool
}

func newRotateCommand(usage, summary string, stdout, stderr io.Writer) (*command, *rotateFlags) {
	f := &rotateFlags{}
	c := newCommand(usage, summary, stdout, stderr)
	c.String(&f.dir, "dir", "DIR", "", "the key set directory ('ponte keys init'); default: --keys-dir, else the data directory")
	c.Bool(&f.recordOnly, "record-only", false, "only record the key set's current key as the database's current one\n(after a rotation whose recording failed)")
	c.Storage(&f.cfg)
	return c, f
}

// keyDir is the key set directory the command works on.
func (f *rotateFlags) keyDir() string {
	if f.dir != "" {
		return f.dir
	}
	return f.cfg.KeyDir()
}

// openRecorded opens the database whose fingerprints record the key set:
// --database-url, or the SQLite database of the data directory if there is
// one. nil when there is none (a key set not in use yet).
func openRecorded(ctx context.Context, cfg config.Config) (*store.DB, error) {
	if cfg.DatabaseURL == "" {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "ponte.db")); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	return store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir})
}

// checkRecorded refuses to rotate a key that is not the database's current
// one: rotating another key set's copy would record a key no instance has.
func checkRecorded(ctx context.Context, db *store.DB, e keyset.Entry) error {
	records, err := keyset.Recorded(ctx, db)
	if err != nil {
		return err
	}
	for _, r := range records {
		if r.ID == e.ID && r.Current && r.Fingerprint != e.Fingerprint {
			return fmt.Errorf("the %s in %s (fingerprint %s) is not the database's current one (%s): rotate the key set the instances use",
				e.Name, e.Source, e.Fingerprint, r.Fingerprint)
		}
	}
	return nil
}

// rotateKey runs one rotation: fingerprint the current file, check it
// against the database, rotate the files, record the new fingerprint. With
// --record-only it records the current file's fingerprint and stops.
func rotateKey(ctx context.Context, f *rotateFlags, id, path string, rotate func() error) (old, fresh keyset.Entry, recorded bool, err error) {
	k, _ := keyset.Lookup(id)
	if old, err = keyset.FingerprintFile(k, path); err != nil {
		return old, fresh, false, err
	}
	db, err := openRecorded(ctx, f.cfg)
	if err != nil {
		return old, fresh, false, err
	}
	if db != nil {
		defer db.Close()
	}
	if f.recordOnly {
		if db == nil {
			return old, old, false, errors.New("--record-only needs the database (--database-url, or a data directory with ponte.db)")
		}
		return old, old, true, keyset.Rotate(ctx, db, time.Now(), id, old.Fingerprint)
	}
	if db != nil {
		if err := checkRecorded(ctx, db, old); err != nil {
			return old, fresh, false, err
		}
	}
	if err := rotate(); err != nil {
		return old, fresh, false, err
	}
	if fresh, err = keyset.FingerprintFile(k, path); err != nil {
		return old, fresh, false, err
	}
	if db == nil {
		return old, fresh, false, nil
	}
	if err := keyset.Rotate(ctx, db, time.Now(), id, fresh.Fingerprint); err != nil {
		return old, fresh, false, fmt.Errorf("the new key is in the key set but the database did not record it (instances with the new key set are refused at start until it does): "+
			"run the command again with --record-only once the database is reachable: %w", err)
	}
	return old, fresh, true, nil
}

func recordedLine(recorded bool) string {
	if recorded {
		return "recorded in the database: the new fingerprint current, the old one retired"
	}
	return "no database given (--database-url) or found in the data directory: nothing recorded"
}

func keysRotateSigning(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, f := newRotateCommand("ponte keys rotate-signing-key [--dir DIR] [--database-url URL] [flags]",
		"Makes a new token-signing key current in the key set and moves the old one to\n"+
			"signing-key.retired/<kid>.pem, where it keeps verifying and stays published in\n"+
			"the JWKS until removed; records both fingerprints in the database.", stdout, stderr)
	if err := c.Parse(args); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	path := filepath.Join(f.keyDir(), config.SigningKeyFileName)
	var rotated *auth.SigningKey
	old, _, recorded, err := rotateKey(ctx, f, keyset.SigningKey, path, func() error {
		var err error
		rotated, err = auth.RotateSigningKey(path)
		return err
	})
	if err != nil {
		return fmt.Errorf("keys rotate-signing-key: %w", err)
	}
	if f.recordOnly {
		fmt.Fprintf(stdout, "token signing key %s recorded as the database's current one (fingerprint %s)\n", path, old.Fingerprint)
		return nil
	}
	retired := rotated.Retired[0]
	fmt.Fprintf(stdout, `token signing key rotated in %s
new current:  kid %s (%s)
retired:      kid %s (%s)
database:     %s (old fingerprint %s)

Next:
 1. Copy the key set to every instance (the new %s and the
    %s directory).
 2. Restart the instances one at a time. Each signs with the new key from its
    restart on, and every instance verifies tokens of both keys and publishes
    both in its JWKS; an instance not yet restarted finds the new key in its
    key set the first time it sees a token signed with it.
 3. Once every instance runs with the new key and the longest-lived token the
    old key signed has expired (access tokens: --token-ttl, 5 minutes by
    default; ID tokens: %d seconds), remove %s.
`, f.keyDir(), rotated.KeyID, path, retired.KeyID, filepath.Join(auth.RetiredDir(path), retired.KeyID+".pem"),
		recordedLine(recorded), old.Fingerprint, config.SigningKeyFileName, filepath.Base(auth.RetiredDir(path)),
		oidc.IDTokenLifetime, filepath.Join(auth.RetiredDir(path), retired.KeyID+".pem"))
	return nil
}

func keysRotateData(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, f := newRotateCommand("ponte keys rotate-data-key [--dir DIR] [--database-url URL] [flags]",
		"Makes a new data key current in the key set and moves the old one to\n"+
			"data-key.retired/<key id>.key, where it keeps opening what it sealed until\n"+
			"'ponte keys reseal' has re-sealed everything; records both fingerprints in the database.", stdout, stderr)
	if err := c.Parse(args); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	path := dataKeyPath(f)
	var rotated *vault.Vault
	old, _, recorded, err := rotateKey(ctx, f, keyset.DataKeyID, path, func() error {
		var err error
		rotated, err = vault.Rotate(path)
		return err
	})
	if err != nil {
		return fmt.Errorf("keys rotate-data-key: %w", err)
	}
	if f.recordOnly {
		fmt.Fprintf(stdout, "data key %s recorded as the database's current one (fingerprint %s)\n", path, old.Fingerprint)
		return nil
	}
	ids := rotated.RetiredKeyIDs()
	fmt.Fprintf(stdout, `data key rotated in %s
new current:  key id %s (%s)
retired:      key ids %s (%s)
database:     %s (old fingerprint %s)
lookup hashes (card numbers) keep their key: no row needs re-hashing.

Next:
 1. Copy the key set to every instance (the new %s and the
    %s directory) and restart them one at a time: each seals
    with the new key from its restart on and opens values of every key.
 2. Once every instance is restarted, run 'ponte keys reseal' with the same
    flags: it re-seals every sealed value under the new key.
 3. Then remove %s from every instance's key set.
`, filepath.Dir(path), rotated.KeyID(), path, strings.Join(ids, ", "), vault.RetiredDir(path),
		recordedLine(recorded), old.Fingerprint, filepath.Base(path), filepath.Base(vault.RetiredDir(path)), vault.RetiredDir(path))
	return nil
}

// dataKeyPath is --data-key, else data.key in the key set directory.
func dataKeyPath(f *rotateFlags) string {
	if f.cfg.DataKeyFile != "" {
		return f.cfg.DataKeyFile
	}
	return filepath.Join(f.keyDir(), config.DataKeyFileName)
}

// sealedColumn is a database column holding values sealed with the data key:
// its table, the columns of its primary key, and the context a row's key
// gives (the one its package seals it with).
type sealedColumn struct {
	table, column string
	key           []string
	context       func(key []string) string
}

// sealedColumns are every column the data key seals. The contexts are those
// of the packages that seal them; TestCLIKeysReseal opens each value through
// its package after a reseal, so a change there fails it.
var sealedColumns = []sealedColumn{
	{"cards", "pan_sealed", []string{"id"}, func(k []string) string { return "card-pan:" + k[0] }},
	{"wallet_payloads", "response", []string{"card_id", "wallet", "nonce"},
		func(k []string) string { return "wallet-payload:" + k[0] + ":" + k[1] + ":" + k[2] }},
	{"webhook_subscriptions", "secret_sealed", []string{"id"}, func(k []string) string { return "webhook-secret:" + k[0] }},
	{"webhook_subscriptions", "previous_secret_sealed", []string{"id"}, func(k []string) string { return "webhook-secret:" + k[0] }},
	{"itp_grants", "access_token", []string{"authorization_id"}, func(k []string) string { return "itp-grant:" + k[0] }},
	{"itp_grants", "refresh_token", []string{"authorization_id"}, func(k []string) string { return "itp-grant:" + k[0] }},
	{"itp_brand_keys", "sealed_key", []string{"brand_id"}, func(k []string) string { return itp.BrandKeyContext(k[0]) }},
}

// resealCount is what a reseal did to one column.
type resealCount struct {
	seen, resealed, current int
	unreadable              []string // keys of values no key of the set opens
}

func keysReseal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := &rotateFlags{}
	c := newCommand("ponte keys reseal [--dir DIR] [--database-url URL] [flags]",
		"Re-seals every value sealed with the data key (card numbers, wallet payloads,\n"+
			"webhook secrets, initiator tokens, brands' signing keys) under the current data\n"+
			"key, in batches; values already under it are left alone, so it can be run again\n"+
			"or resumed. Afterwards the retired data keys can be removed.", stdout, stderr)
	c.String(&f.dir, "dir", "DIR", "", "the key set directory ('ponte keys init'); default: --keys-dir, else the data directory")
	batch := 500
	c.Int(&batch, "batch", "N", batch, "values re-sealed per transaction")
	forget := false
	c.Bool(&forget, "forget-retired", false, "once every value is re-sealed, make the database forget the retired data keys'\n"+
		"fingerprints, so an instance started with an old key set is refused")
	c.Storage(&f.cfg)
	if err := c.Parse(args); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	if batch < 1 || batch > 10000 {
		return c.Fail("--batch must be between 1 and 10000")
	}
	vlt, err := vault.Read(dataKeyPath(f))
	if err != nil {
		return fmt.Errorf("keys reseal: %w", err)
	}
	db, err := store.Open(ctx, store.Options{URL: f.cfg.DatabaseURL, DataDir: f.cfg.DataDir})
	if err != nil {
		return fmt.Errorf("keys reseal: %w", err)
	}
	defer db.Close()
	fmt.Fprintf(stdout, "re-sealing under data key %s (retired keys loaded: %s)\n", vlt.KeyID(), orNone(strings.Join(vlt.RetiredKeyIDs(), ", ")))
	unreadable := 0
	for _, col := range sealedColumns {
		n, err := resealColumn(ctx, db, vlt, col, batch)
		if err != nil {
			return fmt.Errorf("keys reseal: %s.%s: %w", col.table, col.column, err)
		}
		fmt.Fprintf(stdout, "%-45s %6d values: %6d re-sealed, %6d already current, %d unreadable\n",
			col.table+"."+col.column, n.seen, n.resealed, n.current, len(n.unreadable))
		for i, k := range n.unreadable {
			if i == 10 {
				fmt.Fprintf(stdout, "  … and %d more\n", len(n.unreadable)-10)
				break
			}
			fmt.Fprintf(stdout, "  unreadable: %s\n", k)
		}
		unreadable += len(n.unreadable)
	}
	if unreadable > 0 {
		return fmt.Errorf("keys reseal: %d values open with no key of the set (sealed under a key that is not in %s or its retired directory): keep the retired keys until they are accounted for", unreadable, dataKeyPath(f))
	}
	fmt.Fprintf(stdout, "every sealed value is under data key %s: once every instance runs with it, %s can be removed\n", vlt.KeyID(), vault.RetiredDir(dataKeyPath(f)))
	if !forget {
		return nil
	}
	records, err := keyset.Recorded(ctx, db)
	if err != nil {
		return fmt.Errorf("keys reseal: %w", err)
	}
	for _, r := range records {
		if r.ID != keyset.DataKeyID || r.Current {
			continue
		}
		if err := keyset.Forget(ctx, db, r.ID, r.Fingerprint); err != nil {
			return fmt.Errorf("keys reseal: %w", err)
		}
		fmt.Fprintf(stdout, "forgot the retired data key fingerprint %s: an instance started with it is refused\n", r.Fingerprint)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// resealColumn walks col's rows in primary key order, batch rows per
// transaction, and rewrites every value not sealed under the current key.
// The update is conditional on the value read, so a value an instance
// rewrote meanwhile is left as that instance wrote it (a later run picks it
// up if it is still under an old key).
func resealColumn(ctx context.Context, db *store.DB, vlt *vault.Vault, col sealedColumn, batch int) (resealCount, error) {
	var (
		n     resealCount
		after []string // the last key of the previous batch
	)
	keys := strings.Join(col.key, ", ")
	for {
		where := col.column + " IS NOT NULL AND " + col.column + " <> ''"
		args := []any{}
		if after != nil {
			ph := make([]string, len(after))
			for i, v := range after {
				args = append(args, v)
				ph[i] = fmt.Sprintf("$%d", i+1)
			}
			where += " AND (" + keys + ") > (" + strings.Join(ph, ", ") + ")"
		}
		q := fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s ORDER BY %s LIMIT %d", keys, col.column, col.table, where, keys, batch)
		var (
			rows int
			got  resealCount // this batch's, added to n once it commits
			last []string
		)
		err := db.Write(ctx, func(tx *sql.Tx) error {
			rows, got, last = 0, resealCount{}, nil // a retried transaction starts over
			r, err := tx.QueryContext(ctx, q, args...)
			if err != nil {
				return err
			}
			type row struct {
				key    []string
				sealed string
			}
			var batchRows []row
			for r.Next() {
				k := make([]string, len(col.key))
				dest := make([]any, len(k)+1)
				for i := range k {
					dest[i] = &k[i]
				}
				var sealed string
				dest[len(k)] = &sealed
				if err := r.Scan(dest...); err != nil {
					r.Close()
					return err
				}
				batchRows = append(batchRows, row{k, sealed})
			}
			r.Close()
			if err := r.Err(); err != nil {
				return err
			}
			rows = len(batchRows)
			update := "UPDATE " + col.table + " SET " + col.column + " = $1 WHERE " + col.column + " = $2"
			for i, k := range col.key {
				update += fmt.Sprintf(" AND %s = $%d", k, i+3)
			}
			for _, b := range batchRows {
				got.seen++
				out, changed, err := vlt.Reseal(b.sealed, col.context(b.key))
				switch {
				case errors.Is(err, vault.ErrOpen):
					got.unreadable = append(got.unreadable, strings.Join(b.key, "/"))
					continue
				case err != nil:
					return err
				case !changed:
					got.current++
					continue
				}
				uargs := []any{out, b.sealed}
				for _, v := range b.key {
					uargs = append(uargs, v)
				}
				if _, err := tx.ExecContext(ctx, update, uargs...); err != nil {
					return err
				}
				got.resealed++
			}
			if rows > 0 {
				last = batchRows[rows-1].key
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		n.seen, n.resealed, n.current = n.seen+got.seen, n.resealed+got.resealed, n.current+got.current
		n.unreadable = append(n.unreadable, got.unreadable...)
		after = last
		if rows < batch {
			return n, nil
		}
	}
}

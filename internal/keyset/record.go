package keyset

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/store"
)

// Record is what the database remembers of one fingerprint of a key
// (table key_fingerprints).
type Record struct {
	ID          string // the key's id (Key.ID)
	Fingerprint string
	Current     bool
	CreatedAt   time.Time
	RetiredAt   time.Time // zero while current
}

// Verify checks every loaded key against the database: a key the database
// has no fingerprint for yet is recorded as current (its first use); a key
// whose fingerprint is the recorded current one passes, as does, for a
// rotatable key, a retired one (an instance not yet restarted after a
// rotation). Any other key is refused with a *MismatchError naming it; all
// of them are reported together. Instances starting at once on an empty
// table agree: the first insert of a name wins and the others compare with
// it.
func Verify(ctx context.Context, db *store.DB, now time.Time, entries []Entry) error {
	var errs []error
	err := db.Write(ctx, func(tx *sql.Tx) error {
		errs = errs[:0] // a retried transaction starts over
		for _, e := range entries {
			if !e.Recorded {
				continue
			}
			// Conflicts on the primary key (already known) or on the one
			// current row per name (another key recorded first): nothing.
			if _, err := tx.ExecContext(ctx, `INSERT INTO key_fingerprints (name, fingerprint, current, created_at)
				VALUES ($1, $2, 1, $3) ON CONFLICT DO NOTHING`, e.ID, e.Fingerprint, now.UnixMilli()); err != nil {
				return fmt.Errorf("keyset: record the %s's fingerprint: %w", e.Name, err)
			}
			var current string
			var known int
			err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(CASE WHEN current = 1 THEN fingerprint END), ''),
				COUNT(CASE WHEN fingerprint = $2 THEN 1 END) FROM key_fingerprints WHERE name = $1`, e.ID, e.Fingerprint).Scan(&current, &known)
			if err != nil {
				return fmt.Errorf("keyset: read the %s's fingerprints: %w", e.Name, err)
			}
			if current == e.Fingerprint || (e.Rotatable && known > 0) {
				continue
			}
			if e.Rotatable && slices.Contains(e.Previous, current) {
				if err := rotate(ctx, tx, now, e.ID, e.Fingerprint); err != nil {
					return fmt.Errorf("keyset: record the rotation of the %s: %w", e.Name, err)
				}
				continue
			}
			errs = append(errs, &MismatchError{Entry: e, Current: current})
		}
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}

// MismatchError is a loaded key the database was not used with.
type MismatchError struct {
	Entry
	Current string // the database's current fingerprint of the key
}

func (e *MismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "keyset: the %s (%s, fingerprint %s) is not the one this database was used with (its current fingerprint is %s): "+
		"every instance of one database must use the same key set, so this instance refuses to start; "+
		"give it the key set the other instances use (--keys-dir, or the same %s file)", e.Name, e.Source, e.Fingerprint, e.Current, e.File)
	if cmd := rotateCommand(e.ID); cmd != "" {
		fmt.Fprintf(&b, ", or, to replace the key on purpose, make it current with '%s' (docs/keys.md)", cmd)
	} else {
		b.WriteString("; 'ponte keys show --dir DIR --database-url URL' compares a key set with the database (docs/keys.md)")
	}
	return b.String()
}

// rotateCommand is the command that replaces key id, if any.
func rotateCommand(id string) string {
	switch id {
	case SigningKey:
		return "ponte keys rotate-signing-key"
	case DataKeyID:
		return "ponte keys rotate-data-key"
	}
	return ""
}

// Rotate makes fingerprint the current one of key id and retires the
// current one, in one transaction (the rotation commands call it once the
// new key is in place). Rotating to a retired fingerprint makes it current
// again; rotating to the current one changes nothing.
func Rotate(ctx context.Context, db *store.DB, now time.Time, id, fingerprint string) error {
	if _, ok := Lookup(id); !ok {
		return fmt.Errorf("keyset: no key %q in the key set", id)
	}
	err := db.Write(ctx, func(tx *sql.Tx) error { return rotate(ctx, tx, now, id, fingerprint) })
	if err != nil {
		return fmt.Errorf("keyset: rotate %s: %w", id, err)
	}
	return nil
}

func rotate(ctx context.Context, tx *sql.Tx, now time.Time, id, fingerprint string) error {
	// Retired first: one current row per name is a unique index.
	if _, err := tx.ExecContext(ctx, `UPDATE key_fingerprints SET current = 0, retired_at = $3
		WHERE name = $1 AND current = 1 AND fingerprint <> $2`, id, fingerprint, now.UnixMilli()); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO key_fingerprints (name, fingerprint, current, created_at) VALUES ($1, $2, 1, $3)
		ON CONFLICT (name, fingerprint) DO UPDATE SET current = 1, retired_at = NULL`, id, fingerprint, now.UnixMilli())
	return err
}

// Forget removes a retired fingerprint of key id (once nothing the old key
// signed or sealed is left, e.g. after `ponte keys reseal`): an instance
// still holding that key is refused from then on. The current one stays.
func Forget(ctx context.Context, db *store.DB, id, fingerprint string) error {
	err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM key_fingerprints WHERE name = $1 AND fingerprint = $2 AND current = 0`, id, fingerprint)
		return err
	})
	if err != nil {
		return fmt.Errorf("keyset: forget a fingerprint of %s: %w", id, err)
	}
	return nil
}

// Recorded lists every fingerprint the database knows, by key id, the
// current one of each first, then the retired ones, newest first.
func Recorded(ctx context.Context, db *store.DB) ([]Record, error) {
	rows, err := db.Read().QueryContext(ctx, `SELECT name, fingerprint, current, created_at, retired_at FROM key_fingerprints
		ORDER BY name, current DESC, created_at DESC, fingerprint`)
	if err != nil {
		return nil, fmt.Errorf("keyset: read fingerprints: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var (
			r       Record
			current int
			created int64
			retired sql.NullInt64
		)
		if err := rows.Scan(&r.ID, &r.Fingerprint, &current, &created, &retired); err != nil {
			return nil, fmt.Errorf("keyset: read fingerprints: %w", err)
		}
		r.Current, r.CreatedAt = current == 1, time.UnixMilli(created).UTC()
		if retired.Valid {
			r.RetiredAt = time.UnixMilli(retired.Int64).UTC()
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("keyset: read fingerprints: %w", err)
	}
	return out, nil
}

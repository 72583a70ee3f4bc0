package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

func TestMigrationsAreIdempotent(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			u := e.URL(t)
			storetest.Open(t, u).Close()
			db := storetest.Open(t, u) // second open: nothing to apply, nothing breaks
			if err := db.Ping(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestWriteIsolation: many concurrent writes, some failing, some panicking.
// Exactly the successful ones are kept; a failure never takes a neighbour down
// (on SQLite they share a group commit).
func TestWriteIsolation(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`CREATE TABLE write_test (id INTEGER PRIMARY KEY, note TEXT NOT NULL)`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		errBoom := errors.New("boom")
		const n = 200
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = db.Write(ctx, func(tx *sql.Tx) error {
					if _, err := tx.Exec(`INSERT INTO write_test (id, note) VALUES ($1, $2)`, i, "first"); err != nil {
						return err
					}
					// Two statements per unit: a failure after the first must undo it.
					if _, err := tx.Exec(`UPDATE write_test SET note = $1 WHERE id = $2`, fmt.Sprint("unit-", i), i); err != nil {
						return err
					}
					switch i % 5 {
					case 1:
						return errBoom
					case 2:
						panic("unit panicked")
					}
					return nil
				})
			}()
		}
		wg.Wait()
		want := 0
		for i, err := range errs {
			switch i % 5 {
			case 1:
				if !errors.Is(err, errBoom) {
					t.Errorf("unit %d: %v, want boom", i, err)
				}
			case 2:
				if !errors.Is(err, store.ErrPanic) {
					t.Errorf("unit %d: %v, want ErrPanic", i, err)
				}
			default:
				want++
				if err != nil {
					t.Errorf("unit %d: %v", i, err)
				}
			}
		}
		rows, err := db.Read().Query(`SELECT id, note FROM write_test ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := 0
		for rows.Next() {
			var id int
			var note string
			if err := rows.Scan(&id, &note); err != nil {
				t.Fatal(err)
			}
			if id%5 == 1 || id%5 == 2 || note != fmt.Sprint("unit-", id) {
				t.Errorf("kept row %d %q", id, note)
			}
			got++
		}
		if got != want {
			t.Errorf("%d rows kept, want %d", got, want)
		}
	})
}

func TestUniqueViolationAndClose(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		create := func(tx *sql.Tx) error {
			_, err := tx.Exec(`CREATE TABLE uniq_test (k TEXT PRIMARY KEY)`)
			return err
		}
		insert := func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO uniq_test (k) VALUES ('a')`)
			return err
		}
		if err := db.Write(ctx, create); err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, insert); err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, insert); !store.IsUniqueViolation(err) {
			t.Errorf("duplicate insert: %v, want a unique violation", err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, insert); err == nil {
			t.Error("write after close succeeded")
		}
	})
}

func TestOpenRejectsUnknownScheme(t *testing.T) {
	t.Parallel()
	_, err := store.Open(context.Background(), store.Options{URL: "mysql://x"})
	if err == nil {
		t.Fatal("mysql URL accepted")
	}
}

// TestSQLiteFilesPrivate: the database, its -wal and its -shm hold personal
// data in clear, so a fresh database is created 0600 even in a 0755
// directory with the usual 0022 umask (SQLite's own default is 0644), and
// the -wal and -shm files take the main file's mode.
func TestSQLiteFilesPrivate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ponte.db")
	db := storetest.Open(t, "sqlite:"+path)
	// A write makes sure the WAL and the shared-memory index exist.
	if err := db.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`CREATE TABLE private_test (id INTEGER PRIMARY KEY)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", filepath.Base(name), perm)
		}
	}
}

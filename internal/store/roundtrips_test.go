package store_test

import (
	"context"
	"database/sql"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestRoundTripCounter shows the counter sees what each way of writing costs
// on PostgreSQL: a database/sql transaction pays BEGIN, each statement and
// COMMIT; a native batch is one round trip however many statements it holds.
func TestRoundTripCounter(t *testing.T) {
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	db := storetest.Open(t, storetest.FreshSchema(t, base))
	if db.Pool() == nil {
		t.Fatal("Pool() is nil on PostgreSQL")
	}
	bg := context.Background()
	if _, err := db.Pool().Exec(bg, `CREATE TABLE rt (id TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}

	ctx, n := store.CountRoundTrips(bg)
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO rt (id) VALUES ($1)`, "a"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO rt (id) VALUES ($1)`, "b")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := n.N(); got < 4 {
		t.Errorf("a database/sql transaction of two statements counted %d round trips, want at least 4 (BEGIN, 2, COMMIT)", got)
	}

	ctx, n = store.CountRoundTrips(bg)
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO rt (id) VALUES ($1)`, "c")
	b.Queue(`INSERT INTO rt (id) VALUES ($1)`, "d")
	if err := db.Pool().SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if got := n.N(); got != 1 {
		t.Errorf("a batch of two statements counted %d round trips, want 1", got)
	}

	var count int
	if err := db.Read().QueryRowContext(bg, `SELECT count(*) FROM rt`).Scan(&count); err != nil || count != 4 {
		t.Fatalf("rows = %d, %v; want 4", count, err)
	}

	// SQLite has no native pool.
	lite := storetest.Open(t, "sqlite:"+t.TempDir()+"/p.db")
	if lite.Pool() != nil {
		t.Error("Pool() on SQLite is not nil")
	}
}

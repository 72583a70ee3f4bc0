package store_test

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestCloseJoinsBackgroundPrepare: on PostgreSQL, TxStmt's first use of a
// query also prepares it on the pool in the background. Here that
// preparation blocks (the transaction holds an exclusive lock on the table
// the query reads); Close must cancel it and wait for it, leaving no
// goroutine behind.
func TestCloseJoinsBackgroundPrepare(t *testing.T) {
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip(storetest.EnvVar + " is unset: the background preparation is PostgreSQL's")
	}
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{URL: storetest.FreshSchema(t, base)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE locked (id INTEGER PRIMARY KEY)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_ = db.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `LOCK TABLE locked IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
		before := goleak.IgnoreCurrent()
		st, err := db.TxStmt(ctx, tx, `SELECT COUNT(*) FROM locked`)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := st.QueryRowContext(ctx).Scan(&n); err != nil {
			t.Fatal(err)
		}
		closed := make(chan error, 1)
		go func() { closed <- db.Close() }()
		select {
		case <-closed:
		case <-time.After(20 * time.Second): // a safeguard, not a measure
			t.Fatal("Close did not return while a transaction was open")
		}
		// The lock is still held: a preparation Close did not stop would
		// still be waiting for it. pgx closes the cancelled preparation's
		// connection in a goroutine of its own (its cleanup, bounded by
		// pgx, not ours to join).
		goleak.VerifyNone(t, before, goleak.IgnoreAnyFunction("github.com/jackc/pgx/v5/pgconn.(*PgConn).asyncClose.func1"))
		return nil
	})
}

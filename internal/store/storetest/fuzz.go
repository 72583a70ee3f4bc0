package storetest

import (
	"context"
	"database/sql"
	"testing"

	"github.com/ponte-ofb/ponte/internal/store"
)

// DB is an open test database and the engine it runs on.
type DB struct {
	Engine string
	*store.DB
}

// OpenEach opens one freshly migrated database per engine, closed when tb
// ends. A fuzz target opens them once and stores each accepted input in
// every one, so its seed corpus (what plain `go test` runs, and CI) reaches
// PostgreSQL too when PONTE_TEST_DATABASE_URL is set.
func OpenEach(tb testing.TB) []DB {
	tb.Helper()
	var out []DB
	for _, e := range Engines() {
		out = append(out, DB{Engine: e.Name, DB: Open(tb, e.URL(tb))})
	}
	return out
}

// AddApplication inserts a partner application row with id (and client_id)
// id, for tests that store records owned by one.
func AddApplication(tb testing.TB, db *store.DB, id string) {
	tb.Helper()
	err := db.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO applications (id, client_id, name, company_key, scopes, secret_hash, created_at, updated_at)
			VALUES ($1, $1, 'n', 'K', 's', 'h', 0, 0)`, id)
		return err
	})
	if err != nil {
		tb.Fatalf("add application %s: %v", id, err)
	}
}

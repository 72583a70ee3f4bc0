// Package storetest runs a test against every database engine: SQLite always,
// PostgreSQL when PONTE_TEST_DATABASE_URL is set (each test in its own schema).
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/ponte-ofb/ponte/internal/store"
)

// EnvVar names the PostgreSQL URL that enables PostgreSQL tests.
const EnvVar = "PONTE_TEST_DATABASE_URL"

// Engine is a way to open a fresh database for one test.
type Engine struct {
	Name string
	// URL returns a database URL for a fresh, empty database that lives until the test ends.
	URL func(t testing.TB) string
}

// Engines lists the engines available to this test run.
func Engines() []Engine {
	engines := []Engine{{Name: "sqlite", URL: func(t testing.TB) string {
		return "sqlite:" + filepath.Join(t.TempDir(), "ponte.db")
	}}}
	if base := os.Getenv(EnvVar); base != "" {
		engines = append(engines, Engine{Name: "postgres", URL: func(t testing.TB) string { return FreshSchema(t, base) }})
	}
	return engines
}

// Each runs fn once per engine as a subtest, with a freshly migrated database.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, e := range Engines() {
		t.Run(e.Name, func(t *testing.T) {
			fn(t, Open(t, e.URL(t)))
		})
	}
}

// Open opens and migrates the database at rawURL and closes it when the test ends.
func Open(t testing.TB, rawURL string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Options{URL: rawURL})
	if err != nil {
		t.Fatalf("open %s: %v", rawURL, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// FreshSchema creates a schema of its own in the PostgreSQL database at base and
// returns a URL whose search_path points at it; the schema is dropped after the test.
func FreshSchema(t testing.TB, base string) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "ponte_test_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", EnvVar, err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema (is PostgreSQL running at %s?): %v", EnvVar, err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer admin.Close()
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvVar, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

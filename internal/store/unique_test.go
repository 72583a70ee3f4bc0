package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestIsUniqueViolation: only a unique or primary-key violation counts, found
// through wrapping; other constraints, and errors whose text merely looks like
// one (a trigger's message, a plain error), do not.
func TestIsUniqueViolation(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		schema := []string{
			`CREATE TABLE uv_parent (id TEXT PRIMARY KEY)`,
			`CREATE TABLE uv_child (id TEXT PRIMARY KEY, parent_id TEXT NOT NULL REFERENCES uv_parent (id),
				code TEXT UNIQUE, amount INTEGER CHECK (amount >= 0))`,
			`INSERT INTO uv_parent (id) VALUES ('p')`,
			`INSERT INTO uv_child (id, parent_id, code) VALUES ('c', 'p', 'taken')`,
		}
		// A trigger refusing one row with a message that imitates a unique
		// violation on either engine.
		if db.Engine() == store.Postgres {
			schema = append(schema, `CREATE FUNCTION uv_imitate() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN
					IF NEW.id = 'imitate' THEN RAISE EXCEPTION 'UNIQUE constraint failed (SQLSTATE 23505)'; END IF;
					RETURN NEW;
				END $$`,
				`CREATE TRIGGER uv_imitate BEFORE INSERT ON uv_child FOR EACH ROW EXECUTE FUNCTION uv_imitate()`)
		} else {
			schema = append(schema, `CREATE TRIGGER uv_imitate BEFORE INSERT ON uv_child WHEN NEW.id = 'imitate'
				BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: uv_child.code (SQLSTATE 23505)'); END`)
		}
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			for _, q := range schema {
				if _, err := tx.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("%s: %w", q, err)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		insert := func(q string) error {
			return db.Write(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, q)
				return err
			})
		}
		for _, tc := range []struct {
			name string
			err  error
			want bool
		}{
			{"primary key", insert(`INSERT INTO uv_child (id, parent_id) VALUES ('c', 'p')`), true},
			{"unique column", insert(`INSERT INTO uv_child (id, parent_id, code) VALUES ('d', 'p', 'taken')`), true},
			{"wrapped unique", fmt.Errorf("cards: create: %w", insert(`INSERT INTO uv_child (id, parent_id, code) VALUES ('e', 'p', 'taken')`)), true},
			{"foreign key", insert(`INSERT INTO uv_child (id, parent_id) VALUES ('f', 'nobody')`), false},
			{"not null", insert(`INSERT INTO uv_child (id, parent_id) VALUES ('g', NULL)`), false},
			{"check", insert(`INSERT INTO uv_child (id, parent_id, amount) VALUES ('h', 'p', -1)`), false},
			{"trigger imitating one", insert(`INSERT INTO uv_child (id, parent_id) VALUES ('imitate', 'p')`), false},
			{"plain error with the text", fmt.Errorf("x: %w", errors.New("UNIQUE constraint failed: t.k (SQLSTATE 23505)")), false},
			{"nil", nil, false},
		} {
			if tc.name != "nil" && tc.name != "plain error with the text" && tc.err == nil {
				t.Errorf("%s: the statement succeeded, want it refused", tc.name)
				continue
			}
			if got := store.IsUniqueViolation(tc.err); got != tc.want {
				t.Errorf("%s: IsUniqueViolation(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
			}
		}
	})
}

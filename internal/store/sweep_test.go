package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

func TestSweepSteps(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `CREATE TABLE sweep_rows (id INTEGER PRIMARY KEY)`); err != nil {
				return err
			}
			for i := range 7 {
				if _, err := tx.ExecContext(ctx, `INSERT INTO sweep_rows (id) VALUES ($1)`, i); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		del := func(tx *sql.Tx, limit int) (int64, error) {
			res, err := tx.ExecContext(ctx, `DELETE FROM sweep_rows WHERE id IN (SELECT id FROM sweep_rows ORDER BY id LIMIT $1)`, limit)
			if err != nil {
				return 0, err
			}
			return res.RowsAffected()
		}
		var steps []int64
		n, err := db.Sweep(ctx, 3, func(tx *sql.Tx, limit int) (int64, error) {
			n, err := del(tx, limit)
			steps = append(steps, n)
			return n, err
		})
		if err != nil || n != 7 || len(steps) != 3 {
			t.Fatalf("Sweep = %d, %v in steps %v; want 7 in steps of 3, 3, 1", n, err, steps)
		}

		// A failing step rolls back alone; the total counts the steps committed before it.
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO sweep_rows (id) VALUES (1), (2), (3), (4)`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		calls := 0
		n, err = db.Sweep(ctx, 2, func(tx *sql.Tx, limit int) (int64, error) {
			calls++
			n, err := del(tx, limit)
			if calls == 2 {
				return n, boom
			}
			return n, err
		})
		if !errors.Is(err, boom) || n != 2 {
			t.Fatalf("Sweep with a failing second step = %d, %v; want 2, boom", n, err)
		}
		var left int
		if err := db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM sweep_rows`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 2 {
			t.Errorf("%d rows left, want 2 (the failed step's deletes rolled back)", left)
		}
	})
}

package jobs

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/lifecycle"
	"github.com/ponte-ofb/ponte/internal/lifecycle/lifecycletest"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

var _ lifecycle.Worker = (*Client)(nil)

func TestClientStartStopStress(t *testing.T) {
	// Not parallel: Stress checks every goroutine of the process for leaks.
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clk := clock.NewFake(epoch)
		c := newClient(db, clk, "w1")
		c.Register(testKind, func(context.Context, *Job) error { return nil }, nil)
		for range 20 {
			enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{}})
		}
		lifecycletest.Stress(t, c)
	})
}

// TestPruneInChunks prunes more than one sweep chunk of finished jobs: all of
// them go, unfinished and recent ones stay, and on PostgreSQL (where a
// trigger can see transaction ids) no transaction deletes more than
// store.SweepChunk rows.
func TestPruneInChunks(t *testing.T) {
	t.Parallel()
	const finished = 2*store.SweepChunk + 500
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(epoch)
		c := newClient(db, clk, "w1")
		old, recent := clk.Now().Add(-48*time.Hour).UnixMilli(), clk.Now().UnixMilli()
		if db.Engine() == store.Postgres {
			for _, q := range []string{
				`CREATE TABLE prune_log (xid BIGINT NOT NULL)`,
				`CREATE FUNCTION prune_log_row() RETURNS trigger LANGUAGE plpgsql AS $$
					BEGIN INSERT INTO prune_log VALUES (txid_current()); RETURN OLD; END $$`,
				`CREATE TRIGGER prune_log AFTER DELETE ON jobs FOR EACH ROW EXECUTE FUNCTION prune_log_row()`,
			} {
				if _, err := db.Read().ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
		}
		err := db.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
				INSERT INTO jobs (id, kind, payload, state, attempt, max_attempts, run_at, created_at, updated_at, finished_at)
				SELECT 'old-' || i, $2, '{}', $3, 1, 1, $4, $4, $4, $4 FROM n`, finished, testKind, StateCompleted, old)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		recentDone := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{}})
		waiting := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{}})
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE jobs SET state = $1, finished_at = $2 WHERE id = $3`, StateCompleted, recent, recentDone)
			return err
		}); err != nil {
			t.Fatal(err)
		}

		n, err := c.Prune(ctx, clk.Now().Add(-time.Hour))
		if err != nil || n != finished {
			t.Fatalf("Prune = %d, %v; want %d", n, err, finished)
		}
		if got := countJobs(t, db); got != 2 {
			t.Errorf("%d jobs left, want 2 (the recent finished one and the waiting one)", got)
		}
		for _, id := range []string{recentDone, waiting} {
			get(t, db, id) // fails the test if pruned
		}
		if db.Engine() == store.Postgres {
			var txs, most int
			if err := db.Read().QueryRowContext(ctx, `SELECT COUNT(*), MAX(n) FROM (SELECT COUNT(*) AS n FROM prune_log GROUP BY xid) AS per_tx`).
				Scan(&txs, &most); err != nil {
				t.Fatal(err)
			}
			if most > store.SweepChunk || txs < 3 {
				t.Errorf("Prune deleted in %d transactions, at most %d rows each; want at least 3 of at most %d", txs, most, store.SweepChunk)
			}
		}
	})
}

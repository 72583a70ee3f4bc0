package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// maxBatch bounds how many transactions share one commit, so a burst cannot
// make any single request wait behind an unbounded batch.
const maxBatch = 128

type unit struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	done chan error
}

// committer is SQLite's group commit: one goroutine owns the write connection,
// takes every transaction that is waiting, runs each in a savepoint of one
// database transaction and commits them together. A unit whose function fails
// is rolled back to its savepoint alone; a failed commit fails them all. No
// caller hears "done" before the commit is durable.
type committer struct {
	db     *sql.DB
	logger *slog.Logger
	// between runs while the write connection is free (prepares statements).
	between func()
	// Savepoint statements, prepared once.
	savepoint, rollbackTo, release *sql.Stmt
	in                             chan unit
	mu                             sync.RWMutex
	closed                         bool
	wg                             sync.WaitGroup
}

func newCommitter(db *sql.DB, logger *slog.Logger, between func()) *committer {
	c := &committer{db: db, logger: logger, between: between, in: make(chan unit, maxBatch)}
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{{&c.savepoint, "SAVEPOINT unit"}, {&c.rollbackTo, "ROLLBACK TO unit"}, {&c.release, "RELEASE unit"}} {
		// Preparing can only fail if the database is unusable; the unprepared
		// fallback in exec keeps the committer working regardless.
		*p.st, _ = db.Prepare(p.q)
	}
	c.wg.Add(1)
	go c.loop()
	return c
}

func (c *committer) do(ctx context.Context, fn func(*sql.Tx) error) error {
	u := unit{ctx: ctx, fn: fn, done: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return ErrClosed
	}
	select {
	case c.in <- u:
	case <-ctx.Done():
		c.mu.RUnlock()
		return ctx.Err()
	}
	c.mu.RUnlock()
	// Once queued, wait for the outcome even if ctx ends: the unit may already
	// be committed, and the caller must not report failure for a kept write.
	return <-u.done
}

func (c *committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.in)
	}
	c.mu.Unlock()
	c.wg.Wait()
	for _, st := range []*sql.Stmt{c.savepoint, c.rollbackTo, c.release} {
		if st != nil {
			st.Close()
		}
	}
}

func (c *committer) loop() {
	defer c.wg.Done()
	batch := make([]unit, 0, maxBatch)
	for {
		u, ok := <-c.in
		if !ok {
			return
		}
		batch = append(batch[:0], u)
	fill:
		for len(batch) < maxBatch {
			select {
			case u, ok := <-c.in:
				if !ok {
					break fill
				}
				batch = append(batch, u)
			default:
				break fill
			}
		}
		c.run(batch)
		if c.between != nil {
			c.between()
		}
	}
}

// exec runs one of the prepared savepoint statements inside tx.
func exec(tx *sql.Tx, st *sql.Stmt, query string) error {
	var err error
	if st != nil {
		_, err = tx.Stmt(st).Exec()
	} else {
		_, err = tx.Exec(query)
	}
	return err
}

func (c *committer) run(batch []unit) {
	results := make([]error, len(batch))
	fail := func(err error) {
		for _, u := range batch {
			u.done <- err
		}
	}
	tx, err := c.db.BeginTx(context.Background(), nil)
	if err != nil {
		fail(fmt.Errorf("store: begin: %w", err))
		return
	}
	single := len(batch) == 1
	for i, u := range batch {
		if err := u.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		if single {
			results[i] = callSafely(u.fn, tx)
			continue
		}
		if err := exec(tx, c.savepoint, "SAVEPOINT unit"); err != nil {
			_ = tx.Rollback()
			fail(fmt.Errorf("store: savepoint: %w", err))
			return
		}
		if results[i] = callSafely(u.fn, tx); results[i] != nil {
			if err := exec(tx, c.rollbackTo, "ROLLBACK TO unit"); err != nil {
				_ = tx.Rollback()
				fail(fmt.Errorf("store: rollback to savepoint: %w", err))
				return
			}
		}
		if err := exec(tx, c.release, "RELEASE unit"); err != nil {
			_ = tx.Rollback()
			fail(fmt.Errorf("store: release savepoint: %w", err))
			return
		}
	}
	if single && results[0] != nil {
		_ = tx.Rollback()
		batch[0].done <- results[0]
		return
	}
	if err := tx.Commit(); err != nil {
		c.logger.Error("sqlite group commit failed", "units", len(batch), "err", err)
		fail(fmt.Errorf("store: commit: %w", err))
		return
	}
	for i, u := range batch {
		u.done <- results[i]
	}
}

// ErrPanic wraps a panic raised inside a transaction function.
var ErrPanic = errors.New("store: panic in transaction function")

func callSafely(fn func(*sql.Tx) error, tx *sql.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrPanic, r)
		}
	}()
	return fn(tx)
}

// Package jobs is Ponte's durable job queue: work that must happen after a
// transaction commits — a webhook delivery, an expiry — is written as a row of
// the jobs table inside that same transaction, and workers run it later,
// retrying with backoff until it succeeds or its attempts run out.
//
// # Why not River
//
// DESIGN.md names River (github.com/riverqueue/river). River's drivers run
// their own queries on their own schedule: a producer polling for work, a
// leader election, an elector heartbeat, a rescuer, a cleaner, a scheduler and
// notification listeners, each taking connections from the pool. On
// PostgreSQL that is what it is built for. On SQLite Ponte has exactly one
// write connection, owned by the group committer (internal/store), and every
// write must go through store.DB.Write; River's maintenance writes would
// either compete with the committer for SQLite's single writer lock (and
// stall requests behind busy timeouts) or need a second write path that
// bypasses group commit and its durability guarantees. So Ponte keeps a small
// queue of its own, with every write issued through store.DB.Write and every
// query in the one portable SQL dialect, tested on both engines.
//
// # Guarantees
//
//   - Enqueue runs inside the caller's transaction: the job exists if and only
//     if the caller's state change committed.
//   - A job is claimed with a conditional UPDATE (its state and lease are in
//     the WHERE clause), so among any number of workers on one database
//     exactly one wins each claim. The winner holds a lease until
//     lease_until; if its process dies, the job becomes claimable again when
//     the lease expires, and the stale worker can no longer record an outcome
//     (outcomes are fenced by lease owner and attempt number).
//   - Delivery is at least once: a handler may run again after a crash, so
//     handlers must be idempotent (webhook deliveries carry a stable id).
//   - A handler's error schedules a retry at now + RetryPolicy(attempt), or
//     discards the job when its attempts are used up; Cancel(err) stops it at
//     once; RetryAt(err, t) picks the time of the next attempt.
package jobs

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Job states.
const (
	StateAvailable = "available" // waiting for run_at (a new job, or a retry)
	StateRunning   = "running"   // claimed by a worker until lease_until
	StateCompleted = "completed" // the handler returned nil
	StateDiscarded = "discarded" // the last attempt failed
	StateCancelled = "cancelled" // the handler returned Cancel(err)
)

// DefaultMaxAttempts applies to jobs enqueued with MaxAttempts 0.
const DefaultMaxAttempts = 25

// maxErrorLength bounds last_error, so one verbose failure cannot bloat a row.
const maxErrorLength = 2000

// Job is a unit of work. Kind, Payload, RunAt, UniqueKey and MaxAttempts are
// what Enqueue takes; a handler receives the job with ID, Attempt and
// CreatedAt filled in and Payload as the stored JSON (json.RawMessage; use
// Decode).
type Job struct {
	ID   string
	Kind string
	// Payload is encoded with encoding/json when enqueued.
	Payload any
	// RunAt is the earliest time the job may run; zero means now.
	RunAt time.Time
	// UniqueKey, when not empty, de-duplicates: while a job with this key is
	// in the table (in any state, until it is pruned) Enqueue returns that
	// job's id instead of adding another.
	UniqueKey string
	// MaxAttempts bounds how many times the handler runs; 0 means DefaultMaxAttempts.
	MaxAttempts int

	// Attempt is the number of this run, from 1 (set for handlers).
	Attempt int
	// CreatedAt is when the job was enqueued (set for handlers).
	CreatedAt time.Time
}

// Decode unmarshals the job's JSON payload into v.
func (j *Job) Decode(v any) error {
	raw, ok := j.Payload.(json.RawMessage)
	if !ok {
		b, err := json.Marshal(j.Payload)
		if err != nil {
			return err
		}
		raw = b
	}
	return json.Unmarshal(raw, v)
}

// Final reports whether this run is the job's last attempt: if it fails, the
// job is discarded. (After a crash on the last attempt, the job runs once more
// and Attempt exceeds MaxAttempts; see Client.)
func (j *Job) Final() bool { return j.Attempt >= j.MaxAttempts }

// Handler runs a job. A nil error completes it; any other error is retried
// per the kind's RetryPolicy, except Cancel and RetryAt errors.
type Handler func(ctx context.Context, j *Job) error

// RetryPolicy says how long to wait after failed attempt number attempt (1 for
// the first run) before the next one.
type RetryPolicy func(attempt int) time.Duration

// Backoff returns an exponential RetryPolicy: base, 2·base, 4·base, … capped at max.
func Backoff(base, max time.Duration) RetryPolicy {
	return func(attempt int) time.Duration {
		if attempt < 1 {
			attempt = 1
		}
		d := float64(base) * math.Pow(2, float64(attempt-1))
		if d > float64(max) {
			return max
		}
		return time.Duration(d)
	}
}

// Schedule returns a RetryPolicy that waits delays[attempt-1], repeating the
// last delay for later attempts.
func Schedule(delays ...time.Duration) RetryPolicy {
	if len(delays) == 0 {
		panic("jobs.Schedule: no delays")
	}
	return func(attempt int) time.Duration {
		switch {
		case attempt < 1:
			return delays[0]
		case attempt > len(delays):
			return delays[len(delays)-1]
		}
		return delays[attempt-1]
	}
}

type cancelError struct{ err error }

func (e *cancelError) Error() string { return "cancelled: " + e.err.Error() }
func (e *cancelError) Unwrap() error { return e.err }

// Cancel wraps err so the job is not retried: it ends in state cancelled.
func Cancel(err error) error {
	if err == nil {
		err = errors.New("cancelled by handler")
	}
	return &cancelError{err}
}

type retryAtError struct {
	err error
	at  time.Time
}

func (e *retryAtError) Error() string { return e.err.Error() }
func (e *retryAtError) Unwrap() error { return e.err }

// RetryAt wraps err so the next attempt runs at t instead of at the time the
// RetryPolicy gives. On the final attempt the job is discarded all the same.
func RetryAt(err error, t time.Time) error {
	if err == nil {
		err = errors.New("retry requested by handler")
	}
	return &retryAtError{err: err, at: t}
}

// Enqueue adds j to the queue inside tx, the caller's transaction, so the job
// commits (or rolls back) with the caller's state change. now is the caller's
// clock reading. With a UniqueKey already present it adds nothing and returns
// the existing job's id.
func Enqueue(ctx context.Context, tx *sql.Tx, now time.Time, j Job) (string, error) {
	id, values, err := enqueueValues(now, j)
	if err != nil {
		return "", err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO jobs (`+insertColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (unique_key) DO NOTHING`, values...)
	if err != nil {
		return "", fmt.Errorf("jobs: enqueue %s: %w", j.Kind, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return "", err
	} else if n == 1 {
		return id, nil
	}
	var existing string
	if err := tx.QueryRowContext(ctx, `SELECT id FROM jobs WHERE unique_key = $1`, j.UniqueKey).Scan(&existing); err != nil {
		return "", fmt.Errorf("jobs: enqueue %s: find job with the same unique key: %w", j.Kind, err)
	}
	return existing, nil
}

// Errors of Retry.
var (
	ErrNotFound = errors.New("jobs: job not found")
	ErrRunning  = errors.New("jobs: job is running")
)

// Retry makes job id run as soon as a worker polls, inside tx: a job waiting
// for its next attempt is brought forward; a completed, discarded or
// cancelled job becomes available again, with one more attempt if it had used
// them all. A running job is left alone (ErrRunning).
func Retry(ctx context.Context, tx *sql.Tx, now time.Time, id string) error {
	res, err := tx.ExecContext(ctx, `UPDATE jobs SET state = $1, run_at = $2, updated_at = $2, finished_at = NULL,
			lease_owner = NULL, lease_until = NULL,
			max_attempts = CASE WHEN attempt >= max_attempts THEN attempt + 1 ELSE max_attempts END
		WHERE id = $3 AND state <> $4`, StateAvailable, now.UnixMilli(), id, StateRunning)
	if err != nil {
		return fmt.Errorf("jobs: retry: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 1 {
		return nil
	}
	var state string
	err = tx.QueryRowContext(ctx, `SELECT state FROM jobs WHERE id = $1`, id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("jobs: retry: %w", err)
	}
	return ErrRunning
}

// Info is a job's row, for operators and tests.
type Info struct {
	ID          string
	Kind        string
	Payload     json.RawMessage
	UniqueKey   string
	State       string
	Attempt     int
	MaxAttempts int
	RunAt       time.Time
	LeaseOwner  string
	LeaseUntil  time.Time
	LastError   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	FinishedAt  time.Time
}

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Get reads job id through q (a *sql.DB outside transactions, or a *sql.Tx).
func Get(ctx context.Context, q rowQuerier, id string) (*Info, error) {
	var (
		in                      Info
		payload                 string
		unique, owner, lastErr  sql.NullString
		leaseUntil, finished    sql.NullInt64
		runAt, created, updated int64
	)
	err := q.QueryRowContext(ctx, `SELECT id, kind, payload, unique_key, state, attempt, max_attempts, run_at,
			lease_owner, lease_until, last_error, created_at, updated_at, finished_at
		FROM jobs WHERE id = $1`, id).Scan(&in.ID, &in.Kind, &payload, &unique, &in.State, &in.Attempt, &in.MaxAttempts, &runAt,
		&owner, &leaseUntil, &lastErr, &created, &updated, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("jobs: get: %w", err)
	}
	in.Payload = json.RawMessage(payload)
	in.UniqueKey, in.LeaseOwner, in.LastError = unique.String, owner.String, lastErr.String
	in.RunAt, in.CreatedAt, in.UpdatedAt = ms(runAt), ms(created), ms(updated)
	if leaseUntil.Valid {
		in.LeaseUntil = ms(leaseUntil.Int64)
	}
	if finished.Valid {
		in.FinishedAt = ms(finished.Int64)
	}
	return &in, nil
}

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

func truncateError(s string) string {
	if len(s) <= maxErrorLength {
		return s
	}
	return s[:maxErrorLength] + "…"
}

func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func jsonRaw(s string) json.RawMessage { return json.RawMessage(s) }

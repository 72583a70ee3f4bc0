package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/lifecycle"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Config tunes a Client. Zero values take the defaults.
type Config struct {
	// Clock decides when jobs are due and when leases expire (default: system clock).
	Clock clock.Clock
	// Logger receives failures (default: discarded).
	Logger *slog.Logger
	// PollInterval is how often a started Client looks for due jobs (default 1 s).
	PollInterval time.Duration
	// Lease is how long a claimed job belongs to its worker (default 5 min).
	// A handler's context ends when the lease does: a handler must finish
	// within it, or another worker may run the job again.
	Lease time.Duration
	// Concurrency bounds how many handlers run at once (default 8).
	Concurrency int
	// Retention is how long finished jobs stay in the table before a started
	// Client deletes them, freeing their unique keys (default 7 days;
	// negative: keep them forever).
	Retention time.Duration
	// Owner names this worker in lease_owner (default host:pid:random).
	// Several Clients on one database must have different owners.
	Owner string
	// Metrics count this Client's outcomes and learn its kinds (nil: none).
	Metrics *Metrics
}

// maintenanceInterval is how often a started Client discards dead jobs and prunes finished ones.
const maintenanceInterval = time.Minute

type registration struct {
	handler Handler
	retry   RetryPolicy
}

// Client runs the jobs of the kinds registered on it: continuously after
// Start, or once per call with RunDue (deterministic tests).
//
// Leases: a job whose worker died stays running until its lease expires, then
// any worker claims it again as its next attempt. If that happens after the
// job's final attempt, it is run once more (the crashed attempt may never have
// reached its effect: a durable queue does not drop work because a process
// died); a job whose lease expires again after that is discarded.
type Client struct {
	db    *store.DB
	cfg   Config
	mu    sync.RWMutex
	kinds map[string]registration
	wake  chan struct{}

	life sync.Mutex
	cur  *run // the started run; nil when stopped
}

// run is one Start-to-Stop span of a Client; a stopped Client starts a new one.
type run struct {
	poll      context.Context // the polling loop's: ends when Stop is called
	endPoll   context.CancelFunc
	base      context.Context // handlers' parent: cancelled only by a forced Stop
	forceStop context.CancelFunc
	slots     chan struct{}
	running   sync.WaitGroup
	done      chan struct{} // closed when the loop and every handler have returned
}

// New returns a Client for db. Register kinds, then Start it or call RunDue.
func New(db *store.DB, cfg Config) *Client {
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 5 * time.Minute
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.Retention == 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = host + ":" + strconv.Itoa(os.Getpid()) + ":" + randomSuffix()
	}
	return &Client{db: db, cfg: cfg, kinds: map[string]registration{}, wake: make(chan struct{}, 1)}
}

// Owner is the name this Client writes into lease_owner.
func (c *Client) Owner() string { return c.cfg.Owner }

// Register makes this Client run jobs of kind with handler; a failed attempt
// is retried after retry(attempt) (nil: Backoff(5 s, 1 h)).
func (c *Client) Register(kind string, handler Handler, retry RetryPolicy) {
	if kind == "" || handler == nil {
		panic("jobs.Register: empty kind or nil handler")
	}
	if retry == nil {
		retry = Backoff(5*time.Second, time.Hour)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kinds[kind] = registration{handler: handler, retry: retry}
	c.cfg.Metrics.kindRegistered(kind)
}

func (c *Client) registered() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	kinds := make([]string, 0, len(c.kinds))
	for k := range c.kinds {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

func (c *Client) registration(kind string) (registration, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, ok := c.kinds[kind]
	return r, ok
}

// Start polls for due jobs every PollInterval and runs them in the
// background until Stop (a lifecycle.Worker: ctx gives values, not the
// lifetime). Start on a started Client returns lifecycle.ErrRunning; after
// Stop it starts again.
func (c *Client) Start(ctx context.Context) error {
	c.life.Lock()
	defer c.life.Unlock()
	if c.cur != nil {
		return lifecycle.ErrRunning
	}
	r := &run{slots: make(chan struct{}, c.cfg.Concurrency), done: make(chan struct{})}
	r.poll, r.endPoll = context.WithCancel(context.WithoutCancel(ctx))
	r.base, r.forceStop = context.WithCancel(context.WithoutCancel(ctx))
	c.cur = r
	go func() {
		defer close(r.done)
		c.loop(r)
		r.running.Wait() // only the loop adds to running, and it has returned
	}()
	return nil
}

// Stop stops claiming jobs and waits for running handlers to finish. If ctx
// ends first, their contexts are cancelled and Stop still waits for them to
// return; a job interrupted this way is put back without using up an
// attempt. Safe to call more than once, concurrently, and on a Client never
// started.
func (c *Client) Stop(ctx context.Context) error {
	c.life.Lock()
	r := c.cur
	c.life.Unlock()
	if r == nil {
		return nil
	}
	r.endPoll()
	var err error
	select {
	case <-r.done:
	case <-ctx.Done():
		select {
		case <-r.done:
		default:
			r.forceStop()
			<-r.done
			err = fmt.Errorf("jobs: stop: running jobs interrupted and released: %w", ctx.Err())
		}
	}
	r.forceStop() // releases the context's resources
	c.life.Lock()
	if c.cur == r {
		c.cur = nil
	}
	c.life.Unlock()
	return err
}

// Notify asks a started Client to poll now rather than at its next tick, e.g.
// after committing a transaction that enqueued work.
func (c *Client) Notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Client) loop(r *run) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastMaintenance time.Time
	for {
		select {
		case <-r.poll.Done():
			return
		case <-timer.C:
		case <-c.wake:
		}
		if time.Since(lastMaintenance) >= maintenanceInterval {
			lastMaintenance = time.Now()
			if err := c.maintain(r.poll); err != nil && r.poll.Err() == nil {
				c.cfg.Logger.Warn("jobs: maintenance failed", "err", err)
			}
		}
		c.fill(r)
		timer.Reset(c.cfg.PollInterval)
	}
}

// fill claims as many due jobs as there are free slots and starts them.
func (c *Client) fill(r *run) {
	ctx := r.poll
	free := cap(r.slots) - len(r.slots)
	if free == 0 {
		return
	}
	now := c.cfg.Clock.Now()
	ids, err := c.candidates(ctx, now, free)
	if err == nil && len(ids) > 0 {
		var jobs []*Job
		if jobs, err = c.claim(ctx, ids, now); err == nil {
			for _, j := range jobs {
				r.slots <- struct{}{}
				r.running.Add(1)
				go func() {
					defer func() {
						<-r.slots
						r.running.Done()
						c.Notify() // a slot is free: look for more work
					}()
					c.run(r.base, j)
				}()
			}
		}
	}
	if err != nil && ctx.Err() == nil {
		c.cfg.Logger.Warn("jobs: poll failed", "err", err)
	}
}

// RunDue runs, once each, the jobs of registered kinds that are due now (by
// the Client's clock) or whose lease has expired, and waits for them. It
// returns how many it ran. Jobs that become due while it runs (a retry with
// no delay, a job enqueued by a handler) wait for the next call.
func (c *Client) RunDue(ctx context.Context) (int, error) {
	now := c.cfg.Clock.Now()
	if err := c.discardDead(ctx, now); err != nil {
		return 0, err
	}
	ids, err := c.candidates(ctx, now, 100000)
	if err != nil {
		return 0, err
	}
	var (
		ran   int
		wg    sync.WaitGroup
		slots = make(chan struct{}, c.cfg.Concurrency)
	)
	defer wg.Wait()
	for chunk := range slices.Chunk(ids, 100) {
		jobs, err := c.claim(ctx, chunk, now)
		if err != nil {
			return ran, err
		}
		for _, j := range jobs {
			ran++
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-slots; wg.Done() }()
				c.run(ctx, j)
			}()
		}
	}
	return ran, nil
}

// candidates lists up to limit ids of claimable jobs: available and due, or
// running with an expired lease and an attempt left to give (see Client).
func (c *Client) candidates(ctx context.Context, now time.Time, limit int) ([]string, error) {
	kinds := c.registered()
	if len(kinds) == 0 {
		return nil, nil
	}
	kindArgs := make([]any, len(kinds))
	for i, k := range kinds {
		kindArgs[i] = k
	}
	p := store.NewParams(c.db.Engine())
	q := `SELECT id FROM jobs WHERE state = ` + p.Add(StateAvailable) + ` AND run_at <= ` + p.Add(now.UnixMilli()) +
		` AND kind IN (` + p.List(kindArgs...) + `) ORDER BY run_at, id LIMIT ` + p.Add(limit)
	due, err := c.ids(ctx, q, p.Args()...)
	if err != nil {
		return nil, err
	}
	p = store.NewParams(c.db.Engine())
	q = `SELECT id FROM jobs WHERE state = ` + p.Add(StateRunning) + ` AND lease_until <= ` + p.Add(now.UnixMilli()) +
		` AND attempt <= max_attempts AND kind IN (` + p.List(kindArgs...) + `) ORDER BY lease_until, id LIMIT ` + p.Add(limit)
	expired, err := c.ids(ctx, q, p.Args()...)
	if err != nil {
		return nil, err
	}
	ids := append(due, expired...)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	return ids, nil
}

func (c *Client) ids(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := c.db.Read().QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("jobs: find due jobs: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// claim tries to take each job with a conditional UPDATE; it returns the jobs
// this Client won. Rows are locked in id order, so concurrent claimers on
// PostgreSQL never deadlock; a claimer that loses a race re-evaluates the
// condition on the winner's committed row and updates nothing.
func (c *Client) claim(ctx context.Context, ids []string, now time.Time) ([]*Job, error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var won []*Job
	err := c.db.Write(ctx, func(tx *sql.Tx) error {
		won = won[:0]
		for _, id := range ids {
			var (
				j                Job
				payload          string
				unique           sql.NullString
				runAt, createdAt int64
			)
			err := tx.QueryRowContext(ctx, `UPDATE jobs SET state = $2, attempt = attempt + 1, lease_owner = $3, lease_until = $4, updated_at = $5
				WHERE id = $1 AND ((state = $6 AND run_at <= $5) OR (state = $2 AND lease_until <= $5 AND attempt <= max_attempts))
				RETURNING kind, payload, unique_key, attempt, max_attempts, run_at, created_at`,
				id, StateRunning, c.cfg.Owner, now.Add(c.cfg.Lease).UnixMilli(), now.UnixMilli(), StateAvailable).
				Scan(&j.Kind, &payload, &unique, &j.Attempt, &j.MaxAttempts, &runAt, &createdAt)
			if errors.Is(err, sql.ErrNoRows) {
				continue // another worker has it
			}
			if err != nil {
				return fmt.Errorf("jobs: claim: %w", err)
			}
			j.ID, j.Payload, j.UniqueKey = id, jsonRaw(payload), unique.String
			j.RunAt, j.CreatedAt = ms(runAt), ms(createdAt)
			won = append(won, &j)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return won, nil
}

// run calls the job's handler and records the outcome.
func (c *Client) run(base context.Context, j *Job) {
	reg, ok := c.registration(j.Kind)
	if !ok { // unregistered after claiming: put it back
		c.finish(base, j, nil, errors.New("kind no longer registered"), true)
		return
	}
	ctx, cancel := context.WithTimeout(base, c.cfg.Lease)
	err := c.call(ctx, reg.handler, j)
	cancel()
	interrupted := err != nil && base.Err() != nil
	c.finish(base, j, reg.retry, err, interrupted)
}

func (c *Client) call(ctx context.Context, h Handler, j *Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.cfg.Logger.Error("jobs: handler panicked", "kind", j.Kind, "job_id", j.ID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return h(ctx, j)
}

// finish records the outcome of one run, fenced by lease owner and attempt:
// a worker whose lease expired and was taken over changes nothing.
func (c *Client) finish(base context.Context, j *Job, retry RetryPolicy, herr error, interrupted bool) {
	now := c.cfg.Clock.Now()
	nowMS := now.UnixMilli()
	var (
		query string
		args  []any
		log   = c.cfg.Logger.With("kind", j.Kind, "job_id", j.ID, "attempt", j.Attempt)
	)
	fence := ` WHERE id = $1 AND state = '` + StateRunning + `' AND lease_owner = $2 AND attempt = $3`
	var cancelled *cancelError
	var retryAt *retryAtError
	outcome := "" // the state written, for the metrics
	switch {
	case herr == nil:
		outcome = StateCompleted
		query = `UPDATE jobs SET state = '` + StateCompleted + `', finished_at = $4, updated_at = $4, lease_owner = NULL, lease_until = NULL` + fence
		args = []any{nowMS}
	case interrupted:
		query = `UPDATE jobs SET state = '` + StateAvailable + `', attempt = attempt - 1, run_at = $4, updated_at = $4, last_error = $5,
			lease_owner = NULL, lease_until = NULL` + fence
		args = []any{nowMS, truncateError("interrupted before finishing: " + herr.Error())}
		log.Info("jobs: job interrupted, released for another run", "err", herr)
	case errors.As(herr, &cancelled):
		query = `UPDATE jobs SET state = '` + StateCancelled + `', finished_at = $4, updated_at = $4, last_error = $5,
			lease_owner = NULL, lease_until = NULL` + fence
		args = []any{nowMS, truncateError(herr.Error())}
		log.Info("jobs: job cancelled", "err", herr)
	case j.Final():
		outcome = StateDiscarded
		query = `UPDATE jobs SET state = '` + StateDiscarded + `', finished_at = $4, updated_at = $4, last_error = $5,
			lease_owner = NULL, lease_until = NULL` + fence
		args = []any{nowMS, truncateError(herr.Error())}
		log.Error("jobs: job failed on its last attempt and was discarded", "max_attempts", j.MaxAttempts, "err", herr)
	default:
		next := now.Add(retry(j.Attempt))
		if errors.As(herr, &retryAt) {
			next = retryAt.at
		}
		if next.Before(now) {
			next = now
		}
		outcome = StateAvailable
		query = `UPDATE jobs SET state = '` + StateAvailable + `', run_at = $4, updated_at = $5, last_error = $6,
			lease_owner = NULL, lease_until = NULL` + fence
		args = []any{next.UnixMilli(), nowMS, truncateError(herr.Error())}
		log.Warn("jobs: job failed, will retry", "next_attempt_at", next, "err", herr)
	}
	// The outcome is written even when the run's context has ended.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(base), 30*time.Second)
	defer cancel()
	var n int64
	err := c.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, append([]any{j.ID, c.cfg.Owner, j.Attempt}, args...)...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	switch {
	case err != nil:
		log.Error("jobs: could not record outcome; the job runs again when its lease expires", "err", err)
	case n == 0:
		log.Warn("jobs: lease lost before the outcome was recorded; another worker owns the job now")
	default:
		c.cfg.Metrics.observeOutcome(j.Kind, outcome)
	}
}

// discardDead discards jobs whose lease expired after they had already run
// more than max_attempts times (see Client).
func (c *Client) discardDead(ctx context.Context, now time.Time) error {
	ids, err := c.ids(ctx, `SELECT id FROM jobs WHERE state = $1 AND lease_until <= $2 AND attempt > max_attempts LIMIT 1000`,
		StateRunning, now.UnixMilli())
	if err != nil || len(ids) == 0 {
		return err
	}
	var kinds []string // of the jobs this call discarded, for the metrics
	err = c.db.Write(ctx, func(tx *sql.Tx) error {
		kinds = kinds[:0]
		for _, id := range ids {
			var kind string
			err := tx.QueryRowContext(ctx, `UPDATE jobs SET state = $1, finished_at = $2, updated_at = $2,
					last_error = 'lease expired again after the last attempt (worker crashed or handler overran its lease)',
					lease_owner = NULL, lease_until = NULL
				WHERE id = $3 AND state = $4 AND lease_until <= $2 AND attempt > max_attempts RETURNING kind`,
				StateDiscarded, now.UnixMilli(), id, StateRunning).Scan(&kind)
			if errors.Is(err, sql.ErrNoRows) {
				continue // another worker discarded it first
			}
			if err != nil {
				return fmt.Errorf("jobs: discard dead job: %w", err)
			}
			kinds = append(kinds, kind)
			c.cfg.Logger.Error("jobs: job discarded after its lease expired on the last attempt", "job_id", id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, kind := range kinds {
		c.cfg.Metrics.observeOutcome(kind, StateDiscarded)
	}
	return nil
}

// maintain discards dead jobs and deletes finished jobs older than Retention.
func (c *Client) maintain(ctx context.Context) error {
	now := c.cfg.Clock.Now()
	err := c.discardDead(ctx, now)
	if c.cfg.Retention > 0 {
		_, perr := c.Prune(ctx, now.Add(-c.cfg.Retention))
		err = errors.Join(err, perr)
	}
	return err
}

// Prune deletes completed, discarded and cancelled jobs that finished before
// cutoff, freeing their unique keys, and says how many it deleted. It deletes
// in transactions of at most store.SweepChunk rows (store.DB.Sweep), so a
// week's backlog does not hold the writer in one long transaction. A started
// Client prunes on its own every minute, with cutoff now - Retention.
func (c *Client) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := c.db.Sweep(ctx, store.SweepChunk, func(tx *sql.Tx, limit int) (int64, error) {
		res, err := tx.ExecContext(ctx, `DELETE FROM jobs WHERE id IN (
				SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < $1 LIMIT $2)`, cutoff.UnixMilli(), limit)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	})
	if err != nil {
		return n, fmt.Errorf("jobs: prune: %w", err)
	}
	return n, nil
}

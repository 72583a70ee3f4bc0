package itp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Job kinds.
const (
	// JobExpire expires one session at its time-to-live.
	JobExpire = "itp.journey_session.expire"
	// JobSweep runs Sweep and schedules the next run SweepEvery later.
	JobSweep = "itp.journey_session.sweep"
)

// SweepEvery is how often the durable sweep job runs.
const SweepEvery = time.Minute

// DefaultSweepBatch is how many sessions one Sweep statement expires.
const DefaultSweepBatch = 10000

// VerifyExpired moves session id of applicationID to EXPIRED if its
// time-to-live has passed and it can still expire, and returns it as it is
// afterwards. Idempotent; racing the expiry job, the change is written once.
func (s *Service) VerifyExpired(ctx context.Context, applicationID, id string) (*Session, error) {
	sess, err := s.read(ctx, id)
	if err != nil {
		return nil, err
	}
	if sess.ApplicationID != applicationID {
		return nil, ErrNotFound
	}
	if !sess.Status.Expirable() || s.now().Before(sess.ExpiresAt) {
		return sess, nil
	}
	return s.expireAndRead(ctx, id)
}

func (s *Service) expireAndRead(ctx context.Context, id string) (*Session, error) {
	if _, err := s.expire(ctx, id); err != nil {
		return nil, err
	}
	return s.read(ctx, id)
}

// expire runs the conditional expiry UPDATE for one session and reports whether it changed it.
func (s *Service) expire(ctx context.Context, id string) (bool, error) {
	var changed bool
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		now := s.now()
		st, err := s.DB.TxStmt(ctx, tx, expireOneSQL)
		if err != nil {
			return err
		}
		res, err := st.ExecContext(ctx, now.UnixMilli(), historySuffix(now, StatusExpired), now.UnixMilli(), id)
		if err != nil {
			return fmt.Errorf("itp: expire journey session: %w", err)
		}
		n, err := res.RowsAffected()
		changed = n == 1
		return err
	})
	if changed {
		s.Logger.InfoContext(ctx, "journey session expired", "session_id", id)
	}
	return changed, err
}

type expirePayload struct {
	SessionID string `json:"sessionId"`
}

// Register registers the expiry and sweep jobs' handlers on c.
func (s *Service) Register(c *jobs.Client) {
	c.Register(JobExpire, s.handleExpire, jobs.Backoff(5*time.Second, 5*time.Minute))
	c.Register(JobSweep, s.handleSweep, jobs.Backoff(10*time.Second, 5*time.Minute))
}

// ScheduleSweep makes sure a sweep job is queued (one per SweepEvery slot,
// by unique key), so the sweep runs periodically on some instance, durably,
// from the first start on.
func (s *Service) ScheduleSweep(ctx context.Context) error {
	return s.DB.Write(ctx, func(tx *sql.Tx) error { return s.enqueueSweep(ctx, tx, s.now()) })
}

func (s *Service) enqueueSweep(ctx context.Context, tx *sql.Tx, at time.Time) error {
	slot := at.Truncate(SweepEvery)
	_, err := jobs.Enqueue(ctx, tx, s.now(), jobs.Job{Kind: JobSweep, RunAt: at,
		UniqueKey: fmt.Sprintf("%s:%d", JobSweep, slot.Unix()), MaxAttempts: 5})
	return err
}

func (s *Service) handleSweep(ctx context.Context, _ *jobs.Job) error {
	n, err := s.Sweep(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		s.Logger.InfoContext(ctx, "journey sessions expired by sweep", "count", n)
	}
	return s.DB.Write(ctx, func(tx *sql.Tx) error { return s.enqueueSweep(ctx, tx, s.now().Add(SweepEvery)) })
}

func (s *Service) handleExpire(ctx context.Context, j *jobs.Job) error {
	var p expirePayload
	if err := j.Decode(&p); err != nil || p.SessionID == "" {
		return jobs.Cancel(fmt.Errorf("itp: bad expiry payload: %v", err))
	}
	changed, err := s.expire(ctx, p.SessionID)
	if err != nil || changed {
		return err
	}
	sess, err := s.read(ctx, p.SessionID)
	if errors.Is(err, ErrNotFound) {
		return jobs.Cancel(err)
	}
	if err != nil {
		return err
	}
	if sess.Status.Expirable() && s.now().Before(sess.ExpiresAt) {
		return jobs.RetryAt(errors.New("itp: journey session not due yet"), sess.ExpiresAt)
	}
	return nil // moved on, or already expired by the sweep or verify-expired
}

// Sweep expires every due session that can still expire, in batches of
// SweepBatch with one set-based UPDATE each, and returns how many it expired.
// The expiry job does this per session; Sweep is the safety net (and the
// catch-up after downtime).
func (s *Service) Sweep(ctx context.Context) (int, error) {
	batch := s.SweepBatch
	if batch <= 0 {
		batch = DefaultSweepBatch
	}
	q := sweepSQLite
	if s.DB.Engine() == store.Postgres {
		q = sweepPostgres
	}
	return s.sweepBatches(ctx, q, batch)
}

// sweepBatches runs the sweep statement q in steps of batch sessions
// (store.DB.Sweep) until a step expires fewer.
func (s *Service) sweepBatches(ctx context.Context, q string, batch int) (int, error) {
	n, err := s.DB.Sweep(ctx, batch, func(tx *sql.Tx, limit int) (int64, error) {
		now := s.now()
		st, err := s.DB.TxStmt(ctx, tx, q)
		if err != nil {
			return 0, err
		}
		res, err := st.ExecContext(ctx, now.UnixMilli(), historySuffix(now, StatusExpired), now.UnixMilli(), limit)
		if err != nil {
			return 0, fmt.Errorf("itp: sweep journey sessions: %w", err)
		}
		return res.RowsAffected()
	})
	return int(n), err
}

// enqueueExpire queues the session's expiry job in tx: what
// jobs.Enqueue(JobExpire, RunAt: ExpiresAt, UniqueKey: JobExpire+":"+id)
// writes, through a prepared statement (preparing the job insert on every
// create was a tenth of the group commit's time) and with a time-ordered job
// id.
func (s *Service) enqueueExpire(ctx context.Context, tx *sql.Tx, now time.Time, sess *Session) error {
	st, err := s.DB.TxStmt(ctx, tx, insertExpireJobSQL)
	if err != nil {
		return err
	}
	if _, err = st.ExecContext(ctx, expireJobArgs(now, sess)...); err != nil {
		return fmt.Errorf("jobs: enqueue %s: %w", JobExpire, err)
	}
	return nil
}

// expireJobArgs are insertExpireJobSQL's arguments for sess's expiry job
// (and createSessionPostgres's last eight).
func expireJobArgs(now time.Time, sess *Session) []any {
	return []any{newSessionID(), JobExpire, `{"sessionId":"` + sess.ID + `"}`, JobExpire + ":" + sess.ID,
		jobs.StateAvailable, jobs.DefaultMaxAttempts, sess.ExpiresAt.UnixMilli(), now.UnixMilli()}
}

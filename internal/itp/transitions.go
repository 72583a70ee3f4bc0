package itp

import (
	"context"
	"database/sql"
	"fmt"
)

// Transition moves session id to status to inside tx, the caller's
// transaction: change (may be nil) may set the session's ConsentID and
// BrandID, which are written with the status; statusHistory gets one entry.
// The UPDATE is conditional on the status read, so a concurrent change
// (another transition, expiry) makes this one ErrInvalidTransition instead
// of overwriting it. Allowed: PENDING → AWAITING_AUTHORISATION | REJECTED |
// CANCELLED; AWAITING_AUTHORISATION → AUTHORISED | REJECTED | CANCELLED;
// AUTHORISED → FINISHED | REJECTED. A session past its time-to-live that can
// still expire is ErrExpired (EXPIRED itself is reached only by expiry).
func (s *Service) Transition(ctx context.Context, tx *sql.Tx, id string, to Status, change func(*Session)) (*Session, error) {
	sess, err := s.SessionTx(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	from := sess.Status
	if !from.CanMoveTo(to) {
		return nil, fmt.Errorf("%w: %s → %s", ErrInvalidTransition, from, to)
	}
	now := s.now()
	if from.Expirable() && !now.Before(sess.ExpiresAt) {
		return nil, ErrExpired
	}
	if change != nil {
		change(sess)
	}
	sess.Status, sess.UpdatedAt = to, now
	sess.StatusHistory = append(sess.StatusHistory, StatusChange{UpdatedAt: now, Status: to})
	res, err := tx.ExecContext(ctx, transitionSQL,
		string(to), nullString(sess.ConsentID), nullString(sess.BrandID), encodeHistory(sess.StatusHistory), now.UnixMilli(), id, string(from))
	if err != nil {
		return nil, fmt.Errorf("itp: update journey session: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, err
	} else if n != 1 {
		return nil, fmt.Errorf("%w: %s changed concurrently", ErrInvalidTransition, id)
	}
	return sess, nil
}

// Move is Transition in a transaction of its own.
func (s *Service) Move(ctx context.Context, id string, to Status, change func(*Session)) (*Session, error) {
	var out *Session
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.Transition(ctx, tx, id, to, change)
		return err
	})
	return out, err
}

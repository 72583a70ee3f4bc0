package pcm

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Recorder writes journey steps into the caller's transaction, so a step is
// stored exactly when the state change that caused it commits. A step
// already stored for the same consent, step and type is left as it is: the
// first one wins, and recording it again is not an error.
type Recorder struct {
	Clock clock.Clock
	// DB, when set, is the database the transactions handed to Record
	// belong to: its statements are then prepared once (store.DB.TxStmt)
	// instead of parsed on every step.
	DB *store.DB
	// NewID makes event ids; nil means UUIDv7 (newEventID).
	NewID func() string
	// Outbox writes the forwarding outbox row (Enqueue) of every newly
	// stored event in its transaction. Unlike an AfterInsert hook it is
	// known SQL, so the report API on PostgreSQL writes it in the event's
	// one statement (Service.Report).
	Outbox bool
	// AfterInsert, when set, runs in the transaction of every newly stored
	// event (never for a duplicate), after its outbox row. An error rolls
	// the event and its state change back.
	AfterInsert func(ctx context.Context, tx *sql.Tx, e *Event) error
}

// Record stores e (filling its id, and its times when zero) unless the same
// consent, step and type is already stored. It returns the stored event and
// whether it is new.
func (r *Recorder) Record(ctx context.Context, tx *sql.Tx, e Event) (*Event, bool, error) {
	e, err := r.stamp(e)
	if err != nil {
		return nil, false, err
	}
	inserted, err := r.insertEvent(ctx, tx, &e)
	if err != nil {
		return nil, false, err
	}
	if !inserted {
		stored, err := r.eventByStep(ctx, tx, e.ConsentID, e.Step, e.Type)
		if err != nil {
			return nil, false, err
		}
		return stored, false, nil
	}
	if r.Outbox {
		if err := enqueue(ctx, r.DB, tx, &e); err != nil {
			return nil, false, err
		}
	}
	if r.AfterInsert != nil {
		if err := r.AfterInsert(ctx, tx, &e); err != nil {
			return nil, false, fmt.Errorf("pcm: after insert of event %s: %w", e.ID, err)
		}
	}
	return &e, true, nil
}

// stamp checks e and fills what Record fills: its side, id and times, its
// source, its URI without query.
func (r *Recorder) stamp(e Event) (Event, error) {
	if e.ConsentID == "" || SideOf(e.Step) == "" {
		return e, fmt.Errorf("pcm: record: consent id and a known step are required (step %q)", e.Step)
	}
	if e.Side == "" {
		e.Side = SideOf(e.Step)
	}
	now := r.Clock.Now().UTC()
	if e.OccurredAt.IsZero() {
		e.OccurredAt = now
	}
	e.CreatedAt = now
	if e.Source == "" {
		e.Source = SourcePayload
	}
	e.URI = StripQuery(e.URI)
	if r.NewID != nil {
		e.ID = r.NewID()
	} else {
		e.ID = newEventID()
	}
	return e, nil
}

const eventColumns = `id, consent_id, side, step, type, error, uri, platform, os, os_version, application_id, brand_id, source, occurred_at, created_at`

const (
	insertEventSQL = `INSERT INTO pcm_events (` + eventColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT (consent_id, step, type) DO NOTHING`
	eventByStepSQL = `SELECT ` + eventColumns + ` FROM pcm_events WHERE consent_id = $1 AND step = $2 AND type = $3`
)

func (r *Recorder) insertEvent(ctx context.Context, tx *sql.Tx, e *Event) (bool, error) {
	args := []any{e.ID, e.ConsentID, e.Side, e.Step, e.Type, e.Error, e.URI, e.Device.Platform, e.Device.OS, e.Device.OSVersion,
		e.ApplicationID, e.BrandID, e.Source, e.OccurredAt.UnixMilli(), e.CreatedAt.UnixMilli()}
	var res sql.Result
	var err error
	if r.DB == nil {
		res, err = tx.ExecContext(ctx, insertEventSQL, args...)
	} else {
		var st *sql.Stmt
		if st, err = r.DB.TxStmt(ctx, tx, insertEventSQL); err == nil {
			res, err = st.ExecContext(ctx, args...)
		}
	}
	if err != nil {
		return false, fmt.Errorf("pcm: store the %s step of %s: %w", e.Step, e.ConsentID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("pcm: store the %s step: %w", e.Step, err)
	}
	return n == 1, nil
}

func (r *Recorder) eventByStep(ctx context.Context, tx *sql.Tx, consentID, step, typ string) (*Event, error) {
	var row *sql.Row
	if r.DB == nil {
		row = tx.QueryRowContext(ctx, eventByStepSQL, consentID, step, typ)
	} else {
		st, err := r.DB.TxStmt(ctx, tx, eventByStepSQL)
		if err != nil {
			return nil, fmt.Errorf("pcm: read the stored %s step: %w", step, err)
		}
		row = st.QueryRowContext(ctx, consentID, step, typ)
	}
	e, err := scanEvent(row)
	if err != nil {
		return nil, fmt.Errorf("pcm: read the stored %s step: %w", step, err)
	}
	return e, nil
}

// rowScanner is a *sql.Row or a pgx.Row.
type rowScanner interface{ Scan(dest ...any) error }

func scanEvent(row rowScanner) (*Event, error) {
	var e Event
	var occurred, created int64
	err := row.Scan(&e.ID, &e.ConsentID, &e.Side, &e.Step, &e.Type, &e.Error, &e.URI, &e.Device.Platform, &e.Device.OS,
		&e.Device.OSVersion, &e.ApplicationID, &e.BrandID, &e.Source, &occurred, &created)
	if err != nil {
		return nil, err
	}
	e.OccurredAt, e.CreatedAt = time.UnixMilli(occurred).UTC(), time.UnixMilli(created).UTC()
	return &e, nil
}

// newEventID returns a UUIDv7: time-ordered, so a new event's entries in the
// primary keys of pcm_events and pcm_outbox go at their ends instead of on
// a random page each, which every commit would write whole to SQLite's WAL.
// (Migration 00015 says v4; ids of both versions live side by side.)
func newEventID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's random source does.
		return uuid.NewString()
	}
	return id.String()
}

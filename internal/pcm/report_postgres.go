package pcm

import (
	"context"
	"fmt"
	"time"
)

// OwnerRows is implemented by Owners that answer from Ponte's database.
// ConsentOwnerSQL is a query on $1, an application id, and $2, a consent
// id, that returns rows with a column brand_id exactly when ConsentOwner
// reports the consent the application's, the first row's brand_id being
// ConsentOwner's brand. The report API on PostgreSQL then runs it inside
// its one statement (reportPostgresSQL) instead of before it.
type OwnerRows interface {
	ConsentOwnerSQL() string
}

// reportPostgresSQL is a report on PostgreSQL as one statement, so one
// round trip: the ownership check (the owner query), the event
// (insertEventSQL's values: $3 the id, $2 the consent, $4–$11, $1 the
// application, the brand, $14–$16) and, when $21, its outbox row (enqueueSQL's
// values: $17 the endpoint, $18 the state, $19 the deadline, $20 the item)
// are written together, and nothing at all when the consent is not the
// application's. The brand is the owner's when $13 (an initiator's step),
// else $12. It answers whether the consent is the application's, whether
// the event was inserted (with the brand it got) and, when it was already
// stored, the stored event as the statement's snapshot shows it (absent
// when the first report committed only while this statement ran).
//
// Parameters in an INSERT … SELECT list take no type from their column, so
// every one is cast.
func reportPostgresSQL(owner string) string {
	return `WITH owner AS (SELECT true AS owned, brand_id FROM (` + owner + `) o LIMIT 1), ev AS (
	INSERT INTO pcm_events (` + eventColumns + `)
	SELECT $3::text, $2::text, $4::text, $5::text, $6::text, $7::text, $8::text, $9::text, $10::text, $11::text, $1::text,
		CASE WHEN $13::boolean THEN owner.brand_id ELSE $12::text END, $14::text, $15::bigint, $16::bigint FROM owner
	ON CONFLICT (consent_id, step, type) DO NOTHING
	RETURNING id, brand_id
), outbox AS (
	INSERT INTO pcm_outbox (event_id, endpoint, state, attempts, next_at, occurred_at, deadline_at, created_at, updated_at, item)
	SELECT id, $17::text, $18::text, 0, $16::bigint, $15::bigint, $19::bigint, $16::bigint, $16::bigint, $20::text FROM ev
	WHERE $21::boolean
)
SELECT coalesce(o.owned, false), e.id IS NOT NULL, e.brand_id,
	p.id, p.consent_id, p.side, p.step, p.type, p.error, p.uri, p.platform, p.os, p.os_version, p.application_id,
	p.brand_id, p.source, p.occurred_at, p.created_at
FROM (SELECT 1) one
LEFT JOIN owner o ON true
LEFT JOIN ev e ON true
LEFT JOIN pcm_events p ON e.id IS NULL AND o.owned AND p.consent_id = $2::text AND p.step = $5::text AND p.type = $6::text`
}

// reportPostgres stores the report's event e (stamped here) for the owner
// query owner in one round trip; a repeated report whose first event
// committed while the statement ran takes a second one to read it.
func (s *Service) reportPostgres(ctx context.Context, owner string, e Event) (*Event, bool, error) {
	r := s.Recorder
	e, err := r.stamp(e)
	if err != nil {
		return nil, false, err
	}
	endpoint, item, err := outboxItem(&e)
	if err != nil {
		return nil, false, err
	}
	var (
		owned, inserted bool
		brand           *string
		p               nullableEvent
	)
	err = s.DB.Pool().QueryRow(ctx, reportPostgresSQL(owner),
		e.ApplicationID, e.ConsentID, e.ID, e.Side, e.Step, e.Type, e.Error, e.URI, e.Device.Platform, e.Device.OS,
		e.Device.OSVersion, e.BrandID, e.Side == SideInitiator, e.Source, e.OccurredAt.UnixMilli(), e.CreatedAt.UnixMilli(),
		endpoint, OutboxPending, Deadline(e.OccurredAt).UnixMilli(), string(item), r.Outbox,
	).Scan(append([]any{&owned, &inserted, &brand}, p.dest()...)...)
	if err != nil {
		return nil, false, fmt.Errorf("pcm: store the %s step of %s: %w", e.Step, e.ConsentID, err)
	}
	switch {
	case !owned:
		return nil, false, ErrConsentNotFound
	case inserted:
		if brand != nil {
			e.BrandID = *brand
		}
		return &e, true, nil
	case p.id != nil:
		return p.event(), false, nil
	}
	stored, err := scanEvent(s.DB.Pool().QueryRow(ctx, eventByStepSQL, e.ConsentID, e.Step, e.Type))
	if err != nil {
		return nil, false, fmt.Errorf("pcm: read the stored %s step: %w", e.Step, err)
	}
	return stored, false, nil
}

// nullableEvent is an event's columns from an outer join: all NULL when
// there is no row.
type nullableEvent struct {
	id, consentID, side, step, typ, errorCode, uri, platform, os, osVersion, applicationID, brandID, source *string
	occurred, created                                                                                       *int64
}

func (n *nullableEvent) dest() []any {
	return []any{&n.id, &n.consentID, &n.side, &n.step, &n.typ, &n.errorCode, &n.uri, &n.platform, &n.os, &n.osVersion,
		&n.applicationID, &n.brandID, &n.source, &n.occurred, &n.created}
}

// event is the row as an Event; only for a row that exists (id not nil),
// whose columns are all NOT NULL.
func (n *nullableEvent) event() *Event {
	e := &Event{ID: *n.id, ConsentID: *n.consentID, Side: *n.side, Step: *n.step, Type: *n.typ, Error: *n.errorCode, URI: *n.uri,
		ApplicationID: *n.applicationID, BrandID: *n.brandID, Source: *n.source,
		OccurredAt: time.UnixMilli(*n.occurred).UTC(), CreatedAt: time.UnixMilli(*n.created).UTC()}
	e.Device.Platform, e.Device.OS, e.Device.OSVersion = *n.platform, *n.os, *n.osVersion
	return e
}

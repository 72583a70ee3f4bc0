package pcm

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/ofb"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Owners says whose a consent is: the application that created it at
// Ponte's holder side (payment, recurring and data consents), or the
// application Ponte initiated it for at a brand (then with that brand).
type Owners interface {
	ConsentOwner(ctx context.Context, applicationID, consentID string) (brandID string, ok bool, err error)
}

// Service takes partners' reports and answers the funnel.
type Service struct {
	DB       *store.DB
	Clock    clock.Clock
	Recorder *Recorder
	Owners   Owners
}

// Report validates and stores a partner's report of a step of one of its
// consents. A repeated report (same consent, step and type) returns the
// event stored first, with created false. Validation problems are returned
// with ErrInvalid; a consent that is not the caller's is ErrConsentNotFound.
//
// On PostgreSQL, with Owners that are OwnerRows and a Recorder without an
// AfterInsert hook, the ownership check, the event and its outbox row are
// one statement: one round trip (reportPostgres).
func (s *Service) Report(ctx context.Context, applicationID, consentID string, in ReportRequest) (*Event, bool, []Problem, error) {
	if !ValidateConsentID(consentID) {
		return nil, false, []Problem{{Field: "consentId", Message: "must be 1-256 characters without leading or trailing white space"}}, ErrInvalid
	}
	if ps := in.Validate(); len(ps) > 0 {
		return nil, false, ps, ErrInvalid
	}
	e := in.Event(consentID)
	e.ApplicationID, e.Source = applicationID, SourceAPI
	if rows, ok := s.Owners.(OwnerRows); ok && s.DB.Pool() != nil && s.Recorder.AfterInsert == nil {
		stored, created, err := s.reportPostgres(ctx, rows.ConsentOwnerSQL(), e)
		if err != nil {
			return nil, false, nil, err
		}
		return stored, created, nil, nil
	}
	brandID, ok, err := s.Owners.ConsentOwner(ctx, applicationID, consentID)
	if err != nil {
		return nil, false, nil, fmt.Errorf("pcm: owner of consent: %w", err)
	}
	if !ok {
		return nil, false, nil, ErrConsentNotFound
	}
	if e.Side == SideInitiator {
		e.BrandID = brandID
	}
	var stored *Event
	var created bool
	err = s.DB.Write(ctx, func(tx *sql.Tx) error {
		var err error
		stored, created, err = s.Recorder.Record(ctx, tx, e)
		return err
	})
	if err != nil {
		return nil, false, nil, err
	}
	return stored, created, nil, nil
}

// Events returns a consent's events in the order they happened.
func (s *Service) Events(ctx context.Context, consentID string) ([]Event, error) {
	rows, err := s.DB.Read().QueryContext(ctx, `SELECT `+eventColumns+` FROM pcm_events WHERE consent_id = $1 ORDER BY occurred_at`, consentID)
	if err != nil {
		return nil, fmt.Errorf("pcm: read events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var occurred, created int64
		if err := rows.Scan(&e.ID, &e.ConsentID, &e.Side, &e.Step, &e.Type, &e.Error, &e.URI, &e.Device.Platform, &e.Device.OS,
			&e.Device.OSVersion, &e.ApplicationID, &e.BrandID, &e.Source, &occurred, &created); err != nil {
			return nil, fmt.Errorf("pcm: read events: %w", err)
		}
		e.OccurredAt, e.CreatedAt = time.UnixMilli(occurred).UTC(), time.UnixMilli(created).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pcm: read events: %w", err)
	}
	// Steps of one instant come in journey order.
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].OccurredAt.Equal(out[j].OccurredAt) {
			return out[i].OccurredAt.Before(out[j].OccurredAt)
		}
		return slices.Index(Steps, out[i].Step) < slices.Index(Steps, out[j].Step)
	})
	return out, nil
}

// Query selects the consents a funnel counts (see Funnel). From is
// inclusive, To exclusive; empty strings match everything.
type Query struct {
	From, To time.Time
	Side     string
	BrandID  string
	Platform string
	OS       string
	// ApplicationID limits the funnel to one partner's events; "" (admin)
	// counts every partner's.
	ApplicationID string
	// ByDay adds the daily series.
	ByDay bool
	// Location is the time zone of the daily series' days; nil is UTC. Its
	// offsets must be whole hours (see bucketMS).
	Location *time.Location
}

// Reasons of the funnel query's problems, so a page can word them for
// people while the API keeps Message.
const (
	reasonDate     = "date"
	reasonOrder    = "order"
	reasonTooLong  = "too-long"
	reasonEnum     = "enum"
	reasonTooLarge = "too-large"
)

// ParseQuery reads a funnel query from URL values: from and to as dates
// (YYYY-MM-DD, UTC; to includes its day) or RFC 3339 instants (to
// exclusive), by default the 7 days up to now; side, brand, platform, os;
// groupBy=day.
func ParseQuery(get func(string) string, now time.Time) (Query, []Problem) {
	return ParseQueryIn(get, now, time.UTC)
}

// ParseQueryIn is ParseQuery with dates as days of loc (the query's
// Location).
func ParseQueryIn(get func(string) string, now time.Time, loc *time.Location) (Query, []Problem) {
	q := Query{Location: loc}
	var ps []Problem
	parse := func(name string, end bool) (time.Time, bool) {
		v := get(name)
		if v == "" {
			return time.Time{}, true
		}
		if d, err := time.ParseInLocation(dayLayout, v, loc); err == nil {
			if end {
				d = d.AddDate(0, 0, 1)
			}
			return d.UTC(), true
		}
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t.UTC(), true
		}
		ps = append(ps, Problem{Field: name, Message: "must be a date (YYYY-MM-DD) or an RFC 3339 date-time", reason: reasonDate})
		return time.Time{}, false
	}
	from, okFrom := parse("from", false)
	to, okTo := parse("to", true)
	if okTo && to.IsZero() {
		to = now.UTC().Truncate(time.Millisecond).Add(time.Millisecond)
	}
	if okFrom && from.IsZero() {
		from = to.Add(-defaultWindow)
	}
	switch {
	case !okFrom || !okTo:
	case !from.Before(to):
		ps = append(ps, Problem{Field: "from", Message: "must be before to", reason: reasonOrder})
	case to.Sub(from) > maxWindow:
		ps = append(ps, Problem{Field: "to", Message: "must be at most 366 days after from", reason: reasonTooLong})
	}
	q.From, q.To = from, to
	q.Side, q.BrandID, q.Platform, q.OS = get("side"), get("brand"), get("platform"), get("os")
	if q.Side != "" && !slices.Contains(Sides, q.Side) {
		ps = append(ps, Problem{Field: "side", Message: "must be one of " + strings.Join(Sides, ", "), reason: reasonEnum})
	}
	if q.Platform != "" && !slices.Contains(ofb.Platforms, q.Platform) {
		ps = append(ps, Problem{Field: "platform", Message: "must be one of " + strings.Join(ofb.Platforms, ", "), reason: reasonEnum})
	}
	if q.OS != "" && !slices.Contains(ofb.OSes, q.OS) {
		ps = append(ps, Problem{Field: "os", Message: "must be one of " + strings.Join(ofb.OSes, ", "), reason: reasonEnum})
	}
	if len(q.BrandID) > 100 {
		ps = append(ps, Problem{Field: "brand", Message: "must be at most 100 characters", reason: reasonTooLarge})
	}
	switch get("groupBy") {
	case "":
	case "day":
		q.ByDay = true
	default:
		ps = append(ps, Problem{Field: "groupBy", Message: "must be day", reason: reasonEnum})
	}
	return q, ps
}

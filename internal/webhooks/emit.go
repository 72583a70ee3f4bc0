package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/jobs"
)

// EnvelopeVersion is the "version" of every event envelope.
const EnvelopeVersion = "1.0"

// Event is something that happened to one partner application's resources,
// to be delivered to that application's matching subscriptions.
//
// Data and Metadata are sent to the partner as they are: the caller is
// responsible for keeping them thin — ids and statuses, never card numbers,
// card payloads, activation data, personal documents or secrets. Emit refuses
// data holding what looks like a card number (a 13–19 digit Luhn-valid number
// starting with 2–6, as payment cards do) as a last line of defence, not as a
// filter to rely on.
type Event struct {
	// ID is the event id: the webhook-id header and the envelope's
	// idempotencyKey, the same on every retry. Empty: a new UUID. Emitting an
	// ID already emitted records nothing new, so callers may derive it from
	// the state change (e.g. "ticket-used-<ticketId>") to make Emit idempotent.
	// At most 128 of [A-Za-z0-9_-] (no '.': Standard Webhooks signs id.timestamp.body).
	ID string
	// ApplicationID is the partner application (tenant) whose subscriptions
	// receive the event. Required.
	ApplicationID string
	// CompanyKey is the envelope's companyKey; empty: the application's.
	CompanyKey string
	// Context is the domain, e.g. "Card", "ConsentFlow". Required.
	Context string
	// Name is the event name, e.g. "CARD_WAS_ADDED_TO_WALLET". Required;
	// subscriptions filter on it.
	Name string
	// EntityID is the id of the resource the event is about (a card proxy, a
	// ticket id). Required.
	EntityID string
	// CorrelationID defaults to the x-correlation-id of the request in ctx,
	// else to the event id.
	CorrelationID string
	// Time is when it happened; zero: the Emitter's clock.
	Time time.Time
	// Metadata and Data are the envelope's objects (nil: {}).
	Metadata map[string]any
	Data     map[string]any
	// AccountNumbers are bank account numbers the caller put in Data on
	// purpose (a settlement request names both accounts). The card-number
	// guard skips exactly these runs of digits, since an account number may
	// happen to be 13–19 Luhn-valid digits, and still refuses anything else.
	AccountNumbers []string
}

// envelope is the body partners receive: Bankly's event shape.
type envelope struct {
	EntityID       string         `json:"entityId"`
	CompanyKey     string         `json:"companyKey"`
	Context        string         `json:"context"`
	Name           string         `json:"name"`
	IdempotencyKey string         `json:"idempotencyKey"`
	CorrelationID  string         `json:"correlationId"`
	Timestamp      string         `json:"timestamp"`
	Version        string         `json:"version"`
	Metadata       map[string]any `json:"metadata"`
	Data           map[string]any `json:"data"`
}

// timestampLayout is the envelope's timestamp: RFC 3339, UTC, milliseconds.
const timestampLayout = "2006-01-02T15:04:05.000Z07:00"

var eventIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// deliveryJob is the payload of a delivery job.
type deliveryJob struct {
	DeliveryID string `json:"deliveryId"`
}

// Emitter records events for delivery.
type Emitter struct {
	clock clock.Clock
}

// NewEmitter returns an Emitter using c for timestamps.
func NewEmitter(c clock.Clock) *Emitter {
	if c == nil {
		c = clock.System{}
	}
	return &Emitter{clock: c}
}

// Emit records ev and, for each enabled subscription of ev.ApplicationID
// whose filter matches ev.Name, a delivery and its job — all in tx, the
// caller's transaction, so the event exists exactly when the state change
// that caused it commits. An event no subscription wants is not stored.
// Emit uses only tx (never the pool) and returns an error for an invalid
// event or one carrying card-number-like data (ErrCardData).
func (e *Emitter) Emit(ctx context.Context, tx *sql.Tx, ev Event) error {
	return e.emit(ctx, tx, ev, map[string]*appEmit{})
}

// EmitAll is Emit for several events in one transaction (a worker's batch
// of status changes): each application's company key and subscriptions
// are read once for the call, not once per event. The first failing event
// fails the call.
func (e *Emitter) EmitAll(ctx context.Context, tx *sql.Tx, evs []Event) error {
	apps := map[string]*appEmit{}
	for _, ev := range evs {
		if err := e.emit(ctx, tx, ev, apps); err != nil {
			return err
		}
	}
	return nil
}

// appEmit is what emitting needs of an application, read once per call.
type appEmit struct {
	companyKey string
	unknown    bool // no such application
	subs       []*Subscription
}

func (e *Emitter) emit(ctx context.Context, tx *sql.Tx, ev Event, apps map[string]*appEmit) error {
	if err := ev.validate(); err != nil {
		return err
	}
	now := e.clock.Now()
	ev.fill(ctx, now)
	app := apps[ev.ApplicationID]
	if app == nil {
		app = &appEmit{}
		err := tx.QueryRowContext(ctx, `SELECT company_key FROM applications WHERE id = $1`, ev.ApplicationID).Scan(&app.companyKey)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			app.unknown = true
		case err != nil:
			return fmt.Errorf("webhooks: emit %s: read application: %w", ev.Name, err)
		}
		if app.subs, err = enabledSubscriptions(ctx, tx, ev.ApplicationID); err != nil {
			return err
		}
		apps[ev.ApplicationID] = app
	}
	if ev.CompanyKey == "" {
		if app.unknown {
			return fmt.Errorf("webhooks: emit %s: unknown application %q", ev.Name, ev.ApplicationID)
		}
		ev.CompanyKey = app.companyKey
	}
	env := envelope{
		EntityID: ev.EntityID, CompanyKey: ev.CompanyKey, Context: ev.Context, Name: ev.Name,
		IdempotencyKey: ev.ID, CorrelationID: ev.CorrelationID, Timestamp: ev.Time.UTC().Format(timestampLayout),
		Version: EnvelopeVersion, Metadata: ev.Metadata, Data: ev.Data,
	}
	if env.Metadata == nil {
		env.Metadata = map[string]any{}
	}
	if env.Data == nil {
		env.Data = map[string]any{}
	}
	body, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("webhooks: emit %s: encode: %w", ev.Name, err)
	}
	if containsCardNumber(body, ev.AccountNumbers...) {
		return fmt.Errorf("%w (event %s)", ErrCardData, ev.Name)
	}
	if len(body) > maxBodyBytes {
		return fmt.Errorf("webhooks: emit %s: body of %d bytes exceeds %d; send ids, not documents", ev.Name, len(body), maxBodyBytes)
	}

	var matching []*Subscription
	for _, s := range app.subs {
		if s.Matches(ev.Name) {
			matching = append(matching, s)
		}
	}
	if len(matching) == 0 {
		return nil
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO webhook_events (id, application_id, context, name, entity_id, body, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
		ev.ID, ev.ApplicationID, ev.Context, ev.Name, ev.EntityID, string(body), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("webhooks: emit %s: store event: %w", ev.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return nil // already emitted
	}
	for _, s := range matching {
		if err := insertDelivery(ctx, tx, now, ev.ApplicationID, s.ID, ev.ID); err != nil {
			return err
		}
	}
	return nil
}

// insertDelivery writes a pending delivery and enqueues its job.
func insertDelivery(ctx context.Context, tx *sql.Tx, now time.Time, applicationID, subscriptionID, eventID string) error {
	id := uuid.NewString()
	jobID, err := jobs.Enqueue(ctx, tx, now, jobs.Job{Kind: JobKind, Payload: deliveryJob{DeliveryID: id}, MaxAttempts: MaxAttempts})
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, application_id, subscription_id, event_id, job_id, status,
			attempts, next_attempt_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7, $7)`,
		id, applicationID, subscriptionID, eventID, jobID, StatusPending, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("webhooks: store delivery: %w", err)
	}
	return nil
}

func (ev *Event) validate() error {
	var problems []string
	if ev.ApplicationID == "" {
		problems = append(problems, "ApplicationID is required")
	}
	if !eventNamePattern.MatchString(ev.Name) {
		problems = append(problems, fmt.Sprintf("Name %q must be 1–100 of letters, digits, '_' or '.', starting with a letter", ev.Name))
	}
	if !eventNamePattern.MatchString(ev.Context) {
		problems = append(problems, fmt.Sprintf("Context %q must be 1–100 of letters, digits, '_' or '.', starting with a letter", ev.Context))
	}
	if ev.EntityID == "" || len(ev.EntityID) > 255 {
		problems = append(problems, "EntityID is required (at most 255 bytes)")
	}
	if ev.ID != "" && !eventIDPattern.MatchString(ev.ID) {
		problems = append(problems, "ID must be at most 128 of [A-Za-z0-9_-]")
	}
	if len(problems) > 0 {
		return fmt.Errorf("webhooks: invalid event: %v", problems)
	}
	return nil
}

// containsCardNumber reports whether b holds something shaped like a payment
// card number: a standalone run of 13–19 digits, either unbroken or grouped
// the way cards are printed (4-4-4-4[-3], 4-6-5, 4-6-4, with single spaces or
// dashes), starting with 2–6 and passing the Luhn check. Digits glued to
// letters (hex ids, tokens) are not standalone, UUIDs and dates do not group
// like cards, and numbers starting with 1 (Unix-millisecond timestamps) are
// left alone, so ordinary ids never trip it. A run equal to one of
// accounts, the bank account numbers the event declares, is not a card.
func containsCardNumber(b []byte, accounts ...string) bool {
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	isAlnum := func(c byte) bool { return isDigit(c) || (c|0x20) >= 'a' && (c|0x20) <= 'z' }
	var groups []int
	digits := make([]byte, 0, 32)
	for i := 0; i < len(b); {
		if !isDigit(b[i]) {
			i++
			continue
		}
		start, j := i, i
		digits, groups = digits[:0], groups[:0]
		group := 0
		for j < len(b) {
			if isDigit(b[j]) {
				digits = append(digits, b[j])
				group++
				j++
				continue
			}
			if (b[j] == ' ' || b[j] == '-') && j+1 < len(b) && isDigit(b[j+1]) {
				groups = append(groups, group)
				group = 0
				j++
				continue
			}
			break
		}
		groups = append(groups, group)
		standalone := (start == 0 || !isAlnum(b[start-1])) && (j == len(b) || !isAlnum(b[j]))
		if standalone && cardGrouping(groups) && len(digits) >= 13 && len(digits) <= 19 &&
			digits[0] >= '2' && digits[0] <= '6' && luhn(digits) && !slices.Contains(accounts, string(b[start:j])) {
			return true
		}
		i = j
	}
	return false
}

// cardGrouping reports whether digit groups are laid out as card numbers are printed.
func cardGrouping(groups []int) bool {
	if len(groups) == 1 {
		return true
	}
	eq := func(want ...int) bool {
		if len(groups) != len(want) {
			return false
		}
		for i := range want {
			if groups[i] != want[i] {
				return false
			}
		}
		return true
	}
	if eq(4, 6, 5) || eq(4, 6, 4) {
		return true
	}
	for i, g := range groups {
		if g != 4 && !(i == len(groups)-1 && g >= 1 && g <= 3) {
			return false
		}
	}
	return true
}

func luhn(digits []byte) bool {
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// fill gives ev the id, time and correlation id it was not given: a new
// id, now, and the request's correlation id (else the event's id). Emit and
// Statement both call it, so the two paths store the same event.
func (ev *Event) fill(ctx context.Context, now time.Time) {
	if ev.ID == "" {
		ev.ID = uuid.NewString()
	}
	if ev.Time.IsZero() {
		ev.Time = now
	}
	if ev.CorrelationID == "" {
		ev.CorrelationID = httpx.CorrelationID(ctx)
	}
	if ev.CorrelationID == "" {
		ev.CorrelationID = ev.ID
	}
}

package pcm

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/store"
)

// Outbox states: a row is PENDING until the PCM answers for its item.
const (
	OutboxPending  = "PENDING"
	OutboxAccepted = "ACCEPTED"
	OutboxRejected = "REJECTED"
)

// MaxBatch is the most items one hybrid-flow request carries (PCM v1.0.4:
// maxItems 1000).
const MaxBatch = 1000

// AtRiskWindow is how close to its deadline a pending item counts as at risk.
const AtRiskWindow = 2 * time.Hour

// endpoints maps each step to its PCM v1.0.4 hybrid-flow path under
// /report-api/v2/hybrid-flow/.
var endpoints = map[string]string{
	StepRedirectToServer:            "client/redirect-to-server",
	StepRedirectTarget:              "server/redirect-target",
	StepAuthenticated:               "server/authenticated",
	StepRedirectToClient:            "server/redirect-to-client",
	StepRedirectTargetWithErrors:    "client/redirect-target-with-errors",
	StepRedirectTargetWithoutErrors: "client/redirect-target-without-errors",
}

// HybridFlowPrefix is the path of the six hybrid-flow operations.
const HybridFlowPrefix = "/report-api/v2/hybrid-flow/"

// Endpoints lists the six endpoint paths (under HybridFlowPrefix) in journey order.
var Endpoints = func() []string {
	out := make([]string, 0, len(Steps))
	for _, s := range Steps {
		out = append(out, endpoints[s])
	}
	return out
}()

// EndpointOf returns the PCM endpoint path (under HybridFlowPrefix) of step.
func EndpointOf(step string) string { return endpoints[step] }

// saoPaulo is the regulator's time zone. Without tz data it falls back to
// UTC-3, which America/Sao_Paulo has kept all year since 2019.
var saoPaulo = func() *time.Location {
	if loc, err := time.LoadLocation("America/Sao_Paulo"); err == nil {
		return loc
	}
	return time.FixedZone("-03", -3*60*60)
}()

// Deadline is when the PCM stops taking a hybrid-flow report of an event at
// t: 08:00 (America/Sao_Paulo) of the next day.
func Deadline(t time.Time) time.Time {
	l := t.In(saoPaulo)
	return time.Date(l.Year(), l.Month(), l.Day()+1, 8, 0, 0, 0, saoPaulo).UTC()
}

const enqueueSQL = `INSERT INTO pcm_outbox (event_id, endpoint, state, attempts, next_at, occurred_at, deadline_at, created_at, updated_at, item)
	VALUES ($1, $2, $3, 0, $4, $5, $6, $4, $4, $7)`

// Enqueue writes the outbox row of a newly recorded event inside tx, the
// event's transaction: it fits Recorder.AfterInsert (Recorder.Outbox does
// the same, and lets the report API take one round trip on PostgreSQL).
func Enqueue(ctx context.Context, tx *sql.Tx, e *Event) error {
	return enqueue(ctx, nil, tx, e)
}

// EnqueueIn is Enqueue with its statement prepared once on db, the
// database of the transactions it is handed.
func EnqueueIn(db *store.DB) func(ctx context.Context, tx *sql.Tx, e *Event) error {
	return func(ctx context.Context, tx *sql.Tx, e *Event) error { return enqueue(ctx, db, tx, e) }
}

func enqueue(ctx context.Context, db *store.DB, tx *sql.Tx, e *Event) error {
	ep, item, err := outboxItem(e)
	if err != nil {
		return err
	}
	now := e.CreatedAt.UnixMilli()
	args := []any{e.ID, ep, OutboxPending, now, e.OccurredAt.UnixMilli(), Deadline(e.OccurredAt).UnixMilli(), string(item)}
	if db == nil {
		_, err = tx.ExecContext(ctx, enqueueSQL, args...)
	} else {
		var st *sql.Stmt
		if st, err = db.TxStmt(ctx, tx, enqueueSQL); err == nil {
			_, err = st.ExecContext(ctx, args...)
		}
	}
	if err != nil {
		return fmt.Errorf("pcm: outbox row of event %s: %w", e.ID, err)
	}
	return nil
}

// outboxItem is e's outbox endpoint and item column.
func outboxItem(e *Event) (endpoint string, item []byte, err error) {
	endpoint = EndpointOf(e.Step)
	if endpoint == "" {
		return "", nil, fmt.Errorf("pcm: outbox: unknown step %q", e.Step)
	}
	if item, err = encodeItem(e); err != nil {
		return "", nil, fmt.Errorf("pcm: outbox row of event %s: %w", e.ID, err)
	}
	return endpoint, item, nil
}

// Item is one hybrid-flow report as the PCM v1.0.4 schemas name its
// fields. Empty optional fields are left out; Platform is absent from
// server/redirect-target, which has no such field.
type Item struct {
	ConsentID                string `json:"consentId"`
	Timestamp                string `json:"timestamp"`
	Platform                 string `json:"platform,omitempty"`
	OS                       string `json:"os"`
	OSVersion                string `json:"osVersion"`
	URIAuthorizationEndpoint string `json:"uriAuthorizationEndpoint,omitempty"`
	URICallback              string `json:"uri_callback,omitempty"`
	Type                     string `json:"type,omitempty"`
	Error                    string `json:"error,omitempty"`
	ClientOrgID              string `json:"clientOrgId,omitempty"`
	ServerOrgID              string `json:"serverOrgId,omitempty"`
}

// encodeItem is the outbox's item column: e's item without an organisation
// id (the forwarder appends it, see withOrg).
func encodeItem(e *Event) ([]byte, error) {
	return json.Marshal(ItemOf(e, ""))
}

// orgField is the JSON member the forwarder appends to every item of
// endpoint: `,"clientOrgId":"…"` (client/… endpoints, initiator steps) or
// `,"serverOrgId":"…"` (server/…, holder steps); empty without an orgID.
// An item ends with the member appended is byte for byte what
// json.Marshal(ItemOf(e, orgID)) writes, as both fields come last.
func orgField(endpoint, orgID string) []byte {
	if orgID == "" {
		return nil
	}
	q, _ := json.Marshal(orgID)
	name := `,"serverOrgId":`
	if strings.HasPrefix(endpoint, "client/") {
		name = `,"clientOrgId":`
	}
	return append([]byte(name), q...)
}

// withOrg appends the orgField member to an encoded item (an object).
func withOrg(dst, item, org []byte) []byte {
	if len(org) == 0 || len(item) < 2 {
		return append(dst, item...)
	}
	dst = append(dst, item[:len(item)-1]...)
	dst = append(dst, org...)
	return append(dst, '}')
}

// ItemOf renders e as its PCM item; orgID goes into clientOrgId (initiator
// steps) or serverOrgId (holder steps).
func ItemOf(e *Event, orgID string) Item {
	it := Item{ConsentID: e.ConsentID, Timestamp: e.OccurredAt.UTC().Format(timestampLayout),
		Platform: e.Device.Platform, OS: e.Device.OS, OSVersion: e.Device.OSVersion, Type: e.Type, Error: e.Error}
	switch specs[e.Step].uri {
	case "uriAuthorizationEndpoint":
		it.URIAuthorizationEndpoint = e.URI
	case "uri_callback":
		it.URICallback = e.URI
	}
	if e.Step == StepRedirectTarget {
		it.Platform = ""
	}
	if SideOf(e.Step) == SideInitiator {
		it.ClientOrgID = orgID
	} else {
		it.ServerOrgID = orgID
	}
	return it
}

// OutboxStatus counts outbox rows.
type OutboxStatus struct {
	Pending  int64 `json:"pending"`
	Accepted int64 `json:"accepted"`
	Rejected int64 `json:"rejected"`
	// AtRisk counts pending items within AtRiskWindow of their deadline
	// (or past it).
	AtRisk int64 `json:"atRisk"`
	// OldestPending is the time of the oldest pending event (zero if none).
	OldestPending time.Time `json:"oldestPending,omitzero"`
	// NextDeadline is the earliest deadline of a pending item (zero if none).
	NextDeadline time.Time `json:"nextDeadline,omitzero"`
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Status counts the outbox's rows by state at now.
func Status(ctx context.Context, q queryer, now time.Time) (OutboxStatus, error) {
	var st OutboxStatus
	var pending, atRisk sql.NullInt64
	var oldest, deadline sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT
			SUM(CASE WHEN state = $1 THEN 1 ELSE 0 END),
			SUM(CASE WHEN state = $2 THEN 1 ELSE 0 END),
			SUM(CASE WHEN state = $3 THEN 1 ELSE 0 END),
			SUM(CASE WHEN state = $1 AND deadline_at <= $4 THEN 1 ELSE 0 END),
			MIN(CASE WHEN state = $1 THEN occurred_at END),
			MIN(CASE WHEN state = $1 THEN deadline_at END)
		FROM pcm_outbox`, OutboxPending, OutboxAccepted, OutboxRejected, now.Add(AtRiskWindow).UnixMilli()).
		Scan(&pending, (*nullCount)(&st.Accepted), (*nullCount)(&st.Rejected), &atRisk, &oldest, &deadline)
	if err != nil {
		return st, fmt.Errorf("pcm: outbox status: %w", err)
	}
	st.Pending, st.AtRisk = pending.Int64, atRisk.Int64
	if oldest.Valid {
		st.OldestPending = time.UnixMilli(oldest.Int64).UTC()
	}
	if deadline.Valid {
		st.NextDeadline = time.UnixMilli(deadline.Int64).UTC()
	}
	return st, nil
}

// nullCount scans a SUM that is NULL over no rows as 0.
type nullCount int64

func (n *nullCount) Scan(v any) error {
	var x sql.NullInt64
	if err := x.Scan(v); err != nil {
		return err
	}
	*n = nullCount(x.Int64)
	return nil
}

// Replay puts the REJECTED items of events that occurred in [from, to) back
// to PENDING, due at now, after the cause of their rejection is fixed. An
// empty endpoint matches every endpoint. It returns how many it re-queued.
func Replay(ctx context.Context, tx *sql.Tx, now, from, to time.Time, endpoint string) (int64, error) {
	res, err := tx.ExecContext(ctx, `UPDATE pcm_outbox SET state = $1, next_at = $2, updated_at = $2, lease = NULL,
			settled_at = NULL, last_error = CASE WHEN reason = '' THEN last_error ELSE 'replayed after: ' || reason END, reason = ''
		WHERE state = $3 AND occurred_at >= $4 AND occurred_at < $5 AND ($6 = '' OR endpoint = $6)`,
		OutboxPending, now.UnixMilli(), OutboxRejected, from.UnixMilli(), to.UnixMilli(), endpoint)
	if err != nil {
		return 0, fmt.Errorf("pcm: replay: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("pcm: replay: %w", err)
	}
	return n, nil
}

// OutboxRow is one outbox row, for operators and tests.
type OutboxRow struct {
	EventID, Endpoint, State    string
	Attempts                    int
	ReportID, Reason, LastError string
	OccurredAt, Deadline        time.Time
}

// OutboxRows lists the rows of the outbox (for tests and the CLI; ordered
// by event time, then id).
func OutboxRows(ctx context.Context, db *sql.DB) ([]OutboxRow, error) {
	rows, err := db.QueryContext(ctx, `SELECT event_id, endpoint, state, attempts, report_id, reason, last_error, occurred_at, deadline_at
		FROM pcm_outbox ORDER BY occurred_at, event_id`)
	if err != nil {
		return nil, fmt.Errorf("pcm: outbox rows: %w", err)
	}
	defer rows.Close()
	var out []OutboxRow
	for rows.Next() {
		var r OutboxRow
		var occ, dl int64
		if err := rows.Scan(&r.EventID, &r.Endpoint, &r.State, &r.Attempts, &r.ReportID, &r.Reason, &r.LastError, &occ, &dl); err != nil {
			return nil, fmt.Errorf("pcm: outbox rows: %w", err)
		}
		r.OccurredAt, r.Deadline = time.UnixMilli(occ).UTC(), time.UnixMilli(dl).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// outcome is the PCM's answer for one item, as the outcome update takes it.
type outcome struct {
	ID       string `json:"i"`
	State    string `json:"s"`
	ReportID string `json:"r"`
	Reason   string `json:"x"`
}

package itp

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/store"
)

// TimeLayout is the Open Keys timestamp: RFC 3339, UTC, milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

func formatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

// ---- brands ----

const brandColumns = `id, name, logo_url, issuer, discovery_url, api_base_url, client_id, signing_key_file,
	mtls_cert_file, mtls_key_file, enabled, created_at, updated_at, organisation_id`

const (
	selectBrandSQL         = `SELECT ` + brandColumns + ` FROM itp_brands WHERE id = $1`
	selectBrandByIssuerSQL = `SELECT ` + brandColumns + ` FROM itp_brands WHERE issuer = $1`
	listBrandsSQL          = `SELECT ` + brandColumns + ` FROM itp_brands ORDER BY created_at, id`
	disableBrandSQL        = `UPDATE itp_brands SET enabled = 0, updated_at = $1 WHERE id = $2`
	brandOrganisationSQL   = `UPDATE itp_brands SET organisation_id = $1, updated_at = $2 WHERE id = $3`
)

type scanner interface{ Scan(dest ...any) error }

func scanBrand(row scanner) (*Brand, error) {
	var (
		b                Brand
		enabled          int
		created, updated int64
	)
	err := row.Scan(&b.ID, &b.Name, &b.LogoURL, &b.Issuer, &b.DiscoveryURL, &b.APIBaseURL, &b.ClientID, &b.SigningKeyFile,
		&b.MTLSCertFile, &b.MTLSKeyFile, &enabled, &created, &updated, &b.OrganisationID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrBrandNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("itp: read brand: %w", err)
	}
	b.Enabled, b.CreatedAt, b.UpdatedAt = enabled == 1, ms(created), ms(updated)
	return &b, nil
}

func insertBrand(ctx context.Context, tx *sql.Tx, b *Brand) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO itp_brands (`+brandColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		b.ID, b.Name, b.LogoURL, b.Issuer, b.DiscoveryURL, b.APIBaseURL, b.ClientID, b.SigningKeyFile,
		b.MTLSCertFile, b.MTLSKeyFile, boolInt(b.Enabled), b.CreatedAt.UnixMilli(), b.UpdatedAt.UnixMilli(), b.OrganisationID)
	if err != nil {
		return fmt.Errorf("itp: insert brand: %w", err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ---- journeys ----

const journeyColumns = `id, alias, name, brand_ids, application_ids, settings, created_at, updated_at`

const (
	// selectJourneySQL finds a journey by id or by alias.
	selectJourneySQL = `SELECT ` + journeyColumns + ` FROM itp_journeys WHERE id = $1 OR alias = $1`
	listJourneysSQL  = `SELECT ` + journeyColumns + ` FROM itp_journeys ORDER BY created_at, id`

	upsertApplicationSettingSQL = `INSERT INTO itp_application_settings (application_id, key, value, updated_at)
	VALUES ($1, $2, $3, $4) ON CONFLICT (application_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`
	selectApplicationSettingSQL = `SELECT value FROM itp_application_settings WHERE application_id = $1 AND key = $2`
)

func scanJourney(row scanner) (*Journey, error) {
	var (
		j                      Journey
		brands, apps, settings string
		created, updated       int64
	)
	err := row.Scan(&j.ID, &j.Alias, &j.Name, &brands, &apps, &settings, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrJourneyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("itp: read journey: %w", err)
	}
	if err := errors.Join(json.Unmarshal([]byte(brands), &j.BrandIDs), json.Unmarshal([]byte(apps), &j.ApplicationIDs),
		json.Unmarshal([]byte(settings), &j.Settings)); err != nil {
		return nil, fmt.Errorf("itp: decode journey %s: %w", j.ID, err)
	}
	j.CreatedAt, j.UpdatedAt = ms(created), ms(updated)
	return &j, nil
}

func insertJourney(ctx context.Context, tx *sql.Tx, j *Journey) error {
	brands, _ := json.Marshal(orEmpty(j.BrandIDs))
	apps, _ := json.Marshal(orEmpty(j.ApplicationIDs))
	settings, err := json.Marshal(orEmpty(j.Settings))
	if err != nil {
		return fmt.Errorf("itp: encode journey settings: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO itp_journeys (`+journeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		j.ID, j.Alias, j.Name, string(brands), string(apps), string(settings), j.CreatedAt.UnixMilli(), j.UpdatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("itp: insert journey: %w", err)
	}
	return nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ---- sessions ----

const sessionColumns = `id, application_id, application_client_id, journey_id, token_id, token_hash, status,
	redirect_url, brand_id, external_id, consent_id, settings, tags, status_history, expires_at, created_at, updated_at`

const insertSessionSQL = `INSERT INTO itp_journey_sessions (` + sessionColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`

const selectSessionSQL = `SELECT ` + sessionColumns + ` FROM itp_journey_sessions WHERE id = $1`

const externalIDTakenSQL = `SELECT 1 FROM itp_journey_sessions WHERE application_id = $1 AND external_id = $2`

// createSessionPostgres returns a journey-session create on PostgreSQL as
// one statement, so one round trip: the session ($3–$19, insertSessionSQL's
// values), its scalar tags (the arrays $20 and $21) and its expiry job
// (insertExpireJobSQL's row, $22–$29) are written together, and only while
// unchanged, a query on $1 and $2 (see ApplicationRows), returns a row: the
// application the rules were checked against, perhaps a cached read of it,
// is still so. A taken externalId inserts nothing instead of failing. It
// answers whether the application matched and whether the session was
// inserted: matched but not inserted is a taken externalId.
//
// Parameters in an INSERT … SELECT list take no type from their column, so
// the non-text ones are cast.
func createSessionPostgres(unchanged string) string {
	return `WITH app AS (` + unchanged + `), s AS (
	INSERT INTO itp_journey_sessions (` + sessionColumns + `)
	SELECT $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17::bigint, $18::bigint, $19::bigint
	WHERE EXISTS (SELECT 1 FROM app)
	ON CONFLICT (application_id, external_id) WHERE external_id IS NOT NULL DO NOTHING
	RETURNING id
), t AS (
	INSERT INTO itp_journey_session_tags (session_id, key, value)
	SELECT s.id, tag.key, tag.value FROM s, unnest($20::text[], $21::text[]) AS tag (key, value)
), j AS (
	INSERT INTO jobs (id, kind, payload, unique_key, state, attempt, max_attempts, run_at, created_at, updated_at)
	SELECT $22, $23, $24, $25, $26, 0, $27::integer, $28::bigint, $29::bigint, $29::bigint FROM s
	ON CONFLICT (unique_key) DO NOTHING
)
SELECT EXISTS (SELECT 1 FROM app), EXISTS (SELECT 1 FROM s)`
}

// anyApplicationSQL is the unchanged query of Applications that are not
// ApplicationRows: their application is read afresh for every create, so
// there is nothing to check again.
const anyApplicationSQL = `SELECT 1 WHERE $1::text IS NOT NULL AND $2::text IS NOT NULL`

// transitionSQL writes a status change ($1) with the session's consent,
// brand and history, only if the session ($6) still has the status read ($7).
const transitionSQL = `UPDATE itp_journey_sessions SET status = $1, consent_id = $2, brand_id = $3,
	status_history = $4, updated_at = $5 WHERE id = $6 AND status = $7`

// listSessionsQuery is ListSessions' query on engine e: the application's
// sessions matching f, newest first, limit+1 of them (the extra one says
// whether there is a next page).
func listSessionsQuery(e store.Engine, applicationID string, f ListFilter, limit int) (string, []any, error) {
	p := store.NewParams(e)
	where := []string{"application_id = " + p.Add(applicationID)}
	if len(f.Statuses) > 0 {
		statuses := make([]any, len(f.Statuses))
		for i, st := range f.Statuses {
			statuses[i] = string(st)
		}
		where = append(where, "status IN ("+p.List(statuses...)+")")
	}
	if f.ExternalID != "" {
		where = append(where, "external_id = "+p.Add(f.ExternalID))
	}
	if f.BrandID != "" {
		where = append(where, "brand_id = "+p.Add(f.BrandID))
	}
	if f.TagKey != "" {
		where = append(where, "id IN (SELECT session_id FROM itp_journey_session_tags WHERE key = "+p.Add(f.TagKey)+" AND value = "+p.Add(f.TagValue)+")")
	}
	if f.CreatedFrom != nil {
		where = append(where, "created_at >= "+p.Add(f.CreatedFrom.UnixMilli()))
	}
	if f.CreatedTo != nil {
		where = append(where, "created_at < "+p.Add(f.CreatedTo.UnixMilli()))
	}
	if f.Cursor != "" {
		at, id, err := DecodeCursor(f.Cursor)
		if err != nil {
			return "", nil, err
		}
		where = append(where, "(created_at < "+p.Add(at)+" OR (created_at = "+p.Add(at)+" AND id < "+p.Add(id)+"))")
	}
	q := `SELECT ` + sessionColumns + ` FROM itp_journey_sessions WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY created_at DESC, id DESC LIMIT ` + p.Add(limit+1)
	return q, p.Args(), nil
}

// historyEntry is statusHistory as stored and served: compact JSON whose
// last byte is the closing bracket, so expiry can append to it in SQL.
type historyEntry struct {
	UpdatedAt string `json:"updatedAt"`
	Status    Status `json:"status"`
}

func encodeHistory(h []StatusChange) string {
	out := make([]historyEntry, len(h))
	for i, c := range h {
		out[i] = historyEntry{UpdatedAt: formatTime(c.UpdatedAt), Status: c.Status}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// historySuffix is what expiry appends to a stored statusHistory in SQL:
// substr(h, 1, length(h) - 1) || historySuffix(now, EXPIRED).
func historySuffix(at time.Time, st Status) string {
	b, _ := json.Marshal(historyEntry{UpdatedAt: formatTime(at), Status: st})
	return "," + string(b) + "]"
}

func decodeHistory(s string) ([]StatusChange, error) {
	var in []historyEntry
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, err
	}
	out := make([]StatusChange, len(in))
	for i, e := range in {
		t, err := time.Parse(TimeLayout, e.UpdatedAt)
		if err != nil {
			return nil, err
		}
		out[i] = StatusChange{UpdatedAt: t, Status: e.Status}
	}
	return out, nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// encodedSession is a new session's JSON columns, encoded once for the
// insert and for the create response.
type encodedSession struct {
	settings, tags, history []byte
}

func encodeSession(s *Session) (*encodedSession, error) {
	settings, err := httpx.Marshal(orEmpty(s.Settings))
	if err != nil {
		return nil, fmt.Errorf("itp: encode session settings: %w", err)
	}
	tags := s.Tags
	if tags == nil {
		tags = map[string]any{}
	}
	tagsJSON, err := httpx.Marshal(tags)
	if err != nil {
		return nil, fmt.Errorf("itp: encode session tags: %w", err)
	}
	return &encodedSession{settings: settings, tags: tagsJSON, history: []byte(encodeHistory(s.StatusHistory))}, nil
}

// args are insertSessionSQL's arguments.
func (e *encodedSession) args(s *Session) []any {
	return []any{s.ID, s.ApplicationID, s.ApplicationClientID, s.JourneyID, s.TokenID, s.tokenHash, string(s.Status),
		nullString(s.RedirectURL), nullString(s.BrandID), nullString(s.ExternalID), nullString(s.ConsentID),
		string(e.settings), string(e.tags), string(e.history),
		s.ExpiresAt.UnixMilli(), s.CreatedAt.UnixMilli(), s.UpdatedAt.UnixMilli()}
}

func scanSession(row scanner) (*Session, error) {
	var (
		s                                  Session
		status, settings, tags, history    string
		redirect, brand, external, consent sql.NullString
		expires, created, updated          int64
	)
	err := row.Scan(&s.ID, &s.ApplicationID, &s.ApplicationClientID, &s.JourneyID, &s.TokenID, &s.tokenHash, &status,
		&redirect, &brand, &external, &consent, &settings, &tags, &history, &expires, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("itp: read journey session: %w", err)
	}
	s.Status = Status(status)
	s.RedirectURL, s.BrandID, s.ExternalID, s.ConsentID = redirect.String, brand.String, external.String, consent.String
	if err := json.Unmarshal([]byte(settings), &s.Settings); err != nil {
		return nil, fmt.Errorf("itp: decode session %s settings: %w", s.ID, err)
	}
	if s.Tags, err = decodeTags([]byte(tags)); err != nil {
		return nil, fmt.Errorf("itp: decode session %s tags: %w", s.ID, err)
	}
	if s.StatusHistory, err = decodeHistory(history); err != nil {
		return nil, fmt.Errorf("itp: decode session %s status history: %w", s.ID, err)
	}
	s.ExpiresAt, s.CreatedAt, s.UpdatedAt = ms(expires), ms(created), ms(updated)
	return &s, nil
}

// scalarTags returns the top-level tags with a string, number or boolean
// value, as the text the list filter tag=key:value compares with.
func scalarTags(tags map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range tags {
		switch v := v.(type) {
		case string:
			out[k] = v
		case bool:
			out[k] = strconv.FormatBool(v)
		case json.Number:
			out[k] = v.String()
		case float64:
			out[k] = strconv.FormatFloat(v, 'f', -1, 64)
		}
	}
	return out
}

// maxPreparedTags is the most tags insertTags inserts with a prepared
// statement (one per count); more are rare and parsed each time.
const maxPreparedTags = 8

func (s *Service) insertTags(ctx context.Context, tx *sql.Tx, sessionID string, tags map[string]string) error {
	if len(tags) == 0 {
		return nil
	}
	var b strings.Builder
	p := store.NewParams(s.DB.Engine())
	b.WriteString(`INSERT INTO itp_journey_session_tags (session_id, key, value) VALUES `)
	for k, v := range tags {
		if p.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(" + p.List(sessionID, k, v) + ")")
	}
	args := p.Args()
	var err error
	if len(tags) <= maxPreparedTags {
		var st *sql.Stmt
		if st, err = s.DB.TxStmt(ctx, tx, b.String()); err == nil {
			_, err = st.ExecContext(ctx, args...)
		}
	} else {
		_, err = tx.ExecContext(ctx, b.String(), args...)
	}
	if err != nil {
		return fmt.Errorf("itp: insert session tags: %w", err)
	}
	return nil
}

// insertExpireJobSQL is jobs.Enqueue's insert (see enqueueExpire).
const insertExpireJobSQL = `INSERT INTO jobs (id, kind, payload, unique_key, state, attempt, max_attempts, run_at, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $8) ON CONFLICT (unique_key) DO NOTHING`

// expireOneSQL moves session $4 to EXPIRED if it can still expire and is due
// at $3, appending $2 to its statusHistory: one conditional UPDATE, so the
// expiry job, Sweep and verify-expired write it once between them.
const expireOneSQL = `UPDATE itp_journey_sessions SET status = 'EXPIRED', updated_at = $1,
	status_history = substr(status_history, 1, length(status_history) - 1) || $2
	WHERE id = $4 AND status IN ('PENDING', 'AWAITING_AUTHORISATION') AND expires_at <= $3`

// sweepSQLite and sweepPostgres expire up to $4 due sessions at once.
const sweepSQLite = `UPDATE itp_journey_sessions SET status = 'EXPIRED', updated_at = $1,
	status_history = substr(status_history, 1, length(status_history) - 1) || $2
	WHERE id IN (SELECT id FROM itp_journey_sessions
		WHERE status IN ('PENDING', 'AWAITING_AUTHORISATION') AND expires_at <= $3 LIMIT $4)`

// On PostgreSQL the due rows are picked in expiry order through the partial
// index and updated by their physical address (a TID scan): joining them back
// by id made the planner hash the whole table on every batch. Concurrent
// sweepers (several instances) skip each other's rows instead of queueing
// behind them; the outer conditions are rechecked on a row a transition
// changed meanwhile.
const sweepPostgres = `UPDATE itp_journey_sessions SET status = 'EXPIRED', updated_at = $1,
	status_history = substr(status_history, 1, length(status_history) - 1) || $2
	WHERE ctid = ANY(ARRAY(SELECT ctid FROM itp_journey_sessions
		WHERE status IN ('PENDING', 'AWAITING_AUTHORISATION') AND expires_at <= $3
		ORDER BY expires_at LIMIT $4 FOR UPDATE SKIP LOCKED))
	AND status IN ('PENDING', 'AWAITING_AUTHORISATION') AND expires_at <= $3`

// decodeTags decodes a tags object keeping numbers as written (json.Number).
func decodeTags(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var tags map[string]any
	if err := dec.Decode(&tags); err != nil {
		return nil, err
	}
	return tags, nil
}

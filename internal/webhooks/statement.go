package webhooks

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/ponte-ofb/ponte/internal/jobs"
)

// Expr is an SQL expression of type text that stands, in an Event given to
// Statement, for a value the database supplies while the statement runs
// (a column of the row the event is about).
type Expr string

// StatementEmit is what Statement returns: Emit as part of one PostgreSQL
// statement.
type StatementEmit struct {
	// CTEs are data-modifying common table expressions ("name AS (...)",
	// comma-separated) to add to the statement's WITH clause, after the
	// CTE they read from. Their names start with "wh_".
	CTEs string
	// Args are their arguments, numbered from the first placeholder
	// Statement was given.
	Args []any
	// Check is an expression the statement's final SELECT must evaluate. It
	// fails the whole statement with SQLSTATE 22P02 (GuardSQLState) when a
	// value from the database may hold a card number, or the body is too
	// large, or the application is unknown: the caller then emits through
	// Emit in a transaction, whose exact checks decide.
	Check string
}

// GuardSQLState is the SQLSTATE with which StatementEmit.Check fails a
// statement (invalid_text_representation).
const GuardSQLState = "22P02"

// SuspectPattern matches, in one value, every run containsCardNumber could
// take for a card, and more: the statement path leaves the exact decision
// (grouping, at most 19 digits, Luhn, account exceptions) to Emit. It keeps
// that rule's cheap parts so that ids rarely trip it: a run of 13 digits or
// more, singly separated by spaces or dashes, starting with 2–6, with no
// letter or digit on either side. (A random UUID tripped the looser
// "13 digits" pattern a few times in a hundred, sending every redemption of
// that client's tickets to the transaction.) Written for both Go's RE2 and
// PostgreSQL's regular expressions; TestSuspectPatternCoversCardNumbers
// holds it to being a superset.
const SuspectPattern = `(^|[^0-9A-Za-z])[2-6]([ -]?[0-9]){12,}([^0-9A-Za-z]|$)`

// Statement returns what Emit does, as CTEs for one PostgreSQL statement
// (the one-round-trip hot paths of issue 17): for the row of from (a CTE
// or table name holding zero or one row), record ev and, for each enabled
// subscription of the application whose filter matches ev.Name, a delivery
// and its job. applicationID is the application's id as an expression over
// from; ev.ApplicationID is not used. Values of ev.Data may be Expr. When
// ev.CompanyKey is empty it is the application's, read by the statement.
// first is the number of the first placeholder the CTEs may use. Only one
// event per statement.
//
// The body is the one Emit would store, byte for byte: the database writes
// its values as JSON strings the way encoding/json does.
func (e *Emitter) Statement(ctx context.Context, ev Event, applicationID Expr, from string, first int) (StatementEmit, error) {
	ev.ApplicationID = string(applicationID)
	if err := ev.validate(); err != nil {
		return StatementEmit{}, err
	}
	now := e.clock.Now()
	ev.fill(ctx, now)

	// The body is encoded here with a placeholder string for each value
	// the database supplies, then cut around the placeholders: the
	// statement joins the pieces with those values written as JSON.
	mark, err := sentinelPrefix()
	if err != nil {
		return StatementEmit{}, err
	}
	var fromDB []string // SQL text expressions, in sentinel order
	sentinel := func(expr string) string {
		fromDB = append(fromDB, expr)
		return mark + strconv.Itoa(len(fromDB)-1) + "z"
	}
	companyKey := ev.CompanyKey
	if companyKey == "" {
		companyKey = sentinel(`(SELECT company_key FROM applications WHERE id = ` + string(applicationID) + `)`)
	}
	data := make(map[string]any, len(ev.Data))
	for k, v := range ev.Data {
		if x, ok := v.(Expr); ok {
			v = sentinel(string(x))
		}
		data[k] = v
	}
	env := envelope{
		EntityID: ev.EntityID, CompanyKey: companyKey, Context: ev.Context, Name: ev.Name,
		IdempotencyKey: ev.ID, CorrelationID: ev.CorrelationID, Timestamp: ev.Time.UTC().Format(timestampLayout),
		Version: EnvelopeVersion, Metadata: ev.Metadata, Data: data,
	}
	if env.Metadata == nil {
		env.Metadata = map[string]any{}
	}
	body, err := json.Marshal(env)
	if err != nil {
		return StatementEmit{}, fmt.Errorf("webhooks: emit %s: encode: %w", ev.Name, err)
	}
	// What Go wrote is checked here; what the database supplies, by Check.
	if containsCardNumber(body, ev.AccountNumbers...) {
		return StatementEmit{}, fmt.Errorf("%w (event %s)", ErrCardData, ev.Name)
	}

	var args []any
	arg := func(v any, typ string) string {
		args = append(args, v)
		return "$" + strconv.Itoa(first+len(args)-1) + "::" + typ
	}
	var (
		bodySQL []string
		suspect []string
		rest    = body
	)
	quoted := []byte(`"` + mark)
	for {
		i := bytes.Index(rest, quoted)
		if i < 0 {
			break
		}
		end := bytes.IndexByte(rest[i+len(quoted):], 'z')
		if end < 0 {
			return StatementEmit{}, fmt.Errorf("webhooks: emit %s: cut body: unterminated placeholder", ev.Name)
		}
		n, err := strconv.Atoi(string(rest[i+len(quoted) : i+len(quoted)+end]))
		if err != nil || n >= len(fromDB) {
			return StatementEmit{}, fmt.Errorf("webhooks: emit %s: cut body: bad placeholder", ev.Name)
		}
		bodySQL = append(bodySQL, arg(string(rest[:i]), "text"), jsonString(fromDB[n]))
		suspect = append(suspect, `(`+fromDB[n]+`) ~ '`+SuspectPattern+`'`)
		rest = rest[i+len(quoted)+end+2:] // past the placeholder's 'z' and closing quote
	}
	bodySQL = append(bodySQL, arg(string(rest), "text"))
	if len(suspect) == 0 {
		suspect = []string{"false"}
	}

	now64 := arg(now.UnixMilli(), "bigint")
	var b strings.Builder
	// wh_body: the row's application and body (NULL for an unknown
	// application), and whether a database value might be a card number.
	fmt.Fprintf(&b, `wh_body AS (SELECT %s AS application_id, %s AS body, (%s) AS suspect FROM %s),
`, applicationID, strings.Join(bodySQL, " || "), strings.Join(suspect, " OR "), from)
	// wh_subs: the subscriptions Subscription.Matches would pick.
	fmt.Fprintf(&b, `wh_subs AS (SELECT s.id FROM webhook_subscriptions s, wh_body b
	WHERE s.application_id = b.application_id AND s.deleted_at IS NULL AND s.disabled = 0
	AND (s.events::jsonb IN ('[]'::jsonb, 'null'::jsonb) OR s.events::jsonb @> jsonb_build_array(%s))),
`, arg(ev.Name, "text"))
	// wh_event: stored only when a subscription wants it, once per id.
	fmt.Fprintf(&b, `wh_event AS (INSERT INTO webhook_events (id, application_id, context, name, entity_id, body, created_at)
	SELECT %s, b.application_id, %s, %s, %s, b.body, %s FROM wh_body b WHERE EXISTS (SELECT 1 FROM wh_subs)
	ON CONFLICT (id) DO NOTHING RETURNING id, application_id),
`, arg(ev.ID, "text"), arg(ev.Context, "text"), arg(ev.Name, "text"), arg(ev.EntityID, "text"), now64)
	// wh_new: one delivery and its job per subscription, as insertDelivery
	// writes them (a CTE with volatile functions is computed once).
	b.WriteString(`wh_new AS (SELECT gen_random_uuid()::text AS id, gen_random_uuid()::text AS job_id,
	s.id AS subscription_id, e.id AS event_id, e.application_id FROM wh_subs s, wh_event e),
`)
	fmt.Fprintf(&b, `wh_jobs AS (INSERT INTO jobs (id, kind, payload, unique_key, state, attempt, max_attempts, run_at, created_at, updated_at)
	SELECT n.job_id, %s, '{"deliveryId":"' || n.id || '"}', NULL, %s, 0, %s, %[4]s, %[4]s, %[4]s FROM wh_new n),
`, arg(JobKind, "text"), arg(jobs.StateAvailable, "text"), arg(MaxAttempts, "integer"), now64)
	fmt.Fprintf(&b, `wh_deliveries AS (INSERT INTO webhook_deliveries (id, application_id, subscription_id, event_id, job_id, status,
		attempts, next_attempt_at, created_at, updated_at)
	SELECT n.id, n.application_id, n.subscription_id, n.event_id, n.job_id, %s, 0, %[2]s, %[2]s, %[2]s FROM wh_new n)`,
		arg(StatusPending, "text"), now64)

	// substr(b.body, 1, 0) keeps the cast from being folded at planning time.
	check := fmt.Sprintf(`(SELECT CASE WHEN b.body IS NULL OR b.suspect OR octet_length(b.body) > %d
		THEN CAST(concat(substr(b.body, 1, 0), 'webhooks: emit in a transaction') AS integer) ELSE 0 END FROM wh_body b)`, maxBodyBytes)
	return StatementEmit{CTEs: b.String(), Args: args, Check: check}, nil
}

// jsonString writes the SQL text expression x as encoding/json writes a
// string: PostgreSQL's to_json escapes '"', '\\' and control characters as
// Go does (\b \f \n \r \t, else \u00xx); Go also escapes '<', '>', '&',
// U+2028 and U+2029.
func jsonString(x string) string {
	return `replace(replace(replace(replace(replace(to_json((` + x + `)::text)::text, '&', '\u0026'), '<', '\u003c'), '>', '\u003e'), chr(8232), '\u2028'), chr(8233), '\u2029')`
}

// sentinelPrefix is a random string no event value holds, of letters only
// so the card-number check never trips on it.
func sentinelPrefix() (string, error) {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("webhooks: random: %w", err)
	}
	for i := range b {
		b[i] = 'a' + b[i]%25 // never 'z', which ends a placeholder
	}
	return "ponteSQL" + string(b[:]) + "n", nil
}

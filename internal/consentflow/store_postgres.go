package consentflow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/idempotency"
)

// PostgreSQL's paths of the ticket hot paths (issue 17 §2): each is one
// statement on the native pool, so one round trip, where database/sql's
// transaction took BEGIN, each statement and COMMIT. SQLite keeps the
// transactions of service.go, and so do the rare paths here.

// insertTicketPostgres is insertTicket as one statement of its own; with
// check, the statement also checks the requestUri and inserts only what it
// accepts: verdict is then the check's (a Verdict constant).
func insertTicketPostgres(ctx context.Context, pool *pgxpool.Pool, t *Ticket, key string, check *requestURICheck) (inserted bool, verdict string, _ error) {
	args := []any{t.TicketID, t.ApplicationID, t.CompanyKey, t.DocumentNumber, t.RequestURI, t.ClientID, t.Status,
		t.CreatedAt.UnixMilli(), t.UpdatedAt.UnixMilli(), t.ExpiresAt.UnixMilli(), nullable(key)}
	if check == nil {
		tag, err := pool.Exec(ctx, insertTicketSQL, args...)
		if err != nil {
			return false, "", fmt.Errorf("holder: insert ticket: %w", err)
		}
		if tag.RowsAffected() == 0 && key == "" {
			return false, "", errors.New("holder: insert ticket: ticket id already taken")
		}
		return tag.RowsAffected() == 1, VerdictAccepted, nil
	}
	// The check's CTE is read twice and computed once.
	query := `WITH checked AS (SELECT (` + check.expr + `)::text AS verdict),
inserted AS (` + insertTicketSelect + ` AND (SELECT verdict FROM checked) = '` + VerdictAccepted + `'
	ON CONFLICT DO NOTHING RETURNING 1)
SELECT EXISTS (SELECT 1 FROM inserted), (SELECT verdict FROM checked)`
	var v *string
	if err := pool.QueryRow(ctx, query, append(args, check.args...)...).Scan(&inserted, &v); err != nil {
		return false, "", fmt.Errorf("holder: insert ticket: %w", err)
	}
	if v == nil {
		return false, "", errors.New("holder: insert ticket: the requestUri check answered nothing")
	}
	if !inserted && key == "" && *v == VerdictAccepted {
		return false, "", errors.New("holder: insert ticket: ticket id already taken")
	}
	return inserted, *v, nil
}

// createPostgres creates a ticket in one round trip: the insert, with the
// requestUri check (check; nil for the sandbox's, which reads nothing) as
// part of its statement. A key that is taken costs a second one, the read
// of what holds it: the same request's ticket or stored answer (a replay),
// or another request's (ErrKeyReused). A key held by a ticket past the
// key's TTL, or freed between the two, goes to createTx. A refused
// requestUri is answered by the statement's verdict (with a key, after the
// read that shows the key is not a replay's, as createTx answers a replay
// before it checks); a verdict the statement leaves to Go goes to createTx.
//
// No advisory lock is taken (idempotency.Lock): two tickets with one key
// meet on the key's unique index, the second waiting for the first to end.
// So a key used at the same instant by a ticket and by another route
// (idempotency.RunPostgres, which takes none either) may be taken by both;
// one used after the other is refused.
func (s *Tickets) createPostgres(ctx context.Context, p *httpx.Principal, in CreateTicket, key, route string, t *Ticket, now time.Time, check *requestURICheck) (Created, error) {
	pool := s.db.Pool()
	inserted, verdict, err := insertTicketPostgres(ctx, pool, t, key, check)
	switch {
	case err != nil:
		return Created{}, err
	case inserted:
		return Created{Ticket: t}, nil
	case verdict == VerdictInTransaction:
		return s.createTx(ctx, p, in, key, route, t, now)
	}
	if key != "" {
		out, decided, err := replayPostgres(ctx, pool, p, in, key, route, now)
		if err != nil || decided {
			return out, err
		}
	}
	switch verdict {
	case VerdictNotFound:
		return Created{}, ErrRequestURINotFound
	case VerdictMismatch:
		return Created{}, ErrDocumentMismatch
	}
	return s.createTx(ctx, p, in, key, route, t, now)
}

// replayPostgres reads, in one query, what holds a taken key, in the order
// createTx looks: a live record in idempotency_records, then a ticket.
// decided is false when neither answers (createTx then does).
func replayPostgres(ctx context.Context, pool *pgxpool.Pool, p *httpx.Principal, in CreateTicket, key, route string, now time.Time) (_ Created, decided bool, _ error) {
	var (
		fingerprint, body *string
		status            *int
		ticketID          *string
		created, updated  *int64
		expiresAt         *int64
		appID, company    *string
		document, uri     *string
		client, tstatus   *string
	)
	err := pool.QueryRow(ctx, `SELECT r.fingerprint, r.status_code, r.body, `+prefixed("t.", ticketColumns)+`
		FROM (SELECT 1) one
		LEFT JOIN idempotency_records r ON r.application_id = $1 AND r.idempotency_key = $2 AND r.expires_at > $3
		LEFT JOIN consent_flow_tickets t ON t.application_id = $1 AND t.idempotency_key = $2`,
		p.ApplicationID, key, now.UnixMilli()).Scan(&fingerprint, &status, &body,
		&ticketID, &appID, &company, &document, &uri, &client, &tstatus, &created, &updated, &expiresAt)
	if err != nil {
		return Created{}, false, fmt.Errorf("holder: read idempotency key: %w", err)
	}
	if fingerprint != nil {
		// Only this rare path needs the request's fingerprint.
		method, _, _ := strings.Cut(route, " ")
		fp, err := idempotency.Fingerprint(method, route, in)
		if err != nil {
			return Created{}, false, err
		}
		if *fingerprint != fp {
			return Created{}, true, idempotency.ErrKeyReused
		}
		return Created{Stored: &idempotency.Response{Status: *status, Body: []byte(*body), Replayed: true}, Replayed: true}, true, nil
	}
	if ticketID == nil {
		return Created{}, false, nil
	}
	prev := Ticket{TicketID: *ticketID, ApplicationID: *appID, CompanyKey: *company, DocumentNumber: *document,
		RequestURI: *uri, ClientID: *client, Status: *tstatus,
		CreatedAt: time.UnixMilli(*created).UTC(), UpdatedAt: time.UnixMilli(*updated).UTC(), ExpiresAt: time.UnixMilli(*expiresAt).UTC()}
	if !prev.CreatedAt.Add(idempotency.TTL).After(now) {
		return Created{}, false, nil // expired but still held: createTx frees it
	}
	// The fingerprint was the route and these three fields.
	if prev.RequestURI != in.RequestURI || prev.ClientID != in.ClientID || prev.DocumentNumber != in.DocumentNumber {
		return Created{}, true, idempotency.ErrKeyReused
	}
	return Created{Ticket: asCreated(&prev), Replayed: true}, true, nil
}

func prefixed(prefix, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = prefix + c
	}
	return strings.Join(cols, ", ")
}

// errEmitInTransaction is the ticket event's Check failing the statement:
// the redemption goes to redeemTx, where EmitTicketEvent decides.
var errEmitInTransaction = errors.New("holder: the ticket event is emitted in a transaction")

// redeemSQL turns the ticket USED, finds its interaction (the whole row,
// which the WebView's page shows) and opens the session, as redeemTx does,
// in one statement; the ticket event's CTEs follow. The final row is the
// ticket as it was before the statement (none: not found) and whether this
// statement redeemed it.
const redeemSQL = `WITH redeemed AS (UPDATE consent_flow_tickets SET status = $1::text, updated_at = $2::bigint
	WHERE ticket_id = $3::text AND status = $4::text AND expires_at > $5::bigint RETURNING ` + ticketColumns + `),
journey AS (SELECT h.* FROM holder_interactions h, redeemed r
	WHERE h.application_id = r.application_id
	AND h.request_uri = CASE WHEN starts_with(r.request_uri, $6::text) THEN r.request_uri ELSE $6::text || r.request_uri END
	AND h.client_id = r.client_id AND h.status IN ($7::text, $8::text) AND h.expires_at > $5::bigint
	ORDER BY h.created_at DESC LIMIT 1),
opened AS (INSERT INTO holder_sessions (id_hash, ticket_id, created_at, expires_at, interaction_id)
	SELECT $9::text, r.ticket_id, $5::bigint, $10::bigint, (SELECT id FROM journey) FROM redeemed r RETURNING interaction_id)`

// redeemArgs is the number of redeemSQL's arguments.
const redeemArgs = 10

// redeemPostgres is redeemTx as one statement, one round trip. Of
// concurrent redemptions one wins the row; the others, waiting on its
// lock, find it no longer UNUSED and redeem nothing. events may be nil.
func (s *Tickets) redeemPostgres(ctx context.Context, pool *pgxpool.Pool, events EventStatement, ticketID string, now time.Time, sess *Session) (*Ticket, error) {
	updated := now.Truncate(time.Second).UnixMilli()
	args := []any{TicketUsed, updated, ticketID, TicketUnused, now.UnixMilli(),
		RequestURIPrefix, InteractionPending, InteractionAuthenticated, hashToken(sess.Token), sess.ExpiresAt.UnixMilli()}
	query, check := redeemSQL, ""
	if events != nil {
		ev, err := events.TicketEventSQL(ctx, EventTicketUsed, &Ticket{TicketID: ticketID, Status: TicketUsed}, "redeemed", redeemArgs+1)
		if err != nil {
			return nil, err
		}
		query += ",\n" + ev.CTEs
		args = append(args, ev.Args...)
		check = ", " + ev.Check
	}
	names := ", NULL::text, NULL::text"
	if s.names != nil {
		names = ", " + s.names.InitiatorNameSQL("t.client_id") + ", " + s.names.PartnerNameSQL("t.application_id")
	}
	query += "\nSELECT EXISTS (SELECT 1 FROM redeemed), " + prefixed("t.", ticketColumns) +
		", (SELECT interaction_id FROM opened)" + names + ", " + prefixed("j.", interactionColumns) + check +
		"\nFROM consent_flow_tickets t LEFT JOIN journey j ON true WHERE t.ticket_id = $3::text"

	var (
		redeemed    bool
		t           Ticket
		c, u, e     int64
		interaction *string
		initiator   *string
		partner     *string
		guard       *int
	)
	var journey interactionRow
	dest := []any{&redeemed, &t.TicketID, &t.ApplicationID, &t.CompanyKey, &t.DocumentNumber, &t.RequestURI, &t.ClientID, &t.Status,
		&c, &u, &e, &interaction, &initiator, &partner}
	dest = append(dest, journey.dest()...)
	if check != "" {
		dest = append(dest, &guard)
	}
	err := pool.QueryRow(ctx, query, args...).Scan(dest...)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "22P02" && events != nil:
		return nil, errEmitInTransaction
	case errors.Is(err, pgx.ErrNoRows):
		return nil, ErrTicketNotFound
	case err != nil:
		return nil, fmt.Errorf("holder: redeem ticket: %w", err)
	}
	t.CreatedAt, t.UpdatedAt, t.ExpiresAt = time.UnixMilli(c).UTC(), time.UnixMilli(u).UTC(), time.UnixMilli(e).UTC()
	if !redeemed {
		// The row as the statement found it: one UNUSED and live then was
		// redeemed by a concurrent request this one waited for.
		if t.Status == TicketUsed || t.ExpiresAt.After(now) {
			return nil, ErrTicketUsed
		}
		return nil, ErrTicketExpired
	}
	t.Status, t.UpdatedAt = TicketUsed, time.UnixMilli(updated).UTC()
	if interaction != nil {
		sess.InteractionID = *interaction
		// The row the statement found, as the page would read it after.
		it, err := journey.interaction()
		if err != nil {
			return nil, err
		}
		sess.Interaction = it
	}
	if s.names != nil {
		sess.NamesRead = true
		if initiator != nil {
			sess.Initiator = *initiator
		}
		if partner != nil {
			sess.Partner = *partner
		}
	}
	return &t, nil
}

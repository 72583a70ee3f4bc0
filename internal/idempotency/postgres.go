package idempotency

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Claimed names, in a Query, the CTE that claims the request's key: it
// returns one row when this request took the key (or carries none) and no
// row when the key is someone else's. An effect's writes select FROM it, so
// they happen exactly when the claim does.
const Claimed = "claimed"

// Query is the one statement of an idempotent effect on PostgreSQL, built by
// RunPostgres and the effect together: the key's claim (Claimed) and the
// effect's writes as data-modifying CTEs, sent with any statements that
// must come before it in one pipelined batch, which PostgreSQL runs as one
// implicit transaction: one round trip, all or nothing.
type Query struct {
	guard  string // RunPostgresIf's condition, in parentheses
	args   []any
	ctes   []string
	before []pending
	unique []uniqueError
}

type pending struct {
	sql  string
	args []any
}

type uniqueError struct {
	table string
	err   error
}

// Arg adds v to the statement's arguments and returns its placeholder.
func (q *Query) Arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

// Args adds values to the statement's arguments and lists their
// placeholders, comma-separated: a row for INSERT … SELECT.
func (q *Query) Args(values ...any) string {
	var b strings.Builder
	for i, v := range values {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(q.Arg(v))
	}
	return b.String()
}

// With adds the CTE name AS (sql) to the statement; sql's placeholders come
// from Arg. Every CTE runs, referenced or not.
func (q *Query) With(name, sql string) {
	q.ctes = append(q.ctes, name+" AS ("+sql+")")
}

// Enqueue adds, as CTE name, jobs.Enqueue's insert of j, made only when the
// statement claims its idempotency key.
func (q *Query) Enqueue(name string, now time.Time, j jobs.Job) error {
	stmt, err := jobs.EnqueueQuery(now, j, Claimed, q.Arg)
	if err != nil {
		return err
	}
	q.With(name, stmt)
	return nil
}

// Before sends sql (its own placeholders, $1…) ahead of the statement in the
// same batch: a write the statement's CTEs must see done, which one
// statement cannot promise (its CTEs share one snapshot).
func (q *Query) Before(sql string, args ...any) {
	q.before = append(q.before, pending{sql: sql, args: args})
}

// OnUniqueViolation makes a unique violation on table fail the whole batch
// with err: how an effect refuses (nothing is written) when one of its own
// rows is taken, for instance a jti already used.
func (q *Query) OnUniqueViolation(table string, err error) {
	q.unique = append(q.unique, uniqueError{table: table, err: err})
}

func (q *Query) statement() string {
	return "WITH " + strings.Join(q.ctes, ",\n") + "\nSELECT (SELECT count(*) FROM " + Claimed + "), " + q.guard
}

// ticketHolds is the condition, on the key's application ($a) and key ($k)
// and the oldest creation time still live ($t), that a consent-flow ticket
// holds the key in its own row (see heldByTicket).
func ticketHolds(a, k, t string) string {
	return `EXISTS (SELECT 1 FROM consent_flow_tickets WHERE application_id = ` + a + ` AND idempotency_key = ` + k +
		` AND created_at > ` + t + `)`
}

// RunPostgres is Run on PostgreSQL in one round trip: effect adds its
// writes to q as CTEs that select FROM Claimed, and the claim of the key
// (inserting its record with resp, or taking over one past its TTL), the
// effect and the record commit in one statement. A replay of a known key,
// or a key used with another request, takes a second round trip, a read of
// the stored record: the stored response with Replayed set, or
// ErrKeyReused (also for a key a consent-flow ticket holds).
//
// A concurrent request with the same key waits on the record's unique index
// until the first one ends, then replays its committed answer (or claims the
// key, if the first one rolled back). Unlike Run it takes no advisory lock,
// so a key used at the same instant by a consent-flow ticket and by this
// route may be taken by both; one used after the other is refused.
//
// It needs db.Pool(), so PostgreSQL only; SQLite keeps Run.
func RunPostgres(ctx context.Context, db *store.DB, req Request, resp Response, effect func(q *Query) error) (Response, error) {
	return RunPostgresIf(ctx, db, req, resp, nil, effect)
}

// ErrGuardFailed is RunPostgresIf's answer when its guard was false:
// nothing was written and no stored answer was read.
var ErrGuardFailed = errors.New("idempotency: the statement's guard did not hold; nothing written")

// RunPostgresIf is RunPostgres whose statement claims the key, and so
// writes anything, only if guard (a boolean SQL expression, its arguments
// through q; nil: true) holds in the statement's snapshot: a check that
// what the request was decided on (a cached read) is still so. When it does
// not, nothing is written and the answer is ErrGuardFailed. A replay or a
// reused key is answered only after the guard held.
func RunPostgresIf(ctx context.Context, db *store.DB, req Request, resp Response, guard func(q *Query) string,
	effect func(q *Query) error) (Response, error) {
	pool := db.Pool()
	if pool == nil {
		return Response{}, errors.New("idempotency: RunPostgres needs PostgreSQL's native pool")
	}
	// A key the effect found taken by someone else is read back; a read that
	// finds nothing (the record expired or the ticket went between the two
	// round trips) claims again, which cannot go on for long.
	for range 3 {
		q := &Query{guard: "true"}
		if guard != nil {
			q.guard = "(" + guard(q) + ")"
		}
		if req.Key == "" {
			q.With(Claimed, "SELECT 1 WHERE "+q.guard)
		} else {
			now := q.Arg(req.Now.UnixMilli())
			a, k := q.Arg(req.ApplicationID), q.Arg(req.Key)
			q.With(Claimed, `INSERT INTO idempotency_records
				(application_id, idempotency_key, fingerprint, status_code, body, created_at, expires_at)
				SELECT `+a+`, `+k+`, `+q.Arg(req.Fingerprint)+`, `+q.Arg(resp.Status)+`, `+q.Arg(string(resp.Body))+`, `+now+`, `+
				q.Arg(req.Now.Add(TTL).UnixMilli())+`
				WHERE `+q.guard+` AND NOT `+ticketHolds(a, k, q.Arg(req.Now.Add(-TTL).UnixMilli()))+`
				ON CONFLICT (application_id, idempotency_key) DO UPDATE SET fingerprint = excluded.fingerprint,
				status_code = excluded.status_code, body = excluded.body, created_at = excluded.created_at, expires_at = excluded.expires_at
				WHERE idempotency_records.expires_at <= `+now+`
				RETURNING 1`)
		}
		if err := effect(q); err != nil {
			return Response{}, err
		}
		claimed, held, err := q.send(ctx, pool)
		if err != nil {
			return Response{}, err
		}
		if claimed {
			return resp, nil
		}
		if !held {
			return Response{}, ErrGuardFailed
		}
		stored, found, err := readStored(ctx, pool, req)
		if err != nil || found {
			return stored, err
		}
	}
	return Response{}, errors.New("idempotency: key neither claimed nor stored after three tries")
}

// send runs q (after its Before statements) and reports whether the key
// was claimed and whether the guard held.
func (q *Query) send(ctx context.Context, pool *pgxpool.Pool) (claimed, held bool, err error) {
	var n int64
	if len(q.before) == 0 {
		if err := pool.QueryRow(ctx, q.statement(), q.args...).Scan(&n, &held); err != nil {
			return false, false, q.failure(err)
		}
		return n == 1, held, nil
	}
	b := &pgx.Batch{}
	for _, p := range q.before {
		b.Queue(p.sql, p.args...)
	}
	b.Queue(q.statement(), q.args...)
	res := pool.SendBatch(ctx, b)
	for range q.before {
		if _, err := res.Exec(); err != nil {
			_ = res.Close()
			return false, false, q.failure(err)
		}
	}
	err = res.QueryRow().Scan(&n, &held)
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, false, q.failure(err)
	}
	return n == 1, held, nil
}

// failure maps a unique violation the effect declared to its error.
func (q *Query) failure(err error) error {
	var pgErr *pgconn.PgError
	if store.IsUniqueViolation(err) && errors.As(err, &pgErr) {
		for _, u := range q.unique {
			if pgErr.TableName == u.table {
				return u.err
			}
		}
	}
	return fmt.Errorf("idempotency: claim key and write: %w", err)
}

// readStored reads, after a claim that did not take the key, why: a ticket
// holding it or a record with another fingerprint (ErrKeyReused), or the
// record of the same request (its response, found).
func readStored(ctx context.Context, pool *pgxpool.Pool, req Request) (Response, bool, error) {
	var (
		held              bool
		fingerprint, body *string
		status            *int
	)
	err := pool.QueryRow(ctx, `SELECT `+ticketHolds("$1", "$2", "$3")+`, r.fingerprint, r.status_code, r.body
		FROM (SELECT 1) one LEFT JOIN idempotency_records r
		ON r.application_id = $1 AND r.idempotency_key = $2 AND r.expires_at > $4`,
		req.ApplicationID, req.Key, req.Now.Add(-TTL).UnixMilli(), req.Now.UnixMilli()).Scan(&held, &fingerprint, &status, &body)
	switch {
	case err != nil:
		return Response{}, false, fmt.Errorf("idempotency: read key: %w", err)
	case held:
		return Response{}, false, ErrKeyReused
	case fingerprint == nil:
		return Response{}, false, nil
	case *fingerprint != req.Fingerprint:
		return Response{}, false, ErrKeyReused
	}
	return Response{Status: *status, Body: []byte(*body), Replayed: true}, true, nil
}

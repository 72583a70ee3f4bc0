// Package idempotency stores responses under a client's idempotency key so a
// retried request gets the first answer, byte for byte, instead of a second
// effect. The record is written in the same transaction as the effect itself:
// there is never an effect without its record, nor a record without its effect.
package idempotency

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/store"
)

// TTL is how long a key is remembered.
const TTL = 24 * time.Hour

// MaxKeyLength bounds the idempotency key a client may send.
const MaxKeyLength = 128

// ErrKeyReused means the key was already used with a different request.
var ErrKeyReused = errors.New("idempotency key reused with a different request")

// Response is a stored (or fresh) response.
type Response struct {
	Status   int
	Body     []byte
	Replayed bool
}

// Request identifies one idempotent call.
type Request struct {
	ApplicationID string
	Key           string // empty: no idempotency, just run
	// Fingerprint distinguishes "the same request" from "another request with
	// the same key"; see Fingerprint.
	Fingerprint string
	Now         time.Time
}

// Fingerprint hashes what makes two requests the same: method, route and the
// canonical (re-encoded) request body.
func Fingerprint(method, route string, canonicalBody any) (string, error) {
	b, err := json.Marshal(canonicalBody)
	if err != nil {
		return "", fmt.Errorf("idempotency: fingerprint: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", method, route)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Run makes effect happen at most once per (application, key) within TTL,
// in one database transaction with the record of its response. The response
// is known before the transaction (resp), so the record is written complete
// in one statement. If effect returns an error nothing is stored and the key
// stays free. A replay of a known key returns the stored response with
// Replayed set; a known key with another fingerprint returns ErrKeyReused.
func Run(ctx context.Context, db *store.DB, req Request, resp Response, effect func(tx *sql.Tx) error) (Response, error) {
	var out Response
	err := db.Write(ctx, func(tx *sql.Tx) error {
		out = resp
		if req.Key != "" {
			stored, found, err := claim(ctx, db, tx, req, resp)
			if err != nil {
				return err
			}
			if found {
				out = stored
				return nil
			}
		}
		return effect(tx)
	})
	if err != nil {
		return Response{}, err
	}
	return out, nil
}

// Within is Run for a route whose answer is decided inside the transaction
// (a payment's 201, or a 422 the specification says to keep): in the
// caller's tx it locks req's key and replays a live record (ErrKeyReused
// for another fingerprint, or for a key a consent-flow ticket holds), or
// calls decide and, when decide says keep, records its answer; a record
// past its TTL that no sweep removed yet is replaced. With no key it just
// calls decide. An error from decide records nothing (the caller's
// transaction rolls back).
func Within(ctx context.Context, db *store.DB, tx *sql.Tx, req Request, decide func() (resp Response, keep bool, err error)) (Response, error) {
	if req.Key == "" {
		resp, _, err := decide()
		return resp, err
	}
	if err := Lock(ctx, db, tx, req.ApplicationID, req.Key); err != nil {
		return Response{}, err
	}
	if held, err := heldByTicket(ctx, db, tx, req); err != nil || held {
		if err == nil {
			err = ErrKeyReused
		}
		return Response{}, err
	}
	stored, found, err := Lookup(ctx, db, tx, req)
	if err != nil || found {
		return stored, err
	}
	resp, keep, err := decide()
	if err != nil || !keep {
		return resp, err
	}
	st, err := db.TxStmt(ctx, tx, `INSERT INTO idempotency_records
		(application_id, idempotency_key, fingerprint, status_code, body, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (application_id, idempotency_key) DO UPDATE SET fingerprint = excluded.fingerprint,
		status_code = excluded.status_code, body = excluded.body, created_at = excluded.created_at, expires_at = excluded.expires_at
		WHERE idempotency_records.expires_at <= $6`)
	if err != nil {
		return Response{}, err
	}
	if _, err := st.ExecContext(ctx, req.ApplicationID, req.Key, req.Fingerprint, resp.Status, string(resp.Body),
		req.Now.UnixMilli(), req.Now.Add(TTL).UnixMilli()); err != nil {
		return Response{}, fmt.Errorf("idempotency: record answer: %w", err)
	}
	return resp, nil
}

// Encode is the JSON body of a response, for Run, written as httpx.Marshal
// writes it (URLs not HTML-escaped).
func Encode(status int, v any) (Response, error) {
	body, err := httpx.Marshal(v)
	if err != nil {
		return Response{}, fmt.Errorf("idempotency: encode response: %w", err)
	}
	return Response{Status: status, Body: body}, nil
}

const insertRecord = `INSERT INTO idempotency_records
	(application_id, idempotency_key, fingerprint, status_code, body, created_at, expires_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`

// claim inserts the key's record with its response, or returns the stored
// response if the key is known. On PostgreSQL a concurrent claim of the same
// key waits here until the first transaction ends, then sees its committed
// response.
func claim(ctx context.Context, db *store.DB, tx *sql.Tx, req Request, resp Response) (Response, bool, error) {
	if err := Lock(ctx, db, tx, req.ApplicationID, req.Key); err != nil {
		return Response{}, false, err
	}
	// A key is one per application across routes: one a ticket holds in its
	// own row is taken, as if its record were here (with another route's
	// fingerprint, so the request is another one).
	if held, err := heldByTicket(ctx, db, tx, req); err != nil || held {
		if err == nil {
			err = ErrKeyReused
		}
		return Response{}, false, err
	}
	now := req.Now.UnixMilli()
	insert := func() (bool, error) {
		st, err := db.TxStmt(ctx, tx, insertRecord)
		if err != nil {
			return false, err
		}
		res, err := st.ExecContext(ctx, req.ApplicationID, req.Key, req.Fingerprint, resp.Status, string(resp.Body),
			now, req.Now.Add(TTL).UnixMilli())
		if err != nil {
			return false, fmt.Errorf("idempotency: claim key: %w", err)
		}
		n, err := res.RowsAffected()
		return n == 1, err
	}
	ok, err := insert()
	if err != nil || ok {
		return Response{}, false, err
	}
	var (
		fingerprint, body string
		status            int
		expiresAt         int64
	)
	err = tx.QueryRowContext(ctx, `SELECT fingerprint, status_code, body, expires_at FROM idempotency_records
		WHERE application_id = $1 AND idempotency_key = $2`, req.ApplicationID, req.Key).
		Scan(&fingerprint, &status, &body, &expiresAt)
	if err != nil {
		return Response{}, false, fmt.Errorf("idempotency: read key: %w", err)
	}
	if expiresAt <= now {
		// Expired but not yet swept: the key is free again.
		if _, err := tx.ExecContext(ctx, `DELETE FROM idempotency_records WHERE application_id = $1 AND idempotency_key = $2`,
			req.ApplicationID, req.Key); err != nil {
			return Response{}, false, fmt.Errorf("idempotency: drop expired key: %w", err)
		}
		ok, err := insert()
		if err == nil && !ok {
			err = errors.New("idempotency: expired key reclaimed concurrently")
		}
		return Response{}, false, err
	}
	if fingerprint != req.Fingerprint {
		return Response{}, false, ErrKeyReused
	}
	return Response{Status: status, Body: []byte(body), Replayed: true}, true, nil
}

// Lock serialises, until tx ends, the transactions that use the same key of
// the same application, whichever table records it: on PostgreSQL with a
// transaction-scoped advisory lock; on SQLite writes are serial already.
func Lock(ctx context.Context, db *store.DB, tx *sql.Tx, applicationID, key string) error {
	if db.Engine() != store.Postgres || key == "" {
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte(applicationID))
	h.Write([]byte{0})
	h.Write([]byte(key))
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(h.Sum64())); err != nil {
		return fmt.Errorf("idempotency: lock key: %w", err)
	}
	return nil
}

const selectRecord = `SELECT fingerprint, status_code, body FROM idempotency_records
	WHERE application_id = $1 AND idempotency_key = $2 AND expires_at > $3`

// Lookup is for a route that keeps its keys in its own rows (consent-flow
// tickets): it reports a live record of req's key in idempotency_records,
// written by another route or before the route kept its own. The same
// fingerprint gives the stored response (Replayed set), another one
// ErrKeyReused. Call Lock first.
func Lookup(ctx context.Context, db *store.DB, tx *sql.Tx, req Request) (Response, bool, error) {
	st, err := db.TxStmt(ctx, tx, selectRecord)
	if err != nil {
		return Response{}, false, err
	}
	var (
		fingerprint, body string
		status            int
	)
	err = st.QueryRowContext(ctx, req.ApplicationID, req.Key, req.Now.UnixMilli()).Scan(&fingerprint, &status, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return Response{}, false, nil
	}
	if err != nil {
		return Response{}, false, fmt.Errorf("idempotency: read key: %w", err)
	}
	if fingerprint != req.Fingerprint {
		return Response{}, false, ErrKeyReused
	}
	return Response{Status: status, Body: []byte(body), Replayed: true}, true, nil
}

// heldByTicket reports whether a consent-flow ticket created less than TTL
// ago carries req's key (internal/consentflow keeps ticket keys in the ticket row).
func heldByTicket(ctx context.Context, db *store.DB, tx *sql.Tx, req Request) (bool, error) {
	st, err := db.TxStmt(ctx, tx, `SELECT 1 FROM consent_flow_tickets
		WHERE application_id = $1 AND idempotency_key = $2 AND created_at > $3`)
	if err != nil {
		return false, err
	}
	var one int
	err = st.QueryRowContext(ctx, req.ApplicationID, req.Key, req.Now.Add(-TTL).UnixMilli()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("idempotency: read ticket key: %w", err)
	}
	return true, nil
}

// Sweep deletes records past their TTL and returns how many.
func Sweep(ctx context.Context, db *store.DB, now time.Time) (int64, error) {
	return db.Sweep(ctx, store.SweepChunk, func(tx *sql.Tx, limit int) (int64, error) {
		res, err := tx.ExecContext(ctx, `DELETE FROM idempotency_records WHERE (application_id, idempotency_key) IN (
			SELECT application_id, idempotency_key FROM idempotency_records WHERE expires_at <= $1 LIMIT $2)`, now.UnixMilli(), limit)
		if err != nil {
			return 0, fmt.Errorf("idempotency: sweep: %w", err)
		}
		return res.RowsAffected()
	})
}

package itpflow

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/store"
)

// The Brick consent create's x-idempotency-key. Its effect is remote (a
// consent and a pushed authorization request at the brand), so it cannot be
// in one transaction with its record the way idempotency.Run keeps local
// effects. Instead the key is claimed in the database before the brand is
// called (itp_idempotency; the decision is there, so it holds across
// instances) and completed with the answer in the transaction that records
// the authorization request. A request that dies between the two leaves a
// claim: retries wait for it, and take it over once its lease lapsed; the
// brand gets the same x-idempotency-key again, so it answers the consent it
// already created rather than a second one.

// KeyTTL is how long a Brick key's answer is kept.
const KeyTTL = 24 * time.Hour

// KeyLease is how long a claim holds its key without an answer. The claiming
// request gives up on the brand well before (BrickDeadline), so a live
// request never loses its claim to a retry; a dead one's is taken over.
const KeyLease = time.Minute

// BrickDeadline bounds a Brick consent create's calls to the brand (and so
// how long a claim stays in flight).
const BrickDeadline = 45 * time.Second

// MaxKeyLength bounds the x-idempotency-key a partner may send: 40, as the
// Open Finance APIs (and so the brand, which gets the key) bound it.
const MaxKeyLength = 40

// Errors of the key's claim.
var (
	// ErrKeyReused: the key was used with a different request.
	ErrKeyReused = errors.New("itpflow: idempotency key reused with a different request")
	// ErrKeyInFlight: another request holds the key and has not answered
	// yet; retrying later gets its answer.
	ErrKeyInFlight = errors.New("itpflow: a request with this idempotency key is in progress")
	// ErrClaimLost: the claim's lease lapsed and a retry took the key over;
	// nothing was recorded, the key's answer is the retry's.
	ErrClaimLost = errors.New("itpflow: the idempotency key's claim was taken over")
)

// KeyAnswer is the stored answer of a completed key.
type KeyAnswer struct {
	Status int
	Body   []byte
}

// KeyClaim is a key claimed for one request: Complete records its answer,
// Release frees the key when the request fails.
type KeyClaim struct {
	flow               *Flow
	applicationID, key string
	id                 string
}

// Fingerprint is the hash that tells the same request from another one
// under the same key: the route and the canonical request.
func Fingerprint(route string, canonical []byte) string {
	h := sha256.New()
	h.Write([]byte(route))
	h.Write([]byte{'\n'})
	h.Write(canonical)
	return hex.EncodeToString(h.Sum(nil))
}

// ClaimKey claims (applicationID, key) for a request with fingerprint. It
// returns the claim when the key is free (unknown, expired, or held by a
// claim whose lease lapsed), the stored answer when a request with the same
// fingerprint completed, ErrKeyReused for another fingerprint and
// ErrKeyInFlight while another claim's lease runs.
func (f *Flow) ClaimKey(ctx context.Context, applicationID, key, fingerprint string) (*KeyClaim, *KeyAnswer, error) {
	now := f.Clock.Now().UTC()
	c := &KeyClaim{flow: f, applicationID: applicationID, key: key, id: uuid.NewString()}
	var answer *KeyAnswer
	err := f.DB.Write(ctx, func(tx *sql.Tx) error {
		answer = nil
		// One statement decides on both engines: a new key is inserted; an
		// expired one, or one whose claim lapsed with the same request, is
		// taken over; anything else is left for the read below.
		res, err := tx.ExecContext(ctx, `INSERT INTO itp_idempotency
			(application_id, idempotency_key, fingerprint, claim, lease_until, status_code, body, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6, $7)
			ON CONFLICT (application_id, idempotency_key) DO UPDATE SET fingerprint = excluded.fingerprint,
				claim = excluded.claim, lease_until = excluded.lease_until, status_code = NULL, body = NULL,
				created_at = excluded.created_at, expires_at = excluded.expires_at
			WHERE itp_idempotency.expires_at <= $6
				OR (itp_idempotency.status_code IS NULL AND itp_idempotency.lease_until <= $6
					AND itp_idempotency.fingerprint = excluded.fingerprint)`,
			applicationID, key, fingerprint, c.id, now.Add(KeyLease).UnixMilli(), now.UnixMilli(), now.Add(KeyTTL).UnixMilli())
		if err != nil {
			return fmt.Errorf("itpflow: claim the idempotency key: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("itpflow: claim the idempotency key: %w", err)
		} else if n == 1 {
			return nil
		}
		stored, err := readKey(ctx, tx, applicationID, key)
		if err != nil {
			return err
		}
		switch {
		case stored.fingerprint != fingerprint:
			return ErrKeyReused
		case stored.status == nil:
			return ErrKeyInFlight
		}
		answer = &KeyAnswer{Status: *stored.status, Body: []byte(stored.body)}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if answer != nil {
		return nil, answer, nil
	}
	return c, nil, nil
}

type storedKey struct {
	fingerprint string
	status      *int
	body        string
}

func readKey(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, applicationID, key string) (storedKey, error) {
	var (
		k      storedKey
		status sql.NullInt64
		body   sql.NullString
	)
	err := q.QueryRowContext(ctx, `SELECT fingerprint, status_code, body FROM itp_idempotency
		WHERE application_id = $1 AND idempotency_key = $2`, applicationID, key).Scan(&k.fingerprint, &status, &body)
	if err != nil {
		return k, fmt.Errorf("itpflow: read the idempotency key: %w", err)
	}
	if status.Valid {
		s := int(status.Int64)
		k.status, k.body = &s, body.String
	}
	return k, nil
}

// complete stores the claim's answer in tx, the transaction that records
// the authorization request: both are kept or neither. ErrClaimLost when
// a retry took the key over (tx must roll back).
func (c *KeyClaim) complete(ctx context.Context, tx *sql.Tx, status int, body []byte) error {
	res, err := tx.ExecContext(ctx, `UPDATE itp_idempotency SET status_code = $1, body = $2, lease_until = 0
		WHERE application_id = $3 AND idempotency_key = $4 AND claim = $5 AND status_code IS NULL`,
		status, string(body), c.applicationID, c.key, c.id)
	if err != nil {
		return fmt.Errorf("itpflow: record the idempotency key's answer: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("itpflow: record the idempotency key's answer: %w", err)
	} else if n == 0 {
		return ErrClaimLost
	}
	return nil
}

// Release frees the key after a failure that created nothing at Ponte, so a
// retry runs the request again (an error answer is not kept). It runs even
// when ctx is cancelled: the request's failure may be that.
func (c *KeyClaim) Release(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return c.flow.DB.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM itp_idempotency
			WHERE application_id = $1 AND idempotency_key = $2 AND claim = $3 AND status_code IS NULL`,
			c.applicationID, c.key, c.id)
		if err != nil {
			return fmt.Errorf("itpflow: release the idempotency key: %w", err)
		}
		return nil
	})
}

// SweepKeys deletes the Brick keys past their TTL and returns how many.
func (f *Flow) SweepKeys(ctx context.Context) (int64, error) {
	now := f.Clock.Now().UnixMilli()
	return f.DB.Sweep(ctx, store.SweepChunk, func(tx *sql.Tx, limit int) (int64, error) {
		res, err := tx.ExecContext(ctx, `DELETE FROM itp_idempotency WHERE (application_id, idempotency_key) IN (
			SELECT application_id, idempotency_key FROM itp_idempotency WHERE expires_at <= $1 LIMIT $2)`, now, limit)
		if err != nil {
			return 0, fmt.Errorf("itpflow: sweep idempotency keys: %w", err)
		}
		return res.RowsAffected()
	})
}

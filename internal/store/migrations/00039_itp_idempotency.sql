-- The Brick consent create's idempotency keys (issue 17, initiator side).
-- The request's effect is remote (a consent and a pushed authorization
-- request at the brand), so the key is claimed here before the brand is
-- called and completed with the answer, in the transaction that records the
-- authorization request. A claim holds the key until lease_until: a request
-- that dies in between leaves a claim that a retry takes over after it.
-- status_code and body are NULL while the claim is in flight.

-- +goose Up
CREATE TABLE itp_idempotency (
    application_id  TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,  -- SHA-256 of the canonical request
    claim           TEXT NOT NULL,  -- the claiming request's random id
    lease_until     BIGINT NOT NULL,
    status_code     INTEGER,
    body            TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    PRIMARY KEY (application_id, idempotency_key)
);
CREATE INDEX itp_idempotency_expires ON itp_idempotency (expires_at);

-- +goose Down
DROP TABLE itp_idempotency;

-- Recurring consents of the Automatic Payments API v2 (sweeping accounts,
-- "Transferências Inteligentes"), holder side (internal/recurring). The
-- request as received is kept as JSON and echoed by GET; every status with a
-- timer (AWAITING_AUTHORISATION: the authorisation window; AUTHORISED: the
-- consent's expirationDateTime) has its job in the jobs table, written in the
-- same transaction as the status change.

-- +goose Up
CREATE TABLE recurring_consents (
    id                 TEXT PRIMARY KEY,          -- urn:ponte:rc:<uuid>
    application_id     TEXT NOT NULL REFERENCES applications (id),
    status             TEXT NOT NULL,             -- AWAITING_AUTHORISATION | AUTHORISED | REJECTED | REVOKED | CONSUMED
    request            TEXT NOT NULL,             -- JSON: loggedUser, businessEntity, creditors, recurringConfiguration, ...
    debtor_account     TEXT,                      -- JSON, chosen by the user at authorisation
    rejection          TEXT,                      -- JSON: rejectedBy, rejectedFrom, rejectedAt, reason
    revocation         TEXT,                      -- JSON: revokedBy, revokedFrom, revokedAt, reason
    start_at           BIGINT NOT NULL,           -- sweeping.startDateTime (default: creation)
    expires_at         BIGINT,                    -- expirationDateTime; NULL: no end
    due_at             BIGINT,                    -- when the current status times out; NULL: never
    created_at         BIGINT NOT NULL,
    authorised_at      BIGINT,
    status_updated_at  BIGINT NOT NULL
);
CREATE INDEX recurring_consents_application ON recurring_consents (application_id, created_at);

-- jti of signed request bodies, unique per application for 24 h.
CREATE TABLE recurring_consent_jtis (
    application_id TEXT NOT NULL REFERENCES applications (id),
    jti            TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,           -- Unix ms: first use + 24 h
    PRIMARY KEY (application_id, jti)
);
CREATE INDEX recurring_consent_jtis_expiry ON recurring_consent_jtis (expires_at);

-- +goose Down
DROP TABLE recurring_consent_jtis;
DROP TABLE recurring_consents;

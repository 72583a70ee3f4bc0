-- Payment consents of the Payments API v4, holder side (internal/payments).
-- The request as received is kept as JSON and echoed by GET; status changes
-- record status_updated_at, and every pending status has its expiry job in
-- the jobs table, written in the same transaction.

-- +goose Up
CREATE TABLE payment_consents (
    id                 TEXT PRIMARY KEY,          -- urn:ponte:<uuid>
    application_id     TEXT NOT NULL REFERENCES applications (id),
    status             TEXT NOT NULL,             -- AWAITING_AUTHORISATION | AUTHORISED | REJECTED | CONSUMED
    request            TEXT NOT NULL,             -- JSON: loggedUser, businessEntity, creditor, payment, debtorAccount
    debtor_account     TEXT,                      -- JSON, set by the initiator or at authorisation
    rejection_code     TEXT,
    rejection_detail   TEXT,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    status_updated_at  BIGINT NOT NULL
);
CREATE INDEX payment_consents_application ON payment_consents (application_id, created_at);

-- +goose Down
DROP TABLE payment_consents;

-- Foundation: partner applications, consent-flow tickets, holder browser
-- sessions and idempotency records. Written once for both engines: TEXT,
-- BIGINT Unix-millisecond timestamps and INTEGER flags mean the same on each.

-- +goose Up
CREATE TABLE applications (
    id             TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    company_key    TEXT NOT NULL,
    scopes         TEXT NOT NULL,             -- space-separated, sorted
    redirect_urls  TEXT NOT NULL DEFAULT '[]', -- JSON array of exact URLs
    deep_link_url  TEXT NOT NULL DEFAULT '',
    secret_hash    TEXT NOT NULL,             -- hex SHA-256 of the 256-bit secret
    disabled       INTEGER NOT NULL DEFAULT 0,
    sandbox_demo   INTEGER NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX applications_one_demo ON applications (sandbox_demo) WHERE sandbox_demo = 1;

CREATE TABLE consent_flow_tickets (
    ticket_id        TEXT PRIMARY KEY,
    application_id   TEXT NOT NULL REFERENCES applications (id),
    company_key      TEXT NOT NULL,
    document_number  TEXT NOT NULL,
    request_uri      TEXT NOT NULL,
    client_id        TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    expiry_counted   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX consent_flow_tickets_pending ON consent_flow_tickets (expires_at) WHERE status = 'UNUSED' AND expiry_counted = 0;

CREATE TABLE holder_sessions (
    id_hash      TEXT PRIMARY KEY,
    ticket_id    TEXT NOT NULL UNIQUE REFERENCES consent_flow_tickets (ticket_id),
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE TABLE idempotency_records (
    application_id   TEXT NOT NULL REFERENCES applications (id),
    idempotency_key  TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,   -- hex SHA-256 of method, route and canonical body
    status_code      INTEGER NOT NULL,
    body             TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    PRIMARY KEY (application_id, idempotency_key)
);
CREATE INDEX idempotency_records_expiry ON idempotency_records (expires_at);

-- +goose Down
DROP TABLE idempotency_records;
DROP TABLE holder_sessions;
DROP TABLE consent_flow_tickets;
DROP TABLE applications;

-- Durable jobs (internal/jobs) and webhooks (internal/webhooks): the job
-- queue, partner webhook subscriptions, the events emitted to them, one
-- delivery per (subscription, event) and a log row per delivery attempt.
-- Written once for both engines: TEXT, BIGINT Unix-millisecond timestamps and
-- INTEGER flags mean the same on each.

-- +goose Up
CREATE TABLE jobs (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    payload       TEXT NOT NULL,            -- JSON
    unique_key    TEXT UNIQUE,              -- NULL: no de-duplication
    state         TEXT NOT NULL,            -- available | running | completed | discarded | cancelled
    attempt       INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    run_at        BIGINT NOT NULL,
    lease_owner   TEXT,
    lease_until   BIGINT,
    last_error    TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    finished_at   BIGINT
);
CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'available';
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE webhook_subscriptions (
    id                          TEXT PRIMARY KEY,
    application_id              TEXT NOT NULL REFERENCES applications (id),
    url                         TEXT NOT NULL,
    events                      TEXT NOT NULL DEFAULT '[]', -- JSON array of event names; empty: every event
    secret_sealed               TEXT NOT NULL,              -- vault-sealed signing secret; '' once deleted
    previous_secret_sealed      TEXT,                       -- the secret replaced by the last rotation
    previous_secret_expires_at  BIGINT,                     -- ... valid until then
    disabled                    INTEGER NOT NULL DEFAULT 0,
    disabled_reason             TEXT NOT NULL DEFAULT '',
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL,
    deleted_at                  BIGINT
);
CREATE INDEX webhook_subscriptions_application ON webhook_subscriptions (application_id, created_at) WHERE deleted_at IS NULL;

CREATE TABLE webhook_events (
    id              TEXT PRIMARY KEY,           -- webhook-id and the envelope's idempotencyKey
    application_id  TEXT NOT NULL REFERENCES applications (id),
    context         TEXT NOT NULL,
    name            TEXT NOT NULL,
    entity_id       TEXT NOT NULL,
    body            TEXT NOT NULL,              -- the exact JSON delivered, signed byte for byte
    created_at      BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    application_id   TEXT NOT NULL REFERENCES applications (id),
    subscription_id  TEXT NOT NULL REFERENCES webhook_subscriptions (id),
    event_id         TEXT NOT NULL REFERENCES webhook_events (id),
    job_id           TEXT NOT NULL,
    status           TEXT NOT NULL,             -- pending | failed | delivered | exhausted | cancelled
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_status_code INTEGER,
    last_error       TEXT NOT NULL DEFAULT '',
    next_attempt_at  BIGINT,
    delivered_at     BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_application ON webhook_deliveries (application_id, created_at, id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

CREATE TABLE webhook_delivery_attempts (
    delivery_id   TEXT NOT NULL REFERENCES webhook_deliveries (id),
    attempt       INTEGER NOT NULL,
    status_code   INTEGER,                      -- NULL: no HTTP response
    error         TEXT NOT NULL DEFAULT '',
    duration_ms   BIGINT NOT NULL,
    attempted_at  BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

-- +goose Down
DROP TABLE webhook_delivery_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_events;
DROP TABLE webhook_subscriptions;
DROP TABLE jobs;

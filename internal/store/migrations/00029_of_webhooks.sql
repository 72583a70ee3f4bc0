-- Open Finance webhooks (issue 16 §5c). Holder side (internal/ofwebhook):
-- one delivery per (status change, webhook URI) of an initiator that
-- registered webhook_uris, written in the transaction of the change, with
-- its job and a log row per attempt. Initiator side (internal/itpflow): a
-- brand's notification names a paymentId or consentId at the brand, so the
-- payments Ponte initiated are looked up by those.

-- +goose Up
CREATE TABLE of_webhook_deliveries (
    id               TEXT PRIMARY KEY,
    application_id   TEXT NOT NULL,             -- the initiator notified
    event_key        TEXT NOT NULL,             -- resource/id/status: one notification per change and URI
    resource         TEXT NOT NULL,             -- e.g. payments/v4/pix/payments
    resource_id      TEXT NOT NULL,
    resource_status  TEXT NOT NULL,             -- the status the change reached
    url              TEXT NOT NULL,             -- the full notification URL
    body             TEXT NOT NULL,             -- {"data":{"timestamp":...}}, sent as is on every attempt
    job_id           TEXT NOT NULL,
    status           TEXT NOT NULL,             -- pending | failed | delivered | exhausted
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_status_code INTEGER,
    last_error       TEXT NOT NULL DEFAULT '',
    next_attempt_at  BIGINT,
    delivered_at     BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (event_key, url)
);
CREATE INDEX of_webhook_deliveries_resource ON of_webhook_deliveries (resource_id);

CREATE TABLE of_webhook_attempts (
    delivery_id     TEXT NOT NULL REFERENCES of_webhook_deliveries (id),
    attempt         INTEGER NOT NULL,
    interaction_id  TEXT NOT NULL,              -- x-webhook-interaction-id, new per attempt
    status_code     INTEGER,                    -- NULL: no HTTP response
    error           TEXT NOT NULL DEFAULT '',
    duration_ms     BIGINT NOT NULL,
    attempted_at    BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

CREATE INDEX itp_payments_payment ON itp_payments (payment_id);
CREATE INDEX itp_payments_consent ON itp_payments (consent_id);

-- +goose Down
DROP INDEX itp_payments_consent;
DROP INDEX itp_payments_payment;
DROP TABLE of_webhook_attempts;
DROP TABLE of_webhook_deliveries;

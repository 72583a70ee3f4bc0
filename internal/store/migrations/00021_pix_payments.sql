-- Pix payments of the Payments API v4, holder side (internal/payments,
-- pix_*.go). One row per payment: a POST /pix/payments creates one for an
-- immediate consent and one per date of a scheduled consent, all in the
-- transaction that checks the consent. The item as received is kept as JSON
-- and echoed by GET; every status change records status_updated_at, and the
-- settlement worker picks rows by (status, due_at).

-- +goose Up
CREATE TABLE pix_payments (
    id                 TEXT PRIMARY KEY,          -- UUID, the API's paymentId
    consent_id         TEXT NOT NULL REFERENCES payment_consents (id),
    application_id     TEXT NOT NULL REFERENCES applications (id), -- the initiator
    end_to_end_id      TEXT NOT NULL,
    status             TEXT NOT NULL,             -- RCVD | ACCP | ACPD | ACSC | RJCT | CANC | PDNG | SCHD
    request            TEXT NOT NULL,             -- JSON: the data item as received
    debtor_account     TEXT NOT NULL,             -- JSON: the consent's debtor account
    parties            TEXT NOT NULL,             -- JSON: debtor's document, creditor's name and document (from the consent)
    amount_cents       BIGINT NOT NULL,
    scheduled_date     TEXT,                      -- YYYY-MM-DD of a scheduled payment, NULL for an immediate one
    due_at             BIGINT NOT NULL,           -- when the settlement worker may take it (ms)
    rejection_code     TEXT,
    rejection_detail   TEXT,
    cancellation       TEXT,                      -- JSON: reason, cancelledFrom, cancelledAt, cancelledBy
    created_at         BIGINT NOT NULL,
    status_updated_at  BIGINT NOT NULL
);
-- An endToEndId identifies one Pix: an initiator never sends it twice.
CREATE UNIQUE INDEX pix_payments_end_to_end ON pix_payments (application_id, end_to_end_id);
CREATE INDEX pix_payments_consent ON pix_payments (consent_id);
-- The settlement worker's scan: accepted payments and scheduled ones that are due.
CREATE INDEX pix_payments_due ON pix_payments (status, due_at);

-- +goose Down
DROP TABLE pix_payments;

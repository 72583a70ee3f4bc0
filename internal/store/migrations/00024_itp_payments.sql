-- The initiator's payments (issue 15 §4): the tokens a brand issued when a
-- user authorised a consent Ponte created there, sealed, and the Pix
-- payments Ponte initiates under those consents — Payments v4 payments
-- after a Brick callback, sweeping transfers (Automatic Payments v2) that
-- partners ask for under an authorised journey session — each tracked at
-- the brand until it is final.

-- +goose Up
-- What a partner adds to the payments of a Brick consent (remittance
-- information, txid), JSON: the consent at the brand does not carry them.
ALTER TABLE itp_authorizations ADD COLUMN payment_options TEXT;

CREATE TABLE itp_grants (
    authorization_id   TEXT PRIMARY KEY REFERENCES itp_authorizations (id),
    access_token       TEXT NOT NULL,     -- sealed with the data key (vault), context itp-grant:<id>
    access_expires_at  BIGINT NOT NULL,
    refresh_token      TEXT,              -- sealed likewise; NULL when the brand issued none
    consent_data       TEXT NOT NULL,     -- the consent's data object as the brand answered after the callback
    updated_at         BIGINT NOT NULL
);

CREATE TABLE itp_payments (
    id                 TEXT PRIMARY KEY,
    application_id     TEXT NOT NULL REFERENCES applications (id),
    authorization_id   TEXT NOT NULL REFERENCES itp_authorizations (id),
    kind               TEXT NOT NULL,     -- PIX_PAYMENT (Payments v4) or SWEEPING (Automatic Payments v2)
    batch_id           TEXT NOT NULL,     -- payments sent to the brand in one request (a schedule's dates)
    session_id         TEXT,              -- the journey session (SWEEPING)
    brand_id           TEXT NOT NULL,
    consent_id         TEXT NOT NULL,
    external_id        TEXT,              -- the partner's id (SWEEPING), unique per application
    request_hash       TEXT,              -- SHA-256 of the partner's request: same externalId, same body
    request            TEXT NOT NULL,     -- the data object sent to the brand, JSON (no secrets)
    tags               TEXT,
    end_to_end_id      TEXT NOT NULL UNIQUE,
    idempotency_key    TEXT NOT NULL,     -- x-idempotency-key at the brand, the same on every retry
    payment_id         TEXT,              -- paymentId or recurringPaymentId at the brand
    status             TEXT NOT NULL,     -- PENDING until the brand answers, then its status; FAILED
    rejection_code     TEXT,
    rejection_detail   TEXT,
    error              TEXT,              -- why Ponte could not initiate it (FAILED)
    polls              INTEGER NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
-- NULL external ids (Brick payments) never collide: both engines treat NULLs as distinct.
CREATE UNIQUE INDEX itp_payments_external ON itp_payments (application_id, external_id);
CREATE INDEX itp_payments_batch ON itp_payments (batch_id);
CREATE INDEX itp_payments_authorization ON itp_payments (authorization_id);

-- +goose Down
DROP TABLE itp_payments;
DROP TABLE itp_grants;
ALTER TABLE itp_authorizations DROP COLUMN payment_options;

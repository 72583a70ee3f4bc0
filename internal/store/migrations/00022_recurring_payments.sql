-- Sweeping payments of the Automatic Payments API v2 (POST
-- /pix/recurring-payments), holder side (internal/recurring). A payment is
-- decided in the transaction that inserts it: the consent's row is locked
-- (SELECT ... FOR UPDATE on PostgreSQL; SQLite has one writer) and the
-- consent's limits are checked against the sums of this table, so
-- concurrent payments cannot overrun a limit. Payments in RJCT or CANC do
-- not count: rejecting one gives its share of the limits back. Each status
-- change is written with its processing job and its webhook event.

-- +goose Up
CREATE TABLE recurring_payments (
    id                TEXT PRIMARY KEY,          -- recurringPaymentId (UUID)
    application_id    TEXT NOT NULL REFERENCES applications (id),
    consent_id        TEXT NOT NULL REFERENCES recurring_consents (id),
    status            TEXT NOT NULL,             -- RCVD | ACCP | ACPD | ACSC | RJCT | CANC (PDNG, SCHD unused by sweeping)
    end_to_end_id     TEXT NOT NULL,
    pay_date          TEXT NOT NULL,             -- data.date, YYYY-MM-DD in Brasília time: the limit windows use it
    amount_cents      BIGINT NOT NULL,
    request           TEXT NOT NULL,             -- JSON: the request's data as received (after validation)
    debtor_account    TEXT NOT NULL,             -- JSON: the consent's authorised debtor account
    debtor_document   TEXT NOT NULL,             -- CPF or CNPJ of the debtor (loggedUser / businessEntity)
    creditor_name     TEXT NOT NULL,             -- the consent's creditor matching data.document
    rejection         TEXT,                      -- JSON: rejectionReason {code, detail}
    cancellation      TEXT,                      -- JSON: cancellation
    created_at        BIGINT NOT NULL,
    status_updated_at BIGINT NOT NULL
);
-- endToEndId identifies the Pix at the SPI and in the statement: never twice.
CREATE UNIQUE INDEX recurring_payments_end_to_end ON recurring_payments (end_to_end_id);
CREATE INDEX recurring_payments_consent ON recurring_payments (consent_id, pay_date);
CREATE INDEX recurring_payments_application ON recurring_payments (application_id, created_at);

-- +goose Down
DROP TABLE recurring_payments;

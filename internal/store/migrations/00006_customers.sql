-- Customers and accounts (issue 5): the end users a holder partner serves and
-- the bank accounts they may debit. A customer belongs to one partner
-- application (unique document per application); an account belongs to one
-- customer and is unique across Ponte by (ispb, issuer, number).

-- +goose Up
CREATE TABLE customers (
    id               TEXT PRIMARY KEY,
    application_id   TEXT NOT NULL REFERENCES applications (id),
    document         TEXT NOT NULL,   -- CPF (11 digits) or CNPJ (14 digits)
    name             TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX customers_application_document ON customers (application_id, document);

CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    customer_id    TEXT NOT NULL REFERENCES customers (id),
    ispb           TEXT NOT NULL,   -- 8 digits
    issuer         TEXT NOT NULL,   -- agency, 4 digits zero-padded; '' for a TRAN account without one
    number         TEXT NOT NULL,   -- 1-20 digits including the check digit
    account_type   TEXT NOT NULL,   -- CACC, SVGS or TRAN
    currency       TEXT NOT NULL,
    status         TEXT NOT NULL,   -- ACTIVE or BLOCKED
    created_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX accounts_ispb_issuer_number ON accounts (ispb, issuer, number);
CREATE INDEX accounts_customer ON accounts (customer_id, created_at);

-- +goose Down
DROP TABLE accounts;
DROP TABLE customers;

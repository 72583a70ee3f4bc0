-- Account data (issue 7 §3): what the Accounts API 2.4.2 shares about the
-- accounts of internal/customers — balances, overdraft limits, transactions —
-- and the identification fields the customers table does not hold. Owned by
-- internal/dataapi; every row is keyed by the customers' account id.

-- +goose Up
CREATE TABLE account_profiles (
    account_id     TEXT PRIMARY KEY REFERENCES accounts (id),
    compe_code     TEXT NOT NULL,   -- 3 digits
    brand_name     TEXT NOT NULL,
    company_cnpj   TEXT NOT NULL,   -- 14 digits
    subtype        TEXT NOT NULL,   -- INDIVIDUAL, CONJUNTA_SIMPLES or CONJUNTA_SOLIDARIA
    updated_at     BIGINT NOT NULL
);

CREATE TABLE account_balances (
    account_id                     TEXT PRIMARY KEY REFERENCES accounts (id),
    available_amount               TEXT NOT NULL,   -- decimal string, may be negative
    blocked_amount                 TEXT NOT NULL,
    automatically_invested_amount  TEXT NOT NULL,   -- may be negative
    currency                       TEXT NOT NULL,
    updated_at                     BIGINT NOT NULL
);

-- An empty amount is an absent field: a row with all three empty is an
-- account without limits (the API then returns an empty data object).
CREATE TABLE account_overdraft_limits (
    account_id           TEXT PRIMARY KEY REFERENCES accounts (id),
    contracted_amount    TEXT NOT NULL,
    used_amount          TEXT NOT NULL,
    unarranged_amount    TEXT NOT NULL,
    currency             TEXT NOT NULL,
    updated_at           BIGINT NOT NULL
);

CREATE TABLE account_transactions (
    account_id           TEXT NOT NULL REFERENCES accounts (id),
    transaction_id       TEXT NOT NULL,
    booked_at            BIGINT NOT NULL,   -- transactionDateTime, Unix milliseconds
    status               TEXT NOT NULL,     -- completedAuthorisedPaymentType
    credit_debit_type    TEXT NOT NULL,
    name                 TEXT NOT NULL,
    type                 TEXT NOT NULL,
    amount               TEXT NOT NULL,
    currency             TEXT NOT NULL,
    partie_cnpj_cpf      TEXT NOT NULL,     -- '' when absent, likewise below
    partie_person_type   TEXT NOT NULL,
    partie_compe_code    TEXT NOT NULL,
    partie_branch_code   TEXT NOT NULL,
    partie_number        TEXT NOT NULL,
    partie_check_digit   TEXT NOT NULL,
    PRIMARY KEY (account_id, transaction_id)
);
-- The API's order: newest first, ties broken by transaction id.
CREATE INDEX account_transactions_order ON account_transactions (account_id, booked_at, transaction_id);

-- +goose Down
DROP TABLE account_transactions;
DROP TABLE account_overdraft_limits;
DROP TABLE account_balances;
DROP TABLE account_profiles;

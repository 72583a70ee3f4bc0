-- Settlement (issue 15 §3): where a holder-side payment's money moves.
-- Owned by internal/settlement.
--
-- ledger_accounts is the sandbox ledger's truth for an account of the
-- customers table: integer cents, never a float. available_cents and
-- blocked_cents are what the account's core (the import, the sandbox seed)
-- last said; held_cents is the sum of the ledger's outstanding reservations,
-- shown on top of blocked_cents. Every change also rewrites the Accounts
-- API's decimal text in account_balances in the same transaction, and
-- synced_* remember that text: when account_balances no longer holds it, an
-- import rewrote the balances and the ledger adopts them (see
-- internal/settlement/ledger.go). A row is created the first time the ledger
-- touches the account.
--
-- ledger_reservations makes every ledger step idempotent by (kind,
-- payment_id): HELD after Reserve, then SETTLED or RELEASED, never back.
--
-- settlement_requests is the production (partner) side: what Ponte asked the
-- holder partner owning the debtor account to settle, and the outcome the
-- partner reported (or the deadline decided).

-- +goose Up
CREATE TABLE ledger_accounts (
    account_id        TEXT PRIMARY KEY REFERENCES accounts (id),
    available_cents   BIGINT NOT NULL,   -- may be negative after an import (overdraft)
    blocked_cents     BIGINT NOT NULL,
    held_cents        BIGINT NOT NULL,   -- outstanding reservations, >= 0
    synced_available  TEXT NOT NULL,     -- account_balances.available_amount the ledger last wrote or adopted
    synced_blocked    TEXT NOT NULL,     -- account_balances.blocked_amount likewise
    synced_at         BIGINT NOT NULL,   -- account_balances.updated_at likewise
    updated_at        BIGINT NOT NULL
);

CREATE TABLE ledger_reservations (
    kind                 TEXT NOT NULL,     -- pix-payment or recurring-payment
    payment_id           TEXT NOT NULL,
    debtor_account_id    TEXT NOT NULL REFERENCES accounts (id),
    creditor_account_id  TEXT NOT NULL,     -- a Ponte account credited on settlement; '' for an account elsewhere
    amount_cents         BIGINT NOT NULL,
    currency             TEXT NOT NULL,
    end_to_end_id        TEXT NOT NULL,
    status               TEXT NOT NULL,     -- HELD, SETTLED or RELEASED
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    PRIMARY KEY (kind, payment_id)
);

CREATE TABLE settlement_requests (
    kind               TEXT NOT NULL,
    payment_id         TEXT NOT NULL,
    application_id     TEXT NOT NULL REFERENCES applications (id),  -- the holder partner owning the debtor account
    debtor_account_id  TEXT NOT NULL REFERENCES accounts (id),
    amount_cents       BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    end_to_end_id      TEXT NOT NULL,
    status             TEXT NOT NULL,   -- RESERVED, RELEASED, PENDING (asked), ACSC or RJCT
    reject_code        TEXT NOT NULL,   -- '' unless RJCT
    reject_detail      TEXT NOT NULL,
    deadline_at        BIGINT NOT NULL, -- 0 until asked
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (kind, payment_id)
);
-- The admin API finds a request by payment id alone (ids are UUIDs, unique across kinds).
CREATE INDEX settlement_requests_payment ON settlement_requests (payment_id);

-- +goose Down
DROP TABLE settlement_requests;
DROP TABLE ledger_reservations;
DROP TABLE ledger_accounts;

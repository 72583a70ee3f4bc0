-- Cards (issue 4): the card vault, wallet tokens reported by the token
-- network, processed network notifications, and idempotent wallet payloads.
-- Card numbers are stored only sealed (AES-256-GCM, see internal/vault) with a
-- keyed hash for lookups and the last four digits in clear.

-- +goose Up
CREATE TABLE cards (
    id               TEXT PRIMARY KEY,
    application_id   TEXT NOT NULL REFERENCES applications (id),
    proxy            TEXT NOT NULL,   -- the card id in API paths, unique per application
    pan_sealed       TEXT NOT NULL,
    pan_hash         TEXT NOT NULL UNIQUE,
    last_four        TEXT NOT NULL,
    expiry_month     INTEGER NOT NULL,
    expiry_year      INTEGER NOT NULL,   -- four digits
    holder_name      TEXT NOT NULL,
    phone_number     TEXT NOT NULL,
    zip_code         TEXT NOT NULL,
    address          TEXT NOT NULL,
    number           TEXT NOT NULL,
    neighborhood     TEXT NOT NULL,
    complement       TEXT NOT NULL,
    city             TEXT NOT NULL,
    state            TEXT NOT NULL,
    country          TEXT NOT NULL,
    brand            TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX cards_application_proxy ON cards (application_id, proxy);
CREATE INDEX cards_application ON cards (application_id, created_at);

CREATE TABLE wallet_tokens (
    token_ref    TEXT PRIMARY KEY,          -- the network's token unique reference
    card_id      TEXT NOT NULL REFERENCES cards (id),
    wallet       TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX wallet_tokens_card ON wallet_tokens (card_id);

CREATE TABLE network_notifications (
    notification_id  TEXT PRIMARY KEY,
    fingerprint      TEXT NOT NULL,
    received_at      BIGINT NOT NULL
);

CREATE TABLE wallet_payloads (
    card_id        TEXT NOT NULL REFERENCES cards (id),
    wallet         TEXT NOT NULL,
    nonce          TEXT NOT NULL,   -- '' for Google Pay
    fingerprint    TEXT NOT NULL,   -- hex SHA-256 of the request
    response       TEXT NOT NULL,   -- sealed: it carries the encrypted card payload
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    PRIMARY KEY (card_id, wallet, nonce)
);

-- +goose Down
DROP TABLE wallet_payloads;
DROP TABLE network_notifications;
DROP TABLE wallet_tokens;
DROP TABLE cards;

-- Holder-side authorization server (internal/oidc, github.com/luikyv/go-oidc):
-- registered Open Finance clients, authorization (authn) sessions and grant
-- sessions. Each row keeps the library's object as JSON in data; the columns
-- beside it are the lookup keys. Secrets used as lookup keys (authorization
-- codes, token ids, refresh tokens) are stored as SHA-256 hex only and blanked
-- in data. expires_at is unix ms on Ponte's clock.

-- +goose Up
CREATE TABLE oidc_clients (
    id          TEXT PRIMARY KEY,
    data        TEXT NOT NULL,              -- JSON goidc.Client (public keys only)
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE oidc_authn_sessions (
    id                  TEXT PRIMARY KEY,
    client_id           TEXT NOT NULL,
    pushed_auth_req_id  TEXT UNIQUE,        -- request_uri returned by /oauth/par
    callback_id         TEXT UNIQUE,
    auth_code_hash      TEXT UNIQUE,
    ciba_auth_id        TEXT UNIQUE,
    data                TEXT NOT NULL,      -- JSON goidc.AuthnSession
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL
);
CREATE INDEX oidc_authn_sessions_expires ON oidc_authn_sessions (expires_at);

CREATE TABLE oidc_grant_sessions (
    id                  TEXT PRIMARY KEY,
    client_id           TEXT NOT NULL,
    token_id_hash       TEXT NOT NULL UNIQUE,
    refresh_token_hash  TEXT UNIQUE,
    auth_code_hash      TEXT,
    data                TEXT NOT NULL,      -- JSON goidc.GrantSession
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL
);
CREATE INDEX oidc_grant_sessions_auth_code ON oidc_grant_sessions (auth_code_hash);
CREATE INDEX oidc_grant_sessions_expires ON oidc_grant_sessions (expires_at);

-- +goose Down
DROP TABLE oidc_grant_sessions;
DROP TABLE oidc_authn_sessions;
DROP TABLE oidc_clients;

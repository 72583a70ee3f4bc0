-- Initiator side (ITP): brands, journeys, per-application settings and the
-- Open Keys journey sessions of seed 003.

-- +goose Up
CREATE TABLE itp_brands (
    id                TEXT PRIMARY KEY,            -- 24 lowercase hex (ObjectId-like)
    name              TEXT NOT NULL,
    logo_url          TEXT NOT NULL DEFAULT '',
    issuer            TEXT NOT NULL UNIQUE,        -- the brand's authorization server issuer: EnsureBrand's key
    discovery_url     TEXT NOT NULL DEFAULT '',
    api_base_url      TEXT NOT NULL,
    client_id         TEXT NOT NULL,               -- Ponte's client registration at the brand
    signing_key_file  TEXT NOT NULL,               -- PEM file (0600); the key itself is never stored here
    mtls_cert_file    TEXT NOT NULL DEFAULT '',
    mtls_key_file     TEXT NOT NULL DEFAULT '',
    enabled           INTEGER NOT NULL DEFAULT 1,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE itp_journeys (
    id               TEXT PRIMARY KEY,             -- 24 lowercase hex
    alias            TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    brand_ids        TEXT NOT NULL,                -- JSON array of brand ids; [] = every enabled brand
    application_ids  TEXT NOT NULL,                -- JSON array of application ids; [] = every application
    settings         TEXT NOT NULL,                -- JSON array of {"key","value"}
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE itp_application_settings (
    application_id  TEXT NOT NULL REFERENCES applications (id),
    key             TEXT NOT NULL,
    value           TEXT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (application_id, key)
);

CREATE TABLE itp_journey_sessions (
    id                     TEXT PRIMARY KEY,       -- UUID
    application_id         TEXT NOT NULL,
    application_client_id  TEXT NOT NULL,
    journey_id             TEXT NOT NULL,
    token_id               TEXT NOT NULL,
    token_hash             TEXT NOT NULL,          -- hex SHA-256 of the opaque token; the token is never stored
    status                 TEXT NOT NULL,
    redirect_url           TEXT,
    brand_id               TEXT,
    external_id            TEXT,
    consent_id             TEXT,
    settings               TEXT NOT NULL,          -- JSON array of {"key","value"}
    tags                   TEXT NOT NULL,          -- JSON object
    status_history         TEXT NOT NULL,          -- compact JSON array of {"updatedAt","status"}, appended to
    expires_at             BIGINT NOT NULL,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
-- externalId is unique per application (NULLs are distinct on both engines).
CREATE UNIQUE INDEX itp_journey_sessions_external ON itp_journey_sessions (application_id, external_id);
CREATE INDEX itp_journey_sessions_list ON itp_journey_sessions (application_id, created_at, id);
-- Only sessions that can still expire are in the sweep's index.
CREATE INDEX itp_journey_sessions_due ON itp_journey_sessions (expires_at)
    WHERE status IN ('PENDING', 'AWAITING_AUTHORISATION');

-- Top-level scalar tags, for the list filter tag=key:value.
CREATE TABLE itp_journey_session_tags (
    session_id  TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (session_id, key)
);
CREATE INDEX itp_journey_session_tags_kv ON itp_journey_session_tags (key, value);

-- +goose Down
DROP TABLE itp_journey_session_tags;
DROP TABLE itp_journey_sessions;
DROP TABLE itp_application_settings;
DROP TABLE itp_journeys;
DROP TABLE itp_brands;

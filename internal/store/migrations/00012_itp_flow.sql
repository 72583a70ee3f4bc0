-- The initiator's redirect flow (issue 6 §3, §4): each authorization request
-- Ponte pushed to a brand for a consent it created there, with the secrets
-- that check its callback, and the steps the user took with their device.

-- +goose Up
CREATE TABLE itp_authorizations (
    id                 TEXT PRIMARY KEY,
    state_hash         TEXT NOT NULL UNIQUE,   -- SHA-256 of the state sent to the brand
    application_id     TEXT NOT NULL REFERENCES applications (id),
    kind               TEXT NOT NULL,          -- JOURNEY_SESSION or PAYMENT_INITIATION
    session_id         TEXT,                   -- the journey session (JOURNEY_SESSION)
    brand_id           TEXT NOT NULL,
    consent_id         TEXT NOT NULL,          -- the consent at the brand
    consent_path       TEXT NOT NULL,          -- its URL path at the brand's API
    scope              TEXT NOT NULL,
    nonce              TEXT NOT NULL,
    code_verifier      TEXT NOT NULL,          -- PKCE: sent once, with the code
    redirect_uri       TEXT NOT NULL,
    authorization_url  TEXT NOT NULL,
    status             TEXT NOT NULL,          -- PENDING, COMPLETING, AUTHORISED, REJECTED, FAILED
    consent_status     TEXT,                   -- the consent's status at the brand after the callback
    error              TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL
);
CREATE INDEX itp_authorizations_consent ON itp_authorizations (application_id, consent_id);
CREATE INDEX itp_authorizations_session ON itp_authorizations (session_id);

CREATE TABLE itp_steps (
    authorization_id  TEXT NOT NULL REFERENCES itp_authorizations (id),
    seq               INTEGER NOT NULL,
    step              TEXT NOT NULL,   -- CONSENT_REQUEST, CALLBACK
    platform          TEXT NOT NULL,
    os                TEXT NOT NULL,
    os_version        TEXT NOT NULL,
    detail            TEXT,            -- e.g. the callback's error code
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (authorization_id, seq)
);

-- +goose Down
DROP TABLE itp_steps;
DROP TABLE itp_authorizations;

-- The holder's consent journey (issue 5 §3): one interaction per authorization
-- request that reached /oauth/authorize, owned by the holder partner whose
-- customer must approve it, and the steps (login, consent, cancel) the user
-- took in it with the device each came from (the PCM reports them).

-- +goose Up
CREATE TABLE holder_interactions (
    id                TEXT PRIMARY KEY,
    application_id    TEXT NOT NULL REFERENCES applications (id),  -- the holder partner
    consent_id        TEXT NOT NULL,
    client_id         TEXT NOT NULL,        -- the initiator
    callback_id       TEXT NOT NULL UNIQUE, -- resumes the authorization request
    request_uri       TEXT NOT NULL,
    document          TEXT NOT NULL,        -- the consent's logged user
    status            TEXT NOT NULL,        -- PENDING, AUTHENTICATED, APPROVED, CANCELLED
    handoff           INTEGER NOT NULL,     -- 1: started on a desktop browser, finished on the phone
    customer_id       TEXT,                 -- set at login
    debtor_account    TEXT,                 -- JSON, set at approval
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL
);
CREATE INDEX holder_interactions_request ON holder_interactions (request_uri, client_id);
CREATE INDEX holder_interactions_expiry ON holder_interactions (expires_at);

CREATE TABLE holder_interaction_steps (
    interaction_id   TEXT NOT NULL REFERENCES holder_interactions (id),
    seq              INTEGER NOT NULL,
    step             TEXT NOT NULL,   -- LOGIN, CONSENT, CANCEL
    platform         TEXT NOT NULL,   -- BROWSER or APP
    os               TEXT NOT NULL,
    os_version       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (interaction_id, seq)
);

-- A ticket's browser session opens the interaction behind its requestUri.
ALTER TABLE holder_sessions ADD COLUMN interaction_id TEXT;

-- +goose Down
ALTER TABLE holder_sessions DROP COLUMN interaction_id;
DROP TABLE holder_interaction_steps;
DROP TABLE holder_interactions;

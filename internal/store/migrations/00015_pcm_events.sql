-- PCM conversion metrics (issue 8 §1, §2): every redirect-journey step of
-- PCM v1.0.4's hybrid flow, recorded on both sides with the user's device,
-- whether Ponte saw it happen (source PAYLOAD, written in the transaction of
-- the state change that caused it) or a partner reported it (source API).
--
-- Forwarding (issue 8 §3) builds on this table: id is the stable key of an
-- item (an outbox row or a sent marker references it), occurred_at is the
-- millisecond UTC timestamp the PCM wants, and pcm.Recorder.AfterInsert lets
-- the outbox row be written in the same transaction as the event.

-- +goose Up
CREATE TABLE pcm_events (
    id              TEXT PRIMARY KEY,        -- UUID v4, never changes
    consent_id      TEXT NOT NULL,           -- PCM consentId
    side            TEXT NOT NULL,           -- HOLDER (PCM server) or INITIATOR (PCM client)
    step            TEXT NOT NULL,           -- REDIRECT_TO_SERVER, REDIRECT_TARGET, AUTHENTICATED, REDIRECT_TO_CLIENT,
                                             -- REDIRECT_TARGET_WITH_ERRORS, REDIRECT_TARGET_WITHOUT_ERRORS
    type            TEXT NOT NULL DEFAULT '',-- REDIRECT_TARGET: AWAITING_HANDOFF | AWAITING_USER_AUTH | AWAITING_REDIRECT_TO_APP,
                                             -- REDIRECT_TO_CLIENT: AUTHORISED | REJECTED, '' for the other steps
    error           TEXT NOT NULL DEFAULT '',-- REDIRECT_TARGET_WITH_ERRORS: the hybrid-flow error code
    uri             TEXT NOT NULL DEFAULT '',-- uriAuthorizationEndpoint (REDIRECT_TO_SERVER, REDIRECT_TARGET)
                                             -- or uri_callback (REDIRECT_TO_CLIENT), without query string
    platform        TEXT NOT NULL,           -- BROWSER or APP
    os              TEXT NOT NULL,           -- LINUX, MACOS, UNIX, WINDOWS, IOS, ANDROID, OTHER
    os_version      TEXT NOT NULL,
    application_id  TEXT NOT NULL,           -- the partner: holder partner (HOLDER) or initiating application (INITIATOR)
    brand_id        TEXT NOT NULL DEFAULT '',-- INITIATOR: the brand the user was sent to, HOLDER: ''
    source          TEXT NOT NULL,           -- PAYLOAD or API
    occurred_at     BIGINT NOT NULL,         -- Unix milliseconds, UTC: the PCM timestamp
    created_at      BIGINT NOT NULL          -- Unix milliseconds, when Ponte stored it
);
-- A step is recorded once per consent (and type): repeats are idempotent.
CREATE UNIQUE INDEX pcm_events_step ON pcm_events (consent_id, step, type);
CREATE INDEX pcm_events_application_time ON pcm_events (application_id, occurred_at);
CREATE INDEX pcm_events_time ON pcm_events (occurred_at);

-- The holder keeps the initiator's redirect_uri with the interaction: it is
-- the uri_callback of REDIRECT_TO_CLIENT.
ALTER TABLE holder_interactions ADD COLUMN redirect_uri TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE holder_interactions DROP COLUMN redirect_uri;
DROP TABLE pcm_events;

-- Forwarding to the PCM (issue 8 §3): a durable outbox of hybrid-flow
-- reports. pcm.Recorder.AfterInsert writes one row per new event in the
-- event's own transaction, so no event is recorded without its row.
--
-- A row is PENDING until the PCM answers for it: ACCEPTED (200, or its item
-- of a 207 without error, report_id kept) or REJECTED (its item of a 207
-- carried an error, or the PCM refused the whole batch with 400; reason
-- kept). A REJECTED row is never sent again unless an operator re-queues it
-- (`ponte pcm replay`).
--
-- Claiming: a forwarder takes up to 1,000 due PENDING rows of one endpoint
-- by setting lease (a random token) and pushing next_at to the lease's end;
-- a forwarder that dies leaves rows that become due again when next_at
-- passes. Outcomes of failures are fenced by the lease token; acceptance is
-- recorded whatever the lease, so an acknowledged item is never resent.

-- +goose Up
CREATE TABLE pcm_outbox (
    event_id     TEXT PRIMARY KEY REFERENCES pcm_events (id),
    endpoint     TEXT NOT NULL,               -- PCM path under /report-api/v2/hybrid-flow/, e.g. server/authenticated
    state        TEXT NOT NULL,               -- PENDING, ACCEPTED, REJECTED
    attempts     INTEGER NOT NULL DEFAULT 0,  -- batches this item was sent in
    next_at      BIGINT NOT NULL,             -- Unix ms: due from (a retry's time, or a lease's end)
    lease        TEXT,                        -- token of the claim holding the row, NULL when none
    occurred_at  BIGINT NOT NULL,             -- the event's time (Unix ms, UTC)
    deadline_at  BIGINT NOT NULL,             -- 08:00 America/Sao_Paulo of the day after occurred_at
    report_id    TEXT NOT NULL DEFAULT '',    -- the PCM's reportId once ACCEPTED
    reason       TEXT NOT NULL DEFAULT '',    -- why the PCM REJECTED it
    last_error   TEXT NOT NULL DEFAULT '',    -- the last failed attempt (429, 5xx, timeout, ...)
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    settled_at   BIGINT                       -- when it became ACCEPTED or REJECTED
);
CREATE INDEX pcm_outbox_due ON pcm_outbox (state, endpoint, next_at);
CREATE INDEX pcm_outbox_lease ON pcm_outbox (lease);
CREATE INDEX pcm_outbox_state_time ON pcm_outbox (state, occurred_at);

-- Events recorded before forwarding existed are queued too. America/Sao_Paulo
-- keeps UTC-3 all year since 2019: the deadline is the next local midnight
-- plus 8 h, i.e. ((t - 3 h) div 1 day + 1) days + 11 h in UTC.
INSERT INTO pcm_outbox (event_id, endpoint, state, attempts, next_at, occurred_at, deadline_at, created_at, updated_at)
SELECT id,
       CASE step
           WHEN 'REDIRECT_TO_SERVER' THEN 'client/redirect-to-server'
           WHEN 'REDIRECT_TARGET' THEN 'server/redirect-target'
           WHEN 'AUTHENTICATED' THEN 'server/authenticated'
           WHEN 'REDIRECT_TO_CLIENT' THEN 'server/redirect-to-client'
           WHEN 'REDIRECT_TARGET_WITH_ERRORS' THEN 'client/redirect-target-with-errors'
           ELSE 'client/redirect-target-without-errors'
       END,
       'PENDING', 0, created_at, occurred_at,
       ((occurred_at - 10800000) / 86400000 + 1) * 86400000 + 39600000,
       created_at, created_at
FROM pcm_events;

-- +goose Down
DROP TABLE pcm_outbox;

-- Journey sessions' hot path (issue 6 §5): a session without an externalId
-- has no entry in the externalId index. The index only enforces "externalId
-- unique per application" (NULLs never collided), so leaving the NULLs out
-- changes no rule; it makes every create, transition and expiry of such a
-- session write one index entry fewer, and the index small. Existing rows
-- are indexed again by CREATE INDEX on both engines.

-- +goose Up
DROP INDEX itp_journey_sessions_external;
CREATE UNIQUE INDEX itp_journey_sessions_external ON itp_journey_sessions (application_id, external_id)
    WHERE external_id IS NOT NULL;

-- +goose Down
DROP INDEX itp_journey_sessions_external;
CREATE UNIQUE INDEX itp_journey_sessions_external ON itp_journey_sessions (application_id, external_id);

-- The ticket's hot path (issue 3's speed targets): a consent-flow ticket
-- created with an idempotencyKey carries the key in its own row, under a
-- unique index, instead of a separate idempotency_records row. The ticket
-- row already holds everything the stored response and the request
-- fingerprint were made of (see internal/holder/store.go), so one insert and
-- one random index entry per ticket replace two rows, three indexes and a
-- second copy of the response. Keys of tickets created before this migration
-- stay in idempotency_records until they expire, and are still honoured.

-- +goose Up
ALTER TABLE consent_flow_tickets ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX consent_flow_tickets_idempotency
    ON consent_flow_tickets (application_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- +goose Down
DROP INDEX consent_flow_tickets_idempotency;
ALTER TABLE consent_flow_tickets DROP COLUMN idempotency_key;

-- PCM forwarding's hot path (issue 8 §3, §5): a claim reads one column per
-- row and settles without index churn it does not need.
--
-- item: the row's hybrid-flow item as Go's encoding/json writes it (the
-- bytes pcm.ItemOf renders, without clientOrgId / serverOrgId, which the
-- forwarder appends from its configuration), written by pcm.Enqueue in the
-- event's own transaction. A claim sends it as is: no join with pcm_events,
-- no decoding or encoding per item. Rows that existed before this migration
-- get item = '': the exact encoding (Go's escaping of free text, millisecond
-- RFC 3339 UTC timestamps) has no portable SQL form on SQLite and
-- PostgreSQL 15, so the forwarder renders an empty item from its pcm_events
-- row when it claims it (also what a row written by an older instance during
-- a rolling upgrade gets). The event columns stay the source of truth.
--
-- pcm_outbox_due becomes partial (PENDING rows only): settled rows leave it
-- instead of moving inside it, and it stays the size of the backlog rather
-- than of the history. The claim names state = 'PENDING' literally so both
-- engines use it.
--
-- pcm_outbox_lease goes: a claim returns its rows (UPDATE ... RETURNING) and
-- a retry releases them by primary key, still fenced by the lease token, so
-- nothing looks rows up by lease any more and claims and settles stop
-- maintaining that index.

-- +goose Up
ALTER TABLE pcm_outbox ADD COLUMN item TEXT NOT NULL DEFAULT '';
DROP INDEX pcm_outbox_due;
CREATE INDEX pcm_outbox_due ON pcm_outbox (endpoint, next_at) WHERE state = 'PENDING';
DROP INDEX pcm_outbox_lease;

-- +goose Down
CREATE INDEX pcm_outbox_lease ON pcm_outbox (lease);
DROP INDEX pcm_outbox_due;
CREATE INDEX pcm_outbox_due ON pcm_outbox (state, endpoint, next_at);
ALTER TABLE pcm_outbox DROP COLUMN item;

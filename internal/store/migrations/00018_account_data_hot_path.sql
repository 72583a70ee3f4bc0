-- Accounts API transaction pages' hot path (issue 7 §4): every transaction
-- keeps its Accounts 2.4.2 JSON object (TransactionsData, exactly the bytes
-- the API sends for it) in body, written by the import and the sandbox seed
-- in the same statement as the columns it is derived from, so a page is read
-- as one column per row and copied into the response without decoding or
-- encoding anything. The columns stay the source of truth for filters, order
-- and re-encoding.
--
-- Existing rows get body NULL here: the exact encoding (Go's encoding/json
-- escaping of free-text names, RFC 3339 milliseconds) has no portable SQL
-- form on SQLite and PostgreSQL, so internal/dataapi encodes them from their
-- columns on both engines — the sandbox seed at start-up, any other account
-- the first time one of its pages meets a NULL body — and never serves a
-- page from a NULL.

-- +goose Up
ALTER TABLE account_transactions ADD COLUMN body TEXT;

-- +goose Down
ALTER TABLE account_transactions DROP COLUMN body;

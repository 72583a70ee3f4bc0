-- Refresh tokens bound to their consent (issue 15 §2b): a grant session
-- with a refresh token lives until the consent's expiry (expires_at), far
-- beyond each access token it issues, so the access token's own expiry gets
-- a column: token_expires_at, unix ms on Ponte's clock like expires_at.
-- Access-token lookups read it; refresh-token lookups and the sweep keep
-- reading expires_at. Rows written before this migration had no refresh
-- token, so their access token expired with the grant: token_expires_at =
-- expires_at.

-- +goose Up
ALTER TABLE oidc_grant_sessions ADD COLUMN token_expires_at BIGINT NOT NULL DEFAULT 0;
UPDATE oidc_grant_sessions SET token_expires_at = expires_at;

-- +goose Down
ALTER TABLE oidc_grant_sessions DROP COLUMN token_expires_at;

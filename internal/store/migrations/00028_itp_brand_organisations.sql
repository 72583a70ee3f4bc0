-- Brands' organisation ids (issue 16 §3): when Ponte initiates at a brand,
-- the brand's signed answers must name the brand's organisation at the Open
-- Finance Directory as iss (and Ponte's as aud). '' for a brand registered
-- before organisation ids: its answers' iss is not checked until the
-- operator records one ('ponte brands update --org-id').

-- +goose Up
ALTER TABLE itp_brands ADD COLUMN organisation_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE itp_brands DROP COLUMN organisation_id;

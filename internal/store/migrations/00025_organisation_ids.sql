-- Organisation ids (issue 16 §1, §3): every Open Finance client is known by
-- the organisation id of the Open Finance Directory it belongs to — from its
-- software statement when it registered dynamically, given by the operator
-- for a hand-registered initiator. Signed messages name organisations: the
-- iss of an initiator's request JWT is its organisation id, the aud of
-- Ponte's signed responses too. '' for applications that are not Open
-- Finance clients (and for those registered before organisation ids).

-- +goose Up
ALTER TABLE applications ADD COLUMN organisation_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE applications DROP COLUMN organisation_id;

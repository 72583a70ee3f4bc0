-- Application slugs (issue 16 §6): seed 002's interaction path
-- /api/{client_name}/consents/v1/interactions/... names the holder partner
-- application by a stable URL-safe slug (lowercase ASCII letters, digits and
-- '-'), made from its name when it is created and never changed after, so a
-- renamed application keeps its URLs. '' until assigned: applications made
-- before this migration get theirs when Ponte next starts (auth.BackfillSlugs,
-- oldest first, the same rule as new ones), which needs the accent folding
-- SQL cannot do on both engines. Unique among assigned slugs; the partial
-- index lets the unassigned '' repeat.

-- +goose Up
ALTER TABLE applications ADD COLUMN slug TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX applications_slug ON applications (slug) WHERE slug <> '';

-- +goose Down
DROP INDEX applications_slug;
ALTER TABLE applications DROP COLUMN slug;

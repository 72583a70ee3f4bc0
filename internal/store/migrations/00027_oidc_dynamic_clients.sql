-- Dynamic client registration (issue 16 §2): a client registered with a
-- software statement (POST /register) records the statement's software_id
-- beside its JSON, so that one software has at most one client at this
-- server (DCR-BR, "one client per software statement"), also when two
-- registrations race. NULL for hand-registered initiators. The client's
-- registration_access_token is kept inside data as a SHA-256 hash only.

-- +goose Up
ALTER TABLE oidc_clients ADD COLUMN software_id TEXT;
CREATE UNIQUE INDEX oidc_clients_software_id ON oidc_clients (software_id);

-- +goose Down
DROP INDEX oidc_clients_software_id;
ALTER TABLE oidc_clients DROP COLUMN software_id;

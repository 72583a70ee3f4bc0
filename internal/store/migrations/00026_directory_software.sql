-- The sandbox Directory (issue 16 §1): each piece of participants' software
-- it issued a software statement for, with the public JWKS the participant
-- uploaded (served at its keystore URL) and what the statement says. One row
-- per organisation and software; issuing again replaces it. The list
-- columns hold JSON arrays of strings.

-- +goose Up
CREATE TABLE directory_software (
    org_id        TEXT NOT NULL,
    software_id   TEXT NOT NULL,
    org_name      TEXT NOT NULL,
    org_number    TEXT NOT NULL DEFAULT '',
    client_name   TEXT NOT NULL,
    roles         TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    webhook_uris  TEXT NOT NULL,
    jwks          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (org_id, software_id)
);

-- +goose Down
DROP TABLE directory_software;

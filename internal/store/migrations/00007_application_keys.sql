-- Application keys (issue 5 §1): a partner application's public JSON Web Key
-- Set, against which Ponte verifies the signed JWT bodies it sends to the
-- Payments API, and whether it may still send plain JSON bodies instead
-- (the sandbox demo application may). Signed bodies carry a jti that must
-- not repeat within 24 h per application: payment_consent_jtis records it in
-- the transaction that creates the consent, and a sweep deletes it after.

-- +goose Up
ALTER TABLE applications ADD COLUMN jwks TEXT NOT NULL DEFAULT '';              -- public JWKS (JSON), '' when none
ALTER TABLE applications ADD COLUMN accept_plain_json INTEGER NOT NULL DEFAULT 0;
UPDATE applications SET accept_plain_json = 1 WHERE sandbox_demo = 1;

CREATE TABLE payment_consent_jtis (
    application_id  TEXT NOT NULL REFERENCES applications (id),
    jti             TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,      -- Unix ms: first use + 24 h
    PRIMARY KEY (application_id, jti)
);
CREATE INDEX payment_consent_jtis_expires ON payment_consent_jtis (expires_at);

-- +goose Down
DROP TABLE payment_consent_jtis;
ALTER TABLE applications DROP COLUMN accept_plain_json;
ALTER TABLE applications DROP COLUMN jwks;

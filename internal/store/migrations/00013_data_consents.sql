-- Data-sharing consents of the Consents API v3 (holder side,
-- internal/dataconsents). Every status with a timer (AWAITING_AUTHORISATION:
-- the 60-minute authorisation window; AUTHORISED: expirationDateTime) has
-- its job in the jobs table, written in the same transaction as the status
-- change.

-- +goose Up
CREATE TABLE data_consents (
    id                    TEXT PRIMARY KEY,          -- urn:ponte:dc:<uuid>
    application_id        TEXT NOT NULL REFERENCES applications (id),  -- the receiving institution
    status                TEXT NOT NULL,             -- AWAITING_AUTHORISATION | AUTHORISED | REJECTED
    document              TEXT NOT NULL,             -- loggedUser CPF
    business_document     TEXT NOT NULL DEFAULT '',  -- businessEntity CNPJ, '' for a natural person
    permissions           TEXT NOT NULL,             -- granted permissions, space-separated, request order
    is_linked             INTEGER NOT NULL DEFAULT 0,
    expires_at            BIGINT,                    -- expirationDateTime (Unix ms); NULL: no end date
    due_at                BIGINT,                    -- when the current status times out; NULL: never
    rejection             TEXT,                      -- JSON: rejectedBy, reason {code, additionalInformation}
    holder_application_id TEXT,                      -- the holder partner whose customer authorised it
    account_ids           TEXT,                      -- JSON array of customers' account ids chosen by the user
    created_at            BIGINT NOT NULL,
    authorised_at         BIGINT,
    status_updated_at     BIGINT NOT NULL
);
CREATE INDEX data_consents_application ON data_consents (application_id, created_at);
CREATE INDEX data_consents_customer ON data_consents (holder_application_id, document, status);

-- Renewals (POST /consents/{consentId}/extends), newest first on reads.
CREATE TABLE data_consent_extensions (
    consent_id          TEXT NOT NULL REFERENCES data_consents (id),
    seq                 INTEGER NOT NULL,
    expires_at          BIGINT,                      -- NULL: no end date
    previous_expires_at BIGINT,
    logged_user         TEXT NOT NULL,               -- JSON LoggedUserExtensions
    business_entity     TEXT,                        -- JSON BusinessEntityExtensions
    customer_ip         TEXT NOT NULL,
    user_agent          TEXT NOT NULL,
    requested_at        BIGINT NOT NULL,
    PRIMARY KEY (consent_id, seq)
);

-- +goose Down
DROP TABLE data_consent_extensions;
DROP TABLE data_consents;

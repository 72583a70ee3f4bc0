-- Key fingerprints (issue 17 §1): the database remembers which keys it was
-- used with, so two instances can never sign, seal or encrypt with different
-- keys against one database. One row per key name and fingerprint: the
-- current key of each name (current = 1) and the retired ones a rotation
-- keeps for verifying or opening (current = 0). A fingerprint is a one-way
-- digest of the key (never the key), e.g. the SHA-256 of a public key's DER
-- or an HKDF-derived digest of a symmetric key.

-- +goose Up
CREATE TABLE key_fingerprints (
    name        TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    current     INTEGER NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT,
    PRIMARY KEY (name, fingerprint)
);
CREATE UNIQUE INDEX key_fingerprints_current ON key_fingerprints (name) WHERE current = 1;

-- +goose Down
DROP INDEX key_fingerprints_current;
DROP TABLE key_fingerprints;

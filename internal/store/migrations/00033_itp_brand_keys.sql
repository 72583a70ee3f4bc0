-- Brands' signing keys in the database (issue 17 §1): the private key Ponte
-- signs its request objects and client assertions at a brand with was a file
-- in the data directory of whichever host added the brand, which another
-- instance does not have. It is kept here, sealed with the data key
-- (internal/vault, context itp-brand-key:<brand id>), so every instance
-- reads it; brands added before are imported from their file at start.
-- 'ponte keys reseal' re-seals it like every sealed value.

-- +goose Up
CREATE TABLE itp_brand_keys (
    brand_id    TEXT PRIMARY KEY REFERENCES itp_brands (id),
    sealed_key  TEXT NOT NULL,      -- PEM PKCS #8 RSA private key, sealed
    created_at  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE itp_brand_keys;

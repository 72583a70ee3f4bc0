package oidc

import (
	"crypto/rsa"
	"fmt"

	"github.com/go-jose/go-jose/v4"
	"github.com/luikyv/go-oidc/pkg/goidc"
)

// ID token encryption (FAPI-BR): an ID token that carries personal data
// travels through the user's browser, so a client that registered an
// encryption key gets it signed (PS256) and then encrypted to that key as a
// nested JWT. The profile allows exactly one pair of algorithms.
const (
	IDTokenKeyEncAlg     = goidc.RSA_OAEP
	IDTokenContentEncAlg = goidc.A256GCM
)

// minEncryptionKeyBits is the smallest RSA modulus Ponte encrypts to, the
// same floor as the signing keys'.
const minEncryptionKeyBits = 2048

// encryptionKeys checks the encryption keys of a client's key set (use
// "enc", or an alg that is a key-encryption algorithm) and reports whether
// it has one: RSA of at least 2048 bits whose alg is RSA-OAEP. A key without
// alg is given RSA-OAEP, the one algorithm Ponte will use with it, because
// go-oidc picks the client's encryption key by its alg. Any other
// encryption key is refused rather than ignored, so a client never believes
// its ID tokens are encrypted when they are not.
func encryptionKeys(keys []goidc.JSONWebKey) (bool, error) {
	found := false
	for i := range keys {
		k := &keys[i]
		if !isEncryptionKey(k) {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != string(IDTokenKeyEncAlg) {
			return false, fmt.Errorf("%w: encryption key %q has alg %q; ID tokens are encrypted with %s and %s only (FAPI-BR)",
				ErrInvalidClient, k.KeyID, k.Algorithm, IDTokenKeyEncAlg, IDTokenContentEncAlg)
		}
		pub, ok := k.Key.(*rsa.PublicKey)
		if !ok {
			return false, fmt.Errorf("%w: encryption key %q is not an RSA key (%s needs one)", ErrInvalidClient, k.KeyID, IDTokenKeyEncAlg)
		}
		if pub.N.BitLen() < minEncryptionKeyBits {
			return false, fmt.Errorf("%w: encryption key %q has %d bits; at least %d are required",
				ErrInvalidClient, k.KeyID, pub.N.BitLen(), minEncryptionKeyBits)
		}
		k.Algorithm, k.Use = string(IDTokenKeyEncAlg), string(goidc.KeyUsageEncryption)
		found = true
	}
	return found, nil
}

// isEncryptionKey reports whether k is meant for encryption: use "enc", or
// no use and a JWE key-management algorithm as its alg.
func isEncryptionKey(k *goidc.JSONWebKey) bool {
	if k.Use == string(goidc.KeyUsageEncryption) {
		return true
	}
	if k.Use != "" {
		return false
	}
	switch jose.KeyAlgorithm(k.Algorithm) {
	case jose.RSA1_5, jose.RSA_OAEP, jose.RSA_OAEP_256, jose.ECDH_ES, jose.ECDH_ES_A128KW, jose.ECDH_ES_A192KW,
		jose.ECDH_ES_A256KW, jose.A128KW, jose.A192KW, jose.A256KW, jose.DIRECT, jose.A128GCMKW, jose.A192GCMKW,
		jose.A256GCMKW, jose.PBES2_HS256_A128KW, jose.PBES2_HS384_A192KW, jose.PBES2_HS512_A256KW:
		return true
	}
	return false
}

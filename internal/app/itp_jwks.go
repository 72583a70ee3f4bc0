package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/go-jose/go-jose/v4"
	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/itp"
)

// PathITPJWKS is where Ponte-as-initiator publishes its public keys: the
// signing keys of its registrations at brands and its id_token encryption
// key, for brands to verify what it signs and encrypt what they send it.
const PathITPJWKS = "/itp/jwks.json"

// minITPEncryptionBits is the smallest RSA modulus of an encryption key.
const minITPEncryptionBits = 2048

// itpEncryption holds Ponte-as-initiator's id_token encryption keys
// (--itp-encryption-key): brands encrypt to the first, the current one,
// which Ponte publishes and registers; every key decrypts. A nil
// *itpEncryption is "no keys": nothing is published, encrypted id_tokens
// are refused.
type itpEncryption struct {
	keys []fapiclient.DecryptionKey
	// current is the public part of keys[0], as published and registered.
	current jose.JSONWebKey
	// requiredAt is the brand where Ponte itself registered the current
	// key (the sandbox brand): its id_tokens must come encrypted.
	requiredAt string
}

// loadITPEncryption loads the configured keys; the first was created by
// createKeys when absent, the others must exist.
func loadITPEncryption(cfg config.Config) (*itpEncryption, error) {
	if len(cfg.ITPEncryptionKeyFiles) == 0 {
		return nil, nil
	}
	e := &itpEncryption{}
	for i, path := range cfg.ITPEncryptionKeyFiles {
		if i > 0 {
			if _, err := os.Stat(path); err != nil {
				return nil, fmt.Errorf("app: --itp-encryption-key %s: %w", path, err)
			}
		}
		key, err := auth.LoadOrCreateKey(path)
		if err != nil {
			return nil, fmt.Errorf("app: --itp-encryption-key: %w", err)
		}
		if bits := key.Private.N.BitLen(); bits < minITPEncryptionBits {
			return nil, fmt.Errorf("app: --itp-encryption-key %s: %d-bit RSA key, at least %d bits are required", path, bits, minITPEncryptionBits)
		}
		e.keys = append(e.keys, fapiclient.DecryptionKey{KeyID: key.KeyID, Key: key.Private})
	}
	e.current = jose.JSONWebKey{Key: &e.keys[0].Key.PublicKey, KeyID: e.keys[0].KeyID,
		Algorithm: string(fapiclient.IDTokenKeyAlg), Use: "enc"}
	return e, nil
}

// configure gives a brand's client Ponte's decryption keys, and at the
// brand where Ponte registered its key itself, the refusal of plain
// id_tokens (one arriving unencrypted there was not sent as registered).
// Other brands' registrations are made by hand, so Ponte accepts both.
func (e *itpEncryption) configure(c *fapiclient.Client, brandID string) {
	if e == nil {
		return
	}
	c.DecryptionKeys = e.keys
	c.RequireEncryptedIDToken = e.requiredAt != "" && brandID == e.requiredAt
}

// clientJWKS is the key set Ponte registers at a brand: its application's
// signing keys plus the current encryption key.
func (e *itpEncryption) clientJWKS(signing json.RawMessage) (json.RawMessage, error) {
	if e == nil {
		return signing, nil
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(signing, &set); err != nil {
		return nil, fmt.Errorf("app: initiator jwks: %w", err)
	}
	set.Keys = append(set.Keys, e.current)
	return json.Marshal(set)
}

// registered reports whether c, Ponte's registration at its own holder
// side, has the current encryption key (false for a registration from
// before encryption, or before a key rotation).
func (e *itpEncryption) registered(c *goidc.Client) bool {
	if e == nil {
		return true
	}
	if c.PublicJWKS == nil || c.IDTokenKeyEncAlg != goidc.KeyEncryptionAlgorithm(fapiclient.IDTokenKeyAlg) {
		return false
	}
	k, err := c.PublicJWKS.Key(e.current.KeyID)
	return err == nil && k.Use == "enc"
}

// itpJWKS answers GET /itp/jwks.json: the public signing keys of Ponte's
// registrations at the enabled brands and the current encryption key.
type itpJWKS struct {
	brands  *itp.Service
	clients *brandClients
	enc     *itpEncryption
	logger  *slog.Logger
}

func (h itpJWKS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	set, err := h.keys(r.Context())
	if err != nil {
		h.logger.ErrorContext(r.Context(), "initiator jwks", "err", err)
		httpx.WriteJSON(w, r, http.StatusInternalServerError, map[string]string{"error": "the key set cannot be read now"})
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	httpx.WriteJSON(w, r, http.StatusOK, set)
}

func (h itpJWKS) keys(ctx context.Context) (jose.JSONWebKeySet, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	brands, err := h.brands.Brands(ctx)
	if err != nil {
		return set, err
	}
	seen := map[string]bool{}
	for _, b := range brands {
		if !b.Enabled {
			continue
		}
		c, err := h.clients.Client(ctx, b.ID)
		if err != nil {
			// One brand's broken key or certificate file does not hide the others'.
			h.logger.WarnContext(ctx, "initiator jwks: brand key", "brand_id", b.ID, "err", err)
			continue
		}
		if seen[c.KeyID] {
			continue
		}
		seen[c.KeyID] = true
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &c.Key.PublicKey, KeyID: c.KeyID, Algorithm: string(jose.PS256), Use: "sig"})
	}
	if h.enc != nil {
		set.Keys = append(set.Keys, h.enc.current)
	}
	return set, nil
}

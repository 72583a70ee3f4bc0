package app

import (
	"context"
	"net/http"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/cards"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/vault"
)

// wireCards loads the wallet keys, builds the card service (in the sandbox,
// demo being the demo application, with its cards seeded) and registers the
// card routes. Parts that production has not configured answer 503 and are
// named in a start-up warning.
func wireCards(ctx context.Context, b base, mux *http.ServeMux, vlt *vault.Vault, events cards.EventEmitter,
	verifier httpx.TokenVerifier, demo *auth.Application) (*cards.Service, error) {
	cfg := b.cfg
	w, secret, missing, err := cards.LoadKeys(cards.KeyFiles{
		Sandbox: cfg.Sandbox(), DataDir: cfg.KeyDir(), AppleRootCA: cfg.AppleRootCAFile,
		TAVKey: cfg.TAVKeyFile, PEPK: cfg.PEPKFile, NetworkSecretFile: cfg.NetworkSecretFile,
	}, b.clock.Now())
	if err != nil {
		return nil, err
	}
	if w.Apple != nil {
		w.Apple.Now = b.clock.Now
	}
	if len(missing) > 0 {
		b.logger.WarnContext(ctx, "card wallet provisioning is partly unconfigured: those requests answer 503", "missing", missing)
	}
	svc := cards.NewService(b.db, b.clock, vlt, w, events, b.logger)
	if demo != nil {
		if _, err := svc.EnsureSandboxCards(ctx, demo.ID); err != nil {
			return nil, err
		}
	}
	(&cards.Handler{Cards: svc, Verifier: verifier, Logger: b.logger, Clock: b.clock, NetworkSecret: secret}).Register(mux)
	return svc, nil
}

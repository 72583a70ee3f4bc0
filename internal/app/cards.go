package app

import (
	"context"
	"net/http"

	"github.com/ponte-ofb/ponte/internal/cards"
)

// wireCards loads the wallet keys and registers the card routes. Parts that
// production has not configured answer 503 and are named in a start-up warning.
func (a *App) wireCards(mux *http.ServeMux, events cards.EventEmitter) error {
	cfg := a.Config
	w, secret, missing, err := cards.LoadKeys(cards.KeyFiles{
		Sandbox: cfg.Sandbox(), DataDir: cfg.DataDir, AppleRootCA: cfg.AppleRootCAFile,
		TAVKey: cfg.TAVKeyFile, PEPK: cfg.PEPKFile, NetworkSecretFile: cfg.NetworkSecretFile,
	}, a.Clock.Now())
	if err != nil {
		return err
	}
	if w.Apple != nil {
		w.Apple.Now = a.Clock.Now
	}
	if len(missing) > 0 {
		a.Logger.Warn("card wallet provisioning is partly unconfigured: those requests answer 503", "missing", missing)
	}
	a.Cards = cards.NewService(a.DB, a.Clock, a.Vault, w, events, a.Logger)
	if a.Demo != nil {
		if _, err := a.Cards.EnsureSandboxCards(context.Background(), a.Demo.ID); err != nil {
			return err
		}
	}
	(&cards.Handler{Cards: a.Cards, Verifier: a.Tokens, Logger: a.Logger, Clock: a.Clock, NetworkSecret: secret}).Register(mux)
	return nil
}

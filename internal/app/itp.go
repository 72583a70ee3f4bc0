package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/itp"
)

// wireITP builds the initiator-side service (brands, journeys, Open Keys
// journey sessions), registers its expiry and sweep jobs on a.Jobs, queues
// the periodic sweep and adds its routes to mux. Call after wireWebhooks,
// which creates the job queue. JOURNEY_DEFAULT_ALIAS is read from the
// process environment, the seed's fallback after the application setting.
func (a *App) wireITP(ctx context.Context, mux *http.ServeMux) error {
	svc := itp.NewService(a.DB, a.Clock, a.Logger, a.Config.PublicURL, filepath.Join(a.Config.DataDir, "brands"),
		itpApplications{a.Apps}, os.Getenv)
	svc.Register(a.Jobs)
	if err := svc.ScheduleSweep(ctx); err != nil {
		return fmt.Errorf("itp: schedule sweep: %w", err)
	}
	(&itp.Handler{Service: svc, Verifier: a.Tokens, Logger: a.Logger}).Register(mux)
	a.ITP = svc
	return nil
}

// itpApplications reads partner applications for the journey sessions
// straight from the database, so redirect URLs and disabling apply at once.
type itpApplications struct{ apps *auth.Applications }

// Application implements itp.Applications.
func (p itpApplications) Application(ctx context.Context, clientID string) (*itp.Application, error) {
	a, err := p.apps.Get(ctx, clientID)
	if errors.Is(err, auth.ErrNotFound) {
		return nil, itp.ErrApplicationNotFound
	}
	if err != nil {
		return nil, err
	}
	return &itp.Application{ID: a.ID, ClientID: a.ClientID, RedirectURLs: a.RedirectURLs, Disabled: a.Disabled}, nil
}

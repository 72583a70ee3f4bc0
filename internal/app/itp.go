package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/jobs"
)

// wireITP builds the initiator-side service (brands, journeys, Open Keys
// journey sessions), registers its expiry and sweep jobs on jobq, queues the
// periodic sweep and adds its routes to mux. JOURNEY_DEFAULT_ALIAS is read
// from the process environment, the seed's fallback after the application
// setting.
func wireITP(ctx context.Context, b base, mux *http.ServeMux, jobq *jobs.Client, apps *auth.Applications,
	verifier httpx.TokenVerifier) (*itp.Service, error) {
	svc := itp.NewService(b.db, b.clock, b.logger, b.cfg.PublicURL, filepath.Join(b.cfg.DataDir, "brands"),
		itpApplications{apps}, os.Getenv)
	svc.Register(jobq)
	if err := svc.ScheduleSweep(ctx); err != nil {
		return nil, fmt.Errorf("itp: schedule sweep: %w", err)
	}
	(&itp.Handler{Service: svc, Verifier: verifier, Logger: b.logger}).Register(mux)
	return svc, nil
}

// itpApplications reads partner applications for the journey sessions
// straight from the database, so redirect URLs and disabling apply at once
// (on PostgreSQL through a cached read checked in the create's statement).
type itpApplications struct{ apps *auth.Applications }

// UnchangedSQL implements itp.ApplicationRows: a journey-session create on
// PostgreSQL checks the application it cached in its own statement.
func (itpApplications) UnchangedSQL() string {
	return `SELECT 1 FROM applications WHERE id = $1 AND disabled = 0 AND redirect_urls::jsonb = $2::text::jsonb`
}

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

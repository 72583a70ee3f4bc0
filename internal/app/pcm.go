package app

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/ponte-ofb/ponte/internal/holder"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/keyfile"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/pcm"
	"github.com/ponte-ofb/ponte/internal/recurring"
)

// AdminTokenFile is where the sandbox keeps its generated admin credential.
const AdminTokenFile = "admin-token"

// wirePCM builds the PCM step recorder, the report and funnel APIs and the
// admin dashboard. Call after wirePayments and wireRecurring and before
// wireJourney and wireITPFlow, which hand their steps to a.PCM.
func (a *App) wirePCM(mux *http.ServeMux) error {
	token := a.Config.AdminToken
	if token == "" && a.Config.Sandbox() {
		b, _, err := keyfile.LoadOrCreate(filepath.Join(a.Config.DataDir, AdminTokenFile), func() ([]byte, error) {
			raw := make([]byte, 32)
			if _, err := rand.Read(raw); err != nil {
				return nil, err
			}
			return []byte(base64.RawURLEncoding.EncodeToString(raw) + "\n"), nil
		})
		if err != nil {
			return fmt.Errorf("app: sandbox admin token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	svc := &pcm.Service{DB: a.DB, Clock: a.Clock, Recorder: &pcm.Recorder{Clock: a.Clock}, Owners: pcmOwners{a}}
	a.PCM = &pcm.Handler{Service: svc, Verifier: a.Tokens, AdminToken: token, Floor: a.Config.PCMFloor, Pages: a.pages, Logger: a.Logger}
	a.PCM.Register(mux)
	return nil
}

// pcmOwners finds whose a consent is for the report API: the application
// that created it at Ponte's holder side, or the one Ponte initiated it for
// at a brand.
type pcmOwners struct{ a *App }

// ConsentOwner implements pcm.Owners.
func (o pcmOwners) ConsentOwner(ctx context.Context, applicationID, consentID string) (string, bool, error) {
	if o.a.ITPFlow != nil {
		auth, err := o.a.ITPFlow.Authorization(ctx, applicationID, consentID)
		switch {
		case err == nil:
			return auth.BrandID, true, nil
		case !errors.Is(err, itpflow.ErrNotFound):
			return "", false, err
		}
	}
	if _, err := o.a.Payments.Get(ctx, applicationID, consentID); err == nil {
		return "", true, nil
	} else if !errors.Is(err, payments.ErrNotFound) {
		return "", false, err
	}
	if _, err := o.a.Recurring.Get(ctx, applicationID, consentID); err == nil {
		return "", true, nil
	} else if !errors.Is(err, recurring.ErrNotFound) {
		return "", false, err
	}
	return "", false, nil
}

// holderSteps records the holder's journey steps (holder.StepRecorder).
type holderSteps struct{ r *pcm.Recorder }

// RecordStep implements holder.StepRecorder.
func (h holderSteps) RecordStep(ctx context.Context, tx *sql.Tx, e holder.StepEvent) error {
	_, _, err := h.r.Record(ctx, tx, pcm.Event{ConsentID: e.ConsentID, Side: pcm.SideHolder, Step: e.Step, Type: e.Type, URI: e.URI,
		Device: e.Device, ApplicationID: e.ApplicationID, Source: pcm.SourcePayload, OccurredAt: e.At})
	return err
}

// itpSteps records the initiator's journey steps (itpflow.StepRecorder).
type itpSteps struct{ r *pcm.Recorder }

// RecordStep implements itpflow.StepRecorder.
func (i itpSteps) RecordStep(ctx context.Context, tx *sql.Tx, e itpflow.StepEvent) error {
	_, _, err := i.r.Record(ctx, tx, pcm.Event{ConsentID: e.ConsentID, Side: pcm.SideInitiator, Step: e.Step, Error: e.Error, URI: e.URI,
		Device: e.Device, ApplicationID: e.ApplicationID, BrandID: e.BrandID, Source: pcm.SourcePayload, OccurredAt: e.At})
	return err
}

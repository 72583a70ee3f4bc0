package app

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/keyfile"
	"github.com/ponte-ofb/ponte/internal/pcm"
	"github.com/ponte-ofb/ponte/internal/store"
)

// AdminTokenFile is where the sandbox keeps its generated admin credential.
const AdminTokenFile = "admin-token"

// wirePCM builds the PCM report and funnel APIs and the admin dashboard on
// steps, the recorder every journey step goes through.
func wirePCM(b base, mux *http.ServeMux, steps *pcm.Recorder, pages *template.Template, verifier httpx.TokenVerifier) (*pcm.Handler, error) {
	token := b.cfg.AdminToken
	if token == "" && (b.cfg.Sandbox() || b.cfg.KeysDir != "") {
		// createKeys made it, or checked the key set holds it.
		raw, _, err := keyfile.LoadOrCreate(filepath.Join(b.cfg.KeyDir(), AdminTokenFile), func() ([]byte, error) {
			raw := make([]byte, 32)
			if _, err := rand.Read(raw); err != nil {
				return nil, err
			}
			return []byte(base64.RawURLEncoding.EncodeToString(raw) + "\n"), nil
		})
		if err != nil {
			return nil, fmt.Errorf("app: sandbox admin token: %w", err)
		}
		token = strings.TrimSpace(string(raw))
	}
	svc := &pcm.Service{DB: b.db, Clock: b.clock, Recorder: steps, Owners: pcmOwners{b.db}}
	h := &pcm.Handler{Service: svc, Verifier: verifier, AdminToken: token, Floor: b.cfg.PCMFloor, Pages: pages, Logger: b.logger}
	h.Register(mux)
	return h, nil
}

// pcmOwners finds whose a consent is for the report API: the application
// that created it at Ponte's holder side (a payment, recurring or
// data-sharing consent), or the one Ponte initiated it for at a brand (the
// latest authorization's brand).
type pcmOwners struct{ db *store.DB }

// consentOwnerSQL answers, in one prepared statement on the report API's
// hot path, whether the application owns the consent: the brand of its
// latest authorization for it when Ponte initiated it (k = 0), else a row
// when it created it at the holder (k = 1), else no row. Only ownership is
// read: reporting a step never applies a consent's lazy timers.
const consentOwnerSQL = `SELECT brand_id FROM (
	SELECT 0 AS k, brand_id, created_at FROM itp_authorizations WHERE application_id = $1 AND consent_id = $2
	UNION ALL SELECT 1, '', 0 FROM payment_consents WHERE id = $2 AND application_id = $1
	UNION ALL SELECT 1, '', 0 FROM recurring_consents WHERE id = $2 AND application_id = $1
	UNION ALL SELECT 1, '', 0 FROM data_consents WHERE id = $2 AND application_id = $1
) o ORDER BY k, created_at DESC LIMIT 1`

// ConsentOwnerSQL implements pcm.OwnerRows: on PostgreSQL the report API
// runs the ownership check inside its one statement.
func (pcmOwners) ConsentOwnerSQL() string { return consentOwnerSQL }

// ConsentOwner implements pcm.Owners.
func (o pcmOwners) ConsentOwner(ctx context.Context, applicationID, consentID string) (string, bool, error) {
	st, err := o.db.ReadStmt(ctx, consentOwnerSQL)
	if err != nil {
		return "", false, fmt.Errorf("app: pcm consent owner: %w", err)
	}
	var brandID string
	switch err := st.QueryRowContext(ctx, applicationID, consentID).Scan(&brandID); {
	case err == nil:
		return brandID, true, nil
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	default:
		return "", false, fmt.Errorf("app: pcm consent owner: %w", err)
	}
}

// holderSteps records the holder's journey steps (consentflow.StepRecorder).
type holderSteps struct{ r *pcm.Recorder }

// RecordStep implements consentflow.StepRecorder.
func (h holderSteps) RecordStep(ctx context.Context, tx *sql.Tx, e consentflow.StepEvent) error {
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

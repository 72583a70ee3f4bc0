package consentflow

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ponte-ofb/ponte/internal/ofb"
)

// The journey steps the interaction service records for the PCM.

// Journey steps as the PCM (v1.0.4 hybrid flow) names them, recorded
// through the Interactions' recorder with the state change that causes each.
const (
	PCMRedirectTarget   = "REDIRECT_TARGET"
	PCMAuthenticated    = "AUTHENTICATED"
	PCMRedirectToClient = "REDIRECT_TO_CLIENT"

	// REDIRECT_TARGET types: the user is handed to the partner's app
	// (deep link or QR code) or authenticates where they landed.
	PCMAwaitingHandoff  = "AWAITING_HANDOFF"
	PCMAwaitingUserAuth = "AWAITING_USER_AUTH"
	// REDIRECT_TO_CLIENT types.
	PCMAuthorised = "AUTHORISED"
	PCMRejected   = "REJECTED"
)

// StepEvent is a journey step at the holder, for the PCM.
type StepEvent struct {
	ConsentID string
	// ApplicationID is the holder partner serving the user.
	ApplicationID string
	Step, Type    string
	// URI is uriAuthorizationEndpoint (REDIRECT_TARGET) or uri_callback
	// (REDIRECT_TO_CLIENT); the PCM recorder strips its query string.
	URI    string
	Device Device
	At     time.Time
}

// StepRecorder records journey steps in the transaction of the state change
// that caused them: an error rolls the change back.
type StepRecorder interface {
	RecordStep(ctx context.Context, tx *sql.Tx, e StepEvent) error
}

// record hands a step to the Recorder, if any, in the step's transaction.
func (s *Interactions) record(ctx context.Context, tx *sql.Tx, it *Interaction, step, typ, uri string, d *Device, at time.Time) error {
	if s.recorder == nil {
		return nil
	}
	dev := ofb.DeviceFromUserAgent("") // unknown: BROWSER, OTHER
	if d != nil && d.Platform != "" {
		dev = *d
	}
	err := s.recorder.RecordStep(ctx, tx, StepEvent{ConsentID: it.ConsentID, ApplicationID: it.ApplicationID,
		Step: step, Type: typ, URI: uri, Device: dev, At: at})
	if err != nil {
		return fmt.Errorf("holder: record the PCM %s step: %w", step, err)
	}
	return nil
}

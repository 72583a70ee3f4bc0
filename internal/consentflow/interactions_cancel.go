package consentflow

import (
	"context"
	"database/sql"
	"errors"

	"github.com/ponte-ofb/ponte/internal/httpx"
)

// The cancel step of seed 002: the user refuses the consent.

// CancelRequest is the body of …/interactions/{interactionId}/cancel.
type CancelRequest struct {
	Device *Device `json:"device" required:"true"`
}

// Validate reports every invalid field of a cancel request.
func (in *CancelRequest) Validate() []httpx.FieldError {
	if in.Device == nil {
		return nil
	}
	return deviceFields(in.Device, "device")
}

// Cancel records the user's refusal: the consent becomes REJECTED /
// REJEITADO_USUARIO (unless it already left AWAITING_AUTHORISATION, e.g.
// expired: the initiator then learns that from the consent).
func (s *Interactions) Cancel(ctx context.Context, actor Actor, clientName, id string, in CancelRequest) (*Outcome, error) {
	_, p, err := s.access(ctx, s.db.Read(), actor, clientName, id)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	out := &Outcome{ByDisplayName: !p.NamedBySlug(clientName)}
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		it, err := getInteraction(ctx, tx, "id", id)
		if err != nil {
			return err
		}
		if it.Finished() {
			return ErrInteractionFinished
		}
		// Cancelling after expiry is allowed: the user still wants out.
		kind, _, err := s.consents.find(ctx, tx, it.ConsentID)
		switch {
		case errors.Is(err, ErrConsentNotFound):
		case err != nil:
			return err
		default:
			if err := kind.Reject(ctx, tx, it.ConsentID); err != nil {
				return err
			}
		}
		it.Status, it.UpdatedAt = InteractionCancelled, now
		if err := updateInteraction(ctx, tx, it); err != nil {
			return err
		}
		out.Interaction = it
		if err := insertStep(ctx, tx, it.ID, StepCancel, in.Device, now); err != nil {
			return err
		}
		return s.record(ctx, tx, it, PCMRedirectToClient, PCMRejected, it.RedirectURI, in.Device, now)
	})
	if err != nil {
		return nil, err
	}
	out.RedirectURI = s.ResumeURL(out.Interaction)
	return out, nil
}

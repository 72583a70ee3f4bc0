package app

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/recurring"
)

// consentStates answers the authorization server's oidc.ConsentChecker from
// the holder's consent services, so that refresh tokens live and die with
// their consent. The services' Get applies a timer past due first, so an
// expired consent reads as its final status, and refuses another
// application's consent (ErrNotFound: not active).
type consentStates struct {
	apps      *auth.Applications
	payments  *payments.Service
	recurring *recurring.Service
	data      *dataconsents.Service
}

// ConsentStatus implements oidc.ConsentChecker. The consent id's prefix
// says its kind: urn:ponte:rc: recurring, urn:ponte:dc: data sharing,
// urn:ponte: a payment consent.
func (c consentStates) ConsentStatus(ctx context.Context, clientID, consentID string) (bool, time.Time, error) {
	app, err := c.apps.Get(ctx, clientID)
	if errors.Is(err, auth.ErrNotFound) || (err == nil && app.Disabled) {
		return false, time.Time{}, nil
	}
	if err != nil {
		return false, time.Time{}, err
	}
	switch {
	case strings.HasPrefix(consentID, recurring.IDPrefix):
		rc, err := c.recurring.Get(ctx, app.ID, consentID)
		if errors.Is(err, recurring.ErrNotFound) {
			return false, time.Time{}, nil
		}
		if err != nil {
			return false, time.Time{}, err
		}
		// ExpiresAt is expirationDateTime, zero for an open-ended consent.
		return rc.Status == recurring.StatusAuthorised, rc.ExpiresAt, nil
	case strings.HasPrefix(consentID, dataconsents.IDPrefix):
		dc, err := c.data.Get(ctx, app.ID, consentID)
		if errors.Is(err, dataconsents.ErrNotFound) {
			return false, time.Time{}, nil
		}
		if err != nil {
			return false, time.Time{}, err
		}
		return dc.Status == dataconsents.StatusAuthorised, dc.ExpiresAt, nil
	default:
		pc, err := c.payments.Get(ctx, app.ID, consentID)
		if errors.Is(err, payments.ErrNotFound) {
			return false, time.Time{}, nil
		}
		if err != nil {
			return false, time.Time{}, err
		}
		// An authorised payment consent expires at the end of its
		// consumption window; once its payments are made it is CONSUMED.
		return pc.Status == payments.StatusAuthorised, pc.ExpiresAt, nil
	}
}

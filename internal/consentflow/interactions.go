package consentflow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Interactions runs the holder's consent journey.
type Interactions struct {
	db       *store.DB
	clock    clock.Clock
	consents Consents
	partners Partners
	// issuer is Ponte's public URL: login tokens are addressed to it and the
	// journey resumes at issuer/oauth/authorize/{callbackId}.
	issuer string
	// recorder, when not nil, records each step for the PCM in the step's
	// transaction.
	recorder StepRecorder
}

// NewInteractions returns the interaction service.
// consents are the kinds of consent the journey authorises; recorder, which
// may be nil, records each step for the PCM.
func NewInteractions(db *store.DB, c clock.Clock, consents Consents, partners Partners, recorder StepRecorder, issuer string) *Interactions {
	return &Interactions{db: db, clock: c, consents: consents, partners: partners, recorder: recorder, issuer: strings.TrimSuffix(issuer, "/")}
}

// ResumeURL is where the browser goes once the interaction is finished: the
// authorization server's callback, which redirects to the initiator.
func (s *Interactions) ResumeURL(i *Interaction) string {
	return s.issuer + "/oauth/authorize/" + url.PathEscape(i.CallbackID)
}

// BeginRequest is an authorization request that reached /oauth/authorize.
type BeginRequest struct {
	CallbackID string
	RequestURI string
	ClientID   string
	ConsentID  string
	// Desktop is true when the user's browser is not on a phone or tablet.
	Desktop bool
	// RedirectURI is the initiator's redirect_uri of the request.
	RedirectURI string
	// Device is the user's device where they landed (from the User-Agent).
	Device Device
}

// Begin opens (or, for the same callback, returns) the interaction of an
// authorization request, and returns it with its holder partner: the
// partner serving the customer the consent names. The consent must be
// awaiting authorisation.
func (s *Interactions) Begin(ctx context.Context, in BeginRequest) (*Interaction, *Partner, error) {
	var it *Interaction
	var p *Partner
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		existing, err := getInteraction(ctx, tx, "callback_id", in.CallbackID)
		if err == nil {
			it, p = existing, nil
			return nil
		}
		if !errors.Is(err, ErrInteractionNotFound) {
			return err
		}
		_, c, err := s.consents.find(ctx, tx, in.ConsentID)
		if errors.Is(err, ErrConsentNotFound) {
			return ErrConsentNotAwaiting
		}
		if err != nil {
			return err
		}
		now := s.clock.Now()
		if !c.Awaiting || !now.Before(c.ExpiresAt) {
			return ErrConsentNotAwaiting
		}
		if c.Document == "" {
			return ErrNoHolder
		}
		// Only the initiator that created the consent may ask the user to
		// authorise it: its Open Finance client_id is its application's.
		creator, err := s.partners.Partner(ctx, c.ApplicationID)
		if errors.Is(err, ErrPartnerNotFound) || (err == nil && creator.ClientID != in.ClientID) {
			return ErrForeignConsent
		}
		if err != nil {
			return err
		}
		document := c.Document
		appID, err := holderOf(ctx, tx, c)
		if err != nil {
			return err
		}
		it = &Interaction{
			ID: uuid.NewString(), ApplicationID: appID, ConsentID: c.ID, ClientID: in.ClientID,
			CallbackID: in.CallbackID, RequestURI: in.RequestURI, Document: document,
			Status: InteractionPending, Handoff: in.Desktop, RedirectURI: in.RedirectURI,
			CreatedAt: now, UpdatedAt: now, ExpiresAt: c.ExpiresAt,
		}
		if err := insertInteraction(ctx, tx, it); err != nil {
			return err
		}
		// The user landed at the holder: handed to the partner's app when it
		// has one, else authenticating in this browser (the WebView).
		if p, err = s.partners.Partner(ctx, appID); err != nil {
			return fmt.Errorf("holder: partner of interaction %s: %w", it.ID, err)
		}
		typ := PCMAwaitingUserAuth
		if p.DeepLinkURL != "" {
			typ = PCMAwaitingHandoff
		}
		return s.record(ctx, tx, it, PCMRedirectTarget, typ, s.issuer+"/oauth/authorize", &in.Device, now)
	})
	if err != nil {
		return nil, nil, err
	}
	if p == nil {
		if p, err = s.partners.Partner(ctx, it.ApplicationID); err != nil {
			return nil, nil, fmt.Errorf("holder: partner of interaction %s: %w", it.ID, err)
		}
	}
	return it, p, nil
}

// holderOf picks the holder partner of a consent: the owner of the debtor
// account the initiator fixed, if Ponte holds it; otherwise the only partner
// serving the logged user; with several, the one that created the consent.
func holderOf(ctx context.Context, tx *sql.Tx, c *ConsentView) (string, error) {
	if a := c.FixedAccount; a != nil {
		appID, owner, ok, err := customers.AccountHolder(ctx, tx, a.ISPB, a.Issuer, a.Number)
		if err != nil {
			return "", err
		}
		if ok && owner == c.Document {
			return appID, nil
		}
	}
	apps, err := customers.HolderApplications(ctx, tx, c.Document)
	if err != nil {
		return "", err
	}
	switch {
	case len(apps) == 1:
		return apps[0], nil
	case len(apps) > 1:
		for _, id := range apps {
			if id == c.ApplicationID {
				return id, nil
			}
		}
	}
	return "", ErrNoHolder
}

// ByCallback returns the interaction of an authorization request.
func (s *Interactions) ByCallback(ctx context.Context, callbackID string) (*Interaction, error) {
	return getInteraction(ctx, s.db.Read(), "callback_id", callbackID)
}

// Get returns an interaction by id.
func (s *Interactions) Get(ctx context.Context, id string) (*Interaction, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, ErrInteractionNotFound
	}
	return getInteraction(ctx, s.db.Read(), "id", id)
}

// Consent returns the consent an interaction asks the user to decide on.
// It reads straight from the read pool: one query, one round trip.
func (s *Interactions) Consent(ctx context.Context, i *Interaction) (*ConsentView, error) {
	_, c, err := s.consents.find(ctx, s.db.Read(), i.ConsentID)
	return c, err
}

// access loads the interaction for actor under the holder partner named
// clientName; any mismatch is ErrInteractionNotFound, so one partner learns
// nothing about another's interactions.
func (s *Interactions) access(ctx context.Context, q queryer, actor Actor, clientName, id string) (*Interaction, *Partner, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, nil, ErrInteractionNotFound
	}
	it, err := getInteraction(ctx, q, "id", id)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case actor.ApplicationID != "" && actor.ApplicationID == it.ApplicationID:
	case actor.SessionInteractionID != "" && actor.SessionInteractionID == it.ID:
	default:
		return nil, nil, ErrInteractionNotFound
	}
	p, err := s.partners.Partner(ctx, it.ApplicationID)
	if errors.Is(err, ErrPartnerNotFound) {
		return nil, nil, ErrInteractionNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	if !p.NamedBy(clientName) {
		return nil, nil, ErrInteractionNotFound
	}
	return it, p, nil
}

// open checks, inside the step's transaction, that the interaction can take
// a step: not finished, not expired.
func (s *Interactions) open(ctx context.Context, tx *sql.Tx, id string, now time.Time) (*Interaction, error) {
	it, err := getInteraction(ctx, tx, "id", id)
	if err != nil {
		return nil, err
	}
	if it.Finished() {
		return nil, ErrInteractionFinished
	}
	if !now.Before(it.ExpiresAt) {
		return nil, ErrInteractionExpired
	}
	return it, nil
}

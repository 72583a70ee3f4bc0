package consentflow

import (
	"context"
	"errors"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/customers"
)

// Interactions' model: an interaction, its statuses and steps, its
// partner, its actor and what a step returns, and the errors of the
// interaction service.

// Interaction statuses. PENDING → AUTHENTICATED (login) → APPROVED (consent);
// PENDING or AUTHENTICATED → CANCELLED (cancel). APPROVED and CANCELLED are final.
const (
	InteractionPending       = "PENDING"
	InteractionAuthenticated = "AUTHENTICATED"
	InteractionApproved      = "APPROVED"
	InteractionCancelled     = "CANCELLED"
)

// Interaction steps, as stored with their device (the PCM reports them).
const (
	StepLogin   = "LOGIN"
	StepConsent = "CONSENT"
	StepCancel  = "CANCEL"
)

// Errors of the interaction service; the HTTP layer maps each to its status.
var (
	ErrInteractionNotFound = errors.New("interaction not found")
	ErrInteractionExpired  = errors.New("the interaction expired with its consent")
	ErrInteractionFinished = errors.New("the interaction is already finished")
	ErrLoginRequired       = errors.New("login must come before consent")
	ErrLoginToken          = errors.New("accessToken is not a valid login token of the holder partner")
	ErrWrongUser           = errors.New("the logged-in user is not the customer the consent names")
	ErrForeignAccount      = errors.New("debtorAccount is not an account of the logged-in customer")
	ErrAccountBlocked      = errors.New("debtorAccount is blocked")
	ErrAccountNotAllowed   = errors.New("debtorAccount differs from the account the initiator fixed in the consent")
	ErrPartialApproval     = errors.New("partial approval (multiple approvers) is not offered by this holder")
	ErrConsentNotAwaiting  = errors.New("the payment consent is not awaiting authorisation")
	ErrNoHolder            = errors.New("no holder partner serves the consent's logged user")
	ErrForeignConsent      = errors.New("the consent was created by another client")
)

// Interaction is one authorization journey at the holder: the user behind a
// pushed authorization request logging in, then approving or cancelling.
type Interaction struct {
	ID            string
	ApplicationID string // the holder partner
	ConsentID     string
	ClientID      string // the initiator
	CallbackID    string
	RequestURI    string
	Document      string // the consent's logged user
	Status        string
	Handoff       bool
	// RedirectURI is the initiator's redirect_uri (the PCM uri_callback).
	RedirectURI   string
	CustomerID    string
	DebtorAccount *Account
	CreatedAt     time.Time
	UpdatedAt     time.Time
	ExpiresAt     time.Time
}

// Finished reports whether the interaction reached a final status.
func (i *Interaction) Finished() bool {
	return i.Status == InteractionApproved || i.Status == InteractionCancelled
}

// Partner is a holder partner application as the journey needs it.
type Partner struct {
	ApplicationID string
	ClientID      string
	Name          string
	// Slug is the application's {client_name} in the interaction path: a
	// stable, lowercase, URL-safe name (auth.Slug).
	Slug       string
	CompanyKey string
	// DeepLinkURL opens the partner's app; "" means the partner has no app
	// and the WebView opens directly in the user's browser.
	DeepLinkURL string
	// Keys verify the accessToken the partner signs for its logged-in user.
	Keys jose.JSONWebKeySet
}

// NamedBy reports whether segment, the path's {client_name}, names the
// partner: its slug, ASCII letters in any case; or, deprecated, its display
// name exactly, the only spelling before slugs (see NamedBySlug).
func (p *Partner) NamedBy(segment string) bool {
	return p.NamedBySlug(segment) || (p.Name != "" && segment == p.Name)
}

// NamedBySlug reports whether segment is the partner's slug. Only ASCII
// letters compare without case (slugs are lowercase ASCII): no Unicode
// folding, so "\u212Aey" (Kelvin sign) does not name "key".
func (p *Partner) NamedBySlug(segment string) bool {
	if p.Slug == "" || len(segment) != len(p.Slug) {
		return false
	}
	for i := 0; i < len(segment); i++ {
		c := segment[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p.Slug[i] {
			return false
		}
	}
	return true
}

// Partners finds holder partner applications.
type Partners interface {
	Partner(ctx context.Context, applicationID string) (*Partner, error)
}

// ErrPartnerNotFound is returned by Partners for an unknown or disabled application.
var ErrPartnerNotFound = errors.New("holder partner not found")

// Actor is who calls the interaction API: a holder partner's backend (its
// application id, from a bearer token) or the WebView (the interaction its
// browser session opened).
type Actor struct {
	ApplicationID        string
	SessionInteractionID string
}

// Outcome is what an interaction step returns.
type Outcome struct {
	Interaction *Interaction
	// Accounts are the logged-in customer's accounts (login only).
	Accounts []*customers.Account
	// RedirectURI is where the browser goes next (consent and cancel).
	RedirectURI string
	// ByDisplayName is true when the path named the partner by its display
	// name, the deprecated spelling, rather than its slug.
	ByDisplayName bool
}

// Step is a recorded interaction step.
type Step struct {
	Step      string
	Device    Device
	CreatedAt time.Time
}

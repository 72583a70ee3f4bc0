package holder

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/ofb"
	"github.com/ponte-ofb/ponte/internal/store"
)

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
	// (REDIRECT_TO_CLIENT), without its query string.
	URI    string
	Device Device
	At     time.Time
}

// StepRecorder records journey steps in the transaction of the state change
// that caused them: an error rolls the change back.
type StepRecorder interface {
	RecordStep(ctx context.Context, tx *sql.Tx, e StepEvent) error
}

// Login tokens: how long a partner's accessToken may live and the clock skew
// tolerated on its iat/exp.
const (
	MaxLoginTokenLifetime = 10 * time.Minute
	loginTokenLeeway      = 30 * time.Second
)

// LoginTokenAlgorithms are the signatures accepted on a partner's accessToken.
var LoginTokenAlgorithms = []jose.SignatureAlgorithm{jose.PS256, jose.RS256, jose.ES256}

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

// Device is the end user's device on an interaction step (seed 002).
type Device = ofb.Device

// Device platforms and operating systems (seed 002).
var (
	Platforms = ofb.Platforms
	OSes      = ofb.OSes
)

var (
	osVersionPattern = ofb.OSVersionPattern
	ispbPattern      = regexp.MustCompile(`^[0-9]{8}$`)
	issuerPattern    = regexp.MustCompile(`^[0-9]{1,4}$`)
	numberPattern    = regexp.MustCompile(`^[0-9]{1,20}$`)
)

// deviceFields reports every invalid device field under prefix.
func deviceFields(d *Device, prefix string) []httpx.FieldError {
	var out []httpx.FieldError
	for _, p := range d.Validate(prefix) {
		out = append(out, httpx.FieldError{Field: p.Field, Message: p.Message})
	}
	return out
}

func oneOf(s string, list []string) bool {
	for _, v := range list {
		if s == v {
			return true
		}
	}
	return false
}

// LoginRequest is the body of …/interactions/{interactionId}/login.
type LoginRequest struct {
	AccessToken string  `json:"accessToken" required:"true"`
	Device      *Device `json:"device" required:"true"`
}

// DebtorAccount is the account the user picks at consent (seed 002).
type DebtorAccount struct {
	ISPB        string `json:"ispb" required:"true"`
	Issuer      string `json:"issuer"`
	Number      string `json:"number" required:"true"`
	AccountType string `json:"accountType" required:"true"`
}

// ConsentRequest is the body of …/interactions/{interactionId}/consent.
type ConsentRequest struct {
	PartialApproval *bool          `json:"partialApproval" required:"true"`
	DebtorAccount   *DebtorAccount `json:"debtorAccount" required:"true"`
	// Accounts is Ponte's extension of seed 002's body for data-sharing
	// consents: every account whose data the user shares (an empty list
	// when the consent shares no account data). Absent, the debtorAccount
	// is the one account chosen. Other kinds of consent ignore it.
	Accounts []DebtorAccount `json:"accounts"`
	Device   *Device         `json:"device" required:"true"`
}

// CancelRequest is the body of …/interactions/{interactionId}/cancel.
type CancelRequest struct {
	Device *Device `json:"device" required:"true"`
}

// Validate reports every invalid field of a login request.
func (in *LoginRequest) Validate() []httpx.FieldError {
	var fields []httpx.FieldError
	if strings.Count(in.AccessToken, ".") != 2 || len(in.AccessToken) > 8192 {
		fields = append(fields, httpx.FieldError{Field: "accessToken", Message: "must be a signed JWT (compact serialization, at most 8 KiB)"})
	}
	if in.Device != nil {
		fields = append(fields, deviceFields(in.Device, "device")...)
	}
	return fields
}

// maxSharedAccounts bounds the accounts of one consent step.
const maxSharedAccounts = 100

// accountFields reports every invalid field of an account under prefix.
func accountFields(a *DebtorAccount, prefix string) []httpx.FieldError {
	var fields []httpx.FieldError
	if !ispbPattern.MatchString(a.ISPB) {
		fields = append(fields, httpx.FieldError{Field: prefix + ".ispb", Message: "must be 8 digits"})
	}
	if a.Issuer != "" && !issuerPattern.MatchString(a.Issuer) {
		fields = append(fields, httpx.FieldError{Field: prefix + ".issuer", Message: "must be 1-4 digits"})
	}
	if !numberPattern.MatchString(a.Number) {
		fields = append(fields, httpx.FieldError{Field: prefix + ".number", Message: "must be 1-20 digits"})
	}
	if !oneOf(a.AccountType, customers.AccountTypes) {
		fields = append(fields, httpx.FieldError{Field: prefix + ".accountType", Message: "must be one of " + strings.Join(customers.AccountTypes, ", ")})
	}
	return fields
}

// Validate reports every invalid field of a consent request.
func (in *ConsentRequest) Validate() []httpx.FieldError {
	var fields []httpx.FieldError
	if a := in.DebtorAccount; a != nil {
		fields = append(fields, accountFields(a, "debtorAccount")...)
	}
	if len(in.Accounts) > maxSharedAccounts {
		fields = append(fields, httpx.FieldError{Field: "accounts", Message: fmt.Sprintf("must list at most %d accounts", maxSharedAccounts)})
	}
	for i := range in.Accounts {
		fields = append(fields, accountFields(&in.Accounts[i], fmt.Sprintf("accounts[%d]", i))...)
	}
	if in.Device != nil {
		fields = append(fields, deviceFields(in.Device, "device")...)
	}
	return fields
}

// Validate reports every invalid field of a cancel request.
func (in *CancelRequest) Validate() []httpx.FieldError {
	if in.Device == nil {
		return nil
	}
	return deviceFields(in.Device, "device")
}

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
	CompanyKey    string
	// DeepLinkURL opens the partner's app; "" means the partner has no app
	// and the WebView opens directly in the user's browser.
	DeepLinkURL string
	// Keys verify the accessToken the partner signs for its logged-in user.
	Keys jose.JSONWebKeySet
}

// Partners finds holder partner applications.
type Partners interface {
	Partner(ctx context.Context, applicationID string) (*Partner, error)
}

// ErrPartnerNotFound is returned by Partners for an unknown or disabled application.
var ErrPartnerNotFound = errors.New("holder partner not found")

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
		Step: step, Type: typ, URI: withoutQuery(uri), Device: dev, At: at})
	if err != nil {
		return fmt.Errorf("holder: record the PCM %s step: %w", step, err)
	}
	return nil
}

// withoutQuery strips a URL's query and fragment (the PCM's URI pattern
// admits neither).
func withoutQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			return raw[:i]
		}
		return raw
	}
	u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery = "", "", "", false
	return u.String()
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
func (s *Interactions) Consent(ctx context.Context, i *Interaction) (*ConsentView, error) {
	// Kinds read through a transaction: a read-only one on the read pool.
	tx, err := s.db.Read().BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("holder: read consent: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	_, c, err := s.consents.find(ctx, tx, i.ConsentID)
	return c, err
}

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
	if p.Name != clientName {
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

// Login authenticates the end user with the holder partner's accessToken.
func (s *Interactions) Login(ctx context.Context, actor Actor, clientName, id string, in LoginRequest) (*Outcome, error) {
	it, p, err := s.access(ctx, s.db.Read(), actor, clientName, id)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	subject, err := s.verifyLoginToken(p, in.AccessToken, now)
	if err != nil {
		return nil, err
	}
	if subject != it.Document {
		return nil, ErrWrongUser
	}
	out := &Outcome{}
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		it, err := s.open(ctx, tx, id, now)
		if err != nil {
			return err
		}
		cust, err := customers.CustomerTx(ctx, tx, it.ApplicationID, subject)
		if err != nil {
			return ErrWrongUser // the partner does not serve this user
		}
		if it.Status == InteractionAuthenticated && it.CustomerID != cust.ID {
			return ErrWrongUser
		}
		if out.Accounts, err = customers.AccountsTx(ctx, tx, it.ApplicationID, subject); err != nil {
			return err
		}
		it.Status, it.CustomerID, it.UpdatedAt = InteractionAuthenticated, cust.ID, now
		if err := updateInteraction(ctx, tx, it); err != nil {
			return err
		}
		out.Interaction = it
		if err := insertStep(ctx, tx, it.ID, StepLogin, in.Device, now); err != nil {
			return err
		}
		return s.record(ctx, tx, it, PCMAuthenticated, "", "", in.Device, now)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// verifyLoginToken checks a partner's accessToken and returns its subject
// (the user's CPF): signed by one of the partner's keys, issued by the
// partner's client_id to Ponte, unexpired and short-lived.
func (s *Interactions) verifyLoginToken(p *Partner, raw string, now time.Time) (string, error) {
	tok, err := jwt.ParseSigned(raw, LoginTokenAlgorithms)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrLoginToken, err)
	}
	if len(tok.Headers) != 1 {
		return "", ErrLoginToken
	}
	keys := p.Keys.Keys
	if kid := tok.Headers[0].KeyID; kid != "" {
		keys = p.Keys.Key(kid)
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != tok.Headers[0].Algorithm {
			continue
		}
		if err := tok.Claims(k.Key, &claims); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return "", fmt.Errorf("%w: signature not made by a key registered for the partner", ErrLoginToken)
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: p.ClientID, AnyAudience: jwt.Audience{s.issuer}, Time: now}, loginTokenLeeway); err != nil {
		return "", fmt.Errorf("%w: %v", ErrLoginToken, err)
	}
	if claims.Expiry == nil || claims.IssuedAt == nil || claims.Expiry.Time().Sub(claims.IssuedAt.Time()) > MaxLoginTokenLifetime {
		return "", fmt.Errorf("%w: iat and exp are required, at most %s apart", ErrLoginToken, MaxLoginTokenLifetime)
	}
	if err := ofb.ValidateDocument(claims.Subject); err != nil || len(claims.Subject) != 11 {
		return "", fmt.Errorf("%w: sub must be the user's CPF", ErrLoginToken)
	}
	return claims.Subject, nil
}

// Approve records the user's approval with the chosen debtor account: the
// consent becomes AUTHORISED in the same transaction.
func (s *Interactions) Approve(ctx context.Context, actor Actor, clientName, id string, in ConsentRequest) (*Outcome, error) {
	if _, _, err := s.access(ctx, s.db.Read(), actor, clientName, id); err != nil {
		return nil, err
	}
	if *in.PartialApproval {
		return nil, ErrPartialApproval
	}
	now := s.clock.Now()
	out := &Outcome{}
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		it, err := s.open(ctx, tx, id, now)
		if err != nil {
			return err
		}
		if it.Status != InteractionAuthenticated {
			return ErrLoginRequired
		}
		accounts, err := customers.AccountsTx(ctx, tx, it.ApplicationID, it.Document)
		if err != nil {
			return ErrForeignAccount
		}
		// owned finds the chosen account among the user's: it must be
		// there and ACTIVE.
		owned := func(want *DebtorAccount) (*Account, error) {
			var acct *customers.Account
			for _, a := range accounts {
				if a.ISPB == want.ISPB && a.Issuer == customers.NormalizeIssuer(want.Issuer) && a.Number == want.Number && a.AccountType == want.AccountType {
					acct = a
				}
			}
			if acct == nil {
				return nil, ErrForeignAccount
			}
			if acct.Status != customers.StatusActive {
				return nil, ErrAccountBlocked
			}
			return &Account{ISPB: acct.ISPB, Issuer: acct.Issuer, Number: acct.Number, AccountType: acct.AccountType, ID: acct.ID}, nil
		}
		debtor, err := owned(in.DebtorAccount)
		if err != nil {
			return err
		}
		kind, _, err := s.consents.find(ctx, tx, it.ConsentID)
		if errors.Is(err, ErrConsentNotFound) {
			return ErrConsentNotAwaiting
		}
		if err != nil {
			return err
		}
		if multi, ok := kind.(MultiAccountKind); ok {
			chosen := []Account{*debtor}
			if in.Accounts != nil {
				chosen = make([]Account, 0, len(in.Accounts))
				seen := map[string]bool{}
				for i := range in.Accounts {
					a, err := owned(&in.Accounts[i])
					if err != nil {
						return err
					}
					if !seen[a.ID] {
						seen[a.ID] = true
						chosen = append(chosen, *a)
					}
				}
			}
			err = multi.ApproveAccounts(ctx, tx, it.ConsentID, chosen)
		} else {
			err = kind.Approve(ctx, tx, it.ConsentID, *debtor)
		}
		if err != nil {
			return err
		}
		it.Status, it.DebtorAccount, it.UpdatedAt = InteractionApproved, debtor, now
		if err := updateInteraction(ctx, tx, it); err != nil {
			return err
		}
		out.Interaction = it
		if err := insertStep(ctx, tx, it.ID, StepConsent, in.Device, now); err != nil {
			return err
		}
		return s.record(ctx, tx, it, PCMRedirectToClient, PCMAuthorised, it.RedirectURI, in.Device, now)
	})
	if err != nil {
		return nil, err
	}
	out.RedirectURI = s.ResumeURL(out.Interaction)
	return out, nil
}

// Cancel records the user's refusal: the consent becomes REJECTED /
// REJEITADO_USUARIO (unless it already left AWAITING_AUTHORISATION, e.g.
// expired: the initiator then learns that from the consent).
func (s *Interactions) Cancel(ctx context.Context, actor Actor, clientName, id string, in CancelRequest) (*Outcome, error) {
	if _, _, err := s.access(ctx, s.db.Read(), actor, clientName, id); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	out := &Outcome{}
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
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

// Step is a recorded interaction step.
type Step struct {
	Step      string
	Device    Device
	CreatedAt time.Time
}

// Steps returns an interaction's steps in order.
func (s *Interactions) Steps(ctx context.Context, id string) ([]Step, error) {
	rows, err := s.db.Read().QueryContext(ctx, `SELECT step, platform, os, os_version, created_at FROM holder_interaction_steps
		WHERE interaction_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("holder: read steps: %w", err)
	}
	defer rows.Close()
	var out []Step
	for rows.Next() {
		var st Step
		var at int64
		if err := rows.Scan(&st.Step, &st.Device.Platform, &st.Device.OS, &st.Device.OSVersion, &at); err != nil {
			return nil, err
		}
		st.CreatedAt = time.UnixMilli(at).UTC()
		out = append(out, st)
	}
	return out, rows.Err()
}

// interactionError maps a service error to the API's error, or nil for an internal one.
func interactionError(err error) *httpx.Error {
	type mapping struct {
		status int
		code   string
	}
	table := []struct {
		err error
		m   mapping
	}{
		{ErrInteractionNotFound, mapping{http.StatusNotFound, "INTERACTION_NOT_FOUND"}},
		{ErrInteractionExpired, mapping{http.StatusGone, "INTERACTION_EXPIRED"}},
		{ErrInteractionFinished, mapping{http.StatusConflict, "INTERACTION_FINISHED"}},
		{ErrLoginRequired, mapping{http.StatusConflict, "LOGIN_REQUIRED"}},
		{ErrLoginToken, mapping{http.StatusUnauthorized, "INVALID_ACCESS_TOKEN"}},
		{ErrWrongUser, mapping{http.StatusForbidden, "WRONG_USER"}},
		{ErrForeignAccount, mapping{http.StatusUnprocessableEntity, "DEBTOR_ACCOUNT_NOT_FOUND"}},
		{ErrAccountBlocked, mapping{http.StatusUnprocessableEntity, "DEBTOR_ACCOUNT_BLOCKED"}},
		{ErrAccountNotAllowed, mapping{http.StatusUnprocessableEntity, "DEBTOR_ACCOUNT_NOT_ALLOWED"}},
		{ErrPartialApproval, mapping{http.StatusUnprocessableEntity, "PARTIAL_APPROVAL_NOT_SUPPORTED"}},
		{ErrConsentNotAwaiting, mapping{http.StatusConflict, "CONSENT_NOT_AWAITING_AUTHORISATION"}},
	}
	for _, e := range table {
		if errors.Is(err, e.err) {
			he := &httpx.Error{Status: e.m.status, Code: e.m.code, Message: e.err.Error()}
			switch e.err {
			case ErrForeignAccount, ErrAccountBlocked, ErrAccountNotAllowed:
				he.Fields = []httpx.FieldError{{Field: "debtorAccount", Message: e.err.Error()}}
			case ErrLoginToken, ErrWrongUser:
				he.Fields = []httpx.FieldError{{Field: "accessToken", Message: e.err.Error()}}
			case ErrPartialApproval:
				he.Fields = []httpx.FieldError{{Field: "partialApproval", Message: "must be false"}}
			}
			return he
		}
	}
	return nil
}

// queryer is a database or a transaction.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const interactionColumns = `id, application_id, consent_id, client_id, callback_id, request_uri, document, status, handoff,
	customer_id, debtor_account, created_at, updated_at, expires_at, redirect_uri`

func getInteraction(ctx context.Context, q queryer, column, value string) (*Interaction, error) {
	var (
		it                  Interaction
		handoff             int
		customerID, account sql.NullString
		created, updated    int64
		expires             int64
	)
	err := q.QueryRowContext(ctx, `SELECT `+interactionColumns+` FROM holder_interactions WHERE `+column+` = $1`, value).Scan(
		&it.ID, &it.ApplicationID, &it.ConsentID, &it.ClientID, &it.CallbackID, &it.RequestURI, &it.Document, &it.Status, &handoff,
		&customerID, &account, &created, &updated, &expires, &it.RedirectURI)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrInteractionNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("holder: read interaction: %w", err)
	}
	it.Handoff, it.CustomerID = handoff == 1, customerID.String
	if account.Valid {
		it.DebtorAccount = &Account{}
		if err := json.Unmarshal([]byte(account.String), it.DebtorAccount); err != nil {
			return nil, fmt.Errorf("holder: decode debtor account: %w", err)
		}
	}
	it.CreatedAt, it.UpdatedAt, it.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC(), time.UnixMilli(expires).UTC()
	return &it, nil
}

func insertInteraction(ctx context.Context, tx *sql.Tx, it *Interaction) error {
	handoff := 0
	if it.Handoff {
		handoff = 1
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO holder_interactions (`+interactionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, $10, $11, $12, $13)`,
		it.ID, it.ApplicationID, it.ConsentID, it.ClientID, it.CallbackID, it.RequestURI, it.Document, it.Status, handoff,
		it.CreatedAt.UnixMilli(), it.UpdatedAt.UnixMilli(), it.ExpiresAt.UnixMilli(), it.RedirectURI)
	if err != nil {
		return fmt.Errorf("holder: insert interaction: %w", err)
	}
	return nil
}

func updateInteraction(ctx context.Context, tx *sql.Tx, it *Interaction) error {
	var account any
	if it.DebtorAccount != nil {
		b, err := json.Marshal(it.DebtorAccount)
		if err != nil {
			return err
		}
		account = string(b)
	}
	var customer any
	if it.CustomerID != "" {
		customer = it.CustomerID
	}
	_, err := tx.ExecContext(ctx, `UPDATE holder_interactions SET status = $1, customer_id = $2, debtor_account = $3, updated_at = $4 WHERE id = $5`,
		it.Status, customer, account, it.UpdatedAt.UnixMilli(), it.ID)
	if err != nil {
		return fmt.Errorf("holder: update interaction: %w", err)
	}
	return nil
}

func insertStep(ctx context.Context, tx *sql.Tx, id, step string, d *Device, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO holder_interaction_steps (interaction_id, seq, step, platform, os, os_version, created_at)
		SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6 FROM holder_interaction_steps WHERE interaction_id = $1`,
		id, step, d.Platform, d.OS, d.OSVersion, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("holder: record %s step: %w", step, err)
	}
	return nil
}

// Package itp is Ponte's initiator side (ITP): the brands (account holders
// as the initiator sees them), the journeys partners' users go through, and
// the Open Keys journey sessions of seed 003
// (/open-keys/itp/api/v2/sweeping-accounts/v2/journeys-sessions).
//
// A journey session is created PENDING by a partner application (OAuth2
// client credentials, scope "app") and moves through
//
//	PENDING → AWAITING_AUTHORISATION → AUTHORISED → FINISHED
//
// or ends REJECTED, CANCELLED or EXPIRED. Status changes are conditional
// UPDATEs on the status read, so every change — including expiry racing
// verify-expired — is written exactly once, and each appends one entry to
// statusHistory. Expiry is a durable job (internal/jobs) enqueued in the
// create transaction at the session's time-to-live, plus Sweep, a set-based
// safety net that also catches up after a restart.
package itp

import (
	"encoding/json"
	"errors"
	"time"
)

// Scope is the access-token scope of the journey-session routes (seed 003:
// "app: Permissão para integrações diretas via API").
const Scope = "app"

// Routes of the Open Keys ITP API.
const (
	BasePath     = "/open-keys/itp/api/v2"
	JourneysPath = BasePath + "/journeys"
	SessionsPath = BasePath + "/sweeping-accounts/v2/journeys-sessions"
)

// PaymentInitiationAPI is the only payment-initiation API of these sessions.
const PaymentInitiationAPI = "SWEEPING_ACCOUNTS_V2"

// Setting keys.
const (
	// SettingPrioritiesBrands orders the brands on the journey page (array of brand ids).
	SettingPrioritiesBrands = "PRIORITIES_BRANDS"
	// SettingJourneyRules are the journey's rules (array of strings).
	SettingJourneyRules = "JOURNEY_RULES"
	// SettingSessionTTL is a session's time-to-live in seconds (integer,
	// MinSessionTTL…MaxSessionTTL); DefaultSessionTTL when no setting gives it.
	SettingSessionTTL = "JOURNEY_SESSION_TTL"
	// SettingJourneyDefaultAlias is the application setting (and the
	// environment variable) naming the journey used for journeyId "default".
	SettingJourneyDefaultAlias = "JOURNEY_DEFAULT_ALIAS"
)

// Session time-to-live bounds.
const (
	DefaultSessionTTL = 30 * time.Minute
	MinSessionTTL     = time.Minute
	MaxSessionTTL     = 24 * time.Hour
)

// MaxIDLength is the seed's maximum length of journeyId, brandId and externalId.
const MaxIDLength = 36

// Status is a journey session's status.
type Status string

// Session statuses (seed 003, "Status da Sessão").
const (
	StatusPending               Status = "PENDING"
	StatusAwaitingAuthorisation Status = "AWAITING_AUTHORISATION"
	StatusAuthorised            Status = "AUTHORISED"
	StatusRejected              Status = "REJECTED"
	StatusCancelled             Status = "CANCELLED"
	StatusExpired               Status = "EXPIRED"
	StatusFinished              Status = "FINISHED"
)

// Statuses lists every status, in the seed's order.
var Statuses = []Status{StatusPending, StatusAwaitingAuthorisation, StatusAuthorised, StatusRejected,
	StatusCancelled, StatusExpired, StatusFinished}

// transitions are the allowed status changes. EXPIRED is reached only
// through expiry (job, Sweep, VerifyExpired), never through Transition.
var transitions = map[Status][]Status{
	StatusPending:               {StatusAwaitingAuthorisation, StatusRejected, StatusCancelled},
	StatusAwaitingAuthorisation: {StatusAuthorised, StatusRejected, StatusCancelled},
	StatusAuthorised:            {StatusFinished, StatusRejected},
}

// Expirable reports whether a session in status st expires when its
// time-to-live passes: the user has not yet authorised anything. An
// AUTHORISED session holds a consent the user approved at the brand; it is
// finished (or rejected) by the callback, not expired.
func (st Status) Expirable() bool {
	return st == StatusPending || st == StatusAwaitingAuthorisation
}

// Final reports whether no transition leaves st.
func (st Status) Final() bool { return len(transitions[st]) == 0 }

// CanMoveTo reports whether Transition allows st → to.
func (st Status) CanMoveTo(to Status) bool {
	for _, s := range transitions[st] {
		if s == to {
			return true
		}
	}
	return false
}

// Errors of the service. HTTP maps them to the seed's responses.
var (
	ErrApplicationNotFound = errors.New("itp: application not found")
	ErrJourneyNotFound     = errors.New("itp: journey not found")
	ErrRedirectNotAllowed  = errors.New("itp: redirectUrl not allowed for this application")
	ErrExternalIDTaken     = errors.New("itp: externalId already used by the application")
	ErrNotFound            = errors.New("itp: journey session not found")
	ErrInvalidTransition   = errors.New("itp: invalid journey session status transition")
	ErrExpired             = errors.New("itp: journey session expired")
	ErrBrandNotFound       = errors.New("itp: brand not found")
	ErrInvalid             = errors.New("itp: invalid")
)

// FieldError is one constraint violation of a request (422 details).
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every constraint a request violates.
type ValidationError struct{ Fields []FieldError }

func (e *ValidationError) Error() string {
	s := "itp: validation failed"
	for _, f := range e.Fields {
		s += "; " + f.Field + " " + f.Message
	}
	return s
}

// Setting is one journey setting: a key and a JSON value.
type Setting struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// Brand is an account holder as Ponte (the initiator) sees it, with Ponte's
// client registration there. The signing key lives in SigningKeyFile (PEM,
// mode 0600); it is never stored in the database nor printed.
type Brand struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	LogoURL      string `json:"logoUrl,omitempty"`
	Issuer       string `json:"issuer"`
	DiscoveryURL string `json:"discoveryUrl,omitempty"`
	APIBaseURL   string `json:"apiBaseUrl"`
	ClientID     string `json:"clientId"`
	// OrganisationID is the brand's organisation id at the Open Finance
	// Directory (a UUID): its signed answers must carry it as iss. "" for a
	// brand registered before organisation ids, whose iss is not checked.
	OrganisationID string `json:"organisationId,omitempty"`
	// SigningKeyFile is the PEM file the key Ponte signs its request
	// objects and client assertions at this brand with came from, if any:
	// the key itself is kept in the database, sealed (Service.BrandSigningKey).
	// Empty when the key was generated into the database.
	SigningKeyFile string    `json:"signingKeyFile"`
	MTLSCertFile   string    `json:"mtlsCertFile,omitempty"`
	MTLSKeyFile    string    `json:"mtlsKeyFile,omitempty"`
	Enabled        bool      `json:"enabled"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
}

// Journey is a configured journey: which brands the user may pick and the
// settings its sessions inherit.
type Journey struct {
	ID    string `json:"id"`
	Alias string `json:"alias"`
	Name  string `json:"name"`
	// BrandIDs are the brands offered; empty means every enabled brand.
	BrandIDs []string `json:"brandIds"`
	// ApplicationIDs are the applications that may use the journey; empty means all.
	ApplicationIDs []string  `json:"applicationIds,omitempty"`
	Settings       []Setting `json:"settings"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
}

// availableTo reports whether application applicationID may use j.
func (j *Journey) availableTo(applicationID string) bool {
	if len(j.ApplicationIDs) == 0 {
		return true
	}
	for _, id := range j.ApplicationIDs {
		if id == applicationID {
			return true
		}
	}
	return false
}

// offers reports whether j lets the user pick brandID.
func (j *Journey) offers(brandID string) bool {
	if len(j.BrandIDs) == 0 {
		return true
	}
	for _, id := range j.BrandIDs {
		if id == brandID {
			return true
		}
	}
	return false
}

// StatusChange is one entry of a session's statusHistory.
type StatusChange struct {
	UpdatedAt time.Time `json:"updatedAt"`
	Status    Status    `json:"status"`
}

// Session is a journey session.
type Session struct {
	ID                  string
	ApplicationID       string
	ApplicationClientID string
	JourneyID           string
	TokenID             string
	Status              Status
	RedirectURL         string
	// BrandID is the brand the partner asked for, or the one the user chose.
	BrandID    string
	ExternalID string
	// ConsentID is the consent created at the brand (set by the journey page).
	ConsentID     string
	Settings      []Setting
	Tags          map[string]any
	StatusHistory []StatusChange
	ExpiresAt     time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time

	tokenHash string
}

// Setting returns the value of setting key, or nil.
func (s *Session) Setting(key string) json.RawMessage {
	for _, st := range s.Settings {
		if st.Key == key {
			return st.Value
		}
	}
	return nil
}

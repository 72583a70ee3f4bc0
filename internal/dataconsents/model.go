// Package dataconsents is the account-holder side of the Open Finance Brasil
// Consents API v3 (official specification consents 3.3.1): data-sharing
// consents ("Dados Cadastrais e Transacionais") created by a receiving
// institution, authorised or refused by the user in the holder's consent
// journey (ticket and WebView), revoked by the receiver, by the user in "Meus
// compartilhamentos", or timed out by durable timers.
//
// Routes, with a bearer access token holding the scope "consents" (a partner
// application's token or an initiator's client_credentials token); the
// extension also needs the consent's own scope consent:{consentId}, which
// only an authorization_code token carries:
//
//	POST   /open-banking/consents/v3/consents
//	GET    /open-banking/consents/v3/consents/{consentId}
//	DELETE /open-banking/consents/v3/consents/{consentId}
//	POST   /open-banking/consents/v3/consents/{consentId}/extends
//	GET    /open-banking/consents/v3/consents/{consentId}/extensions
//
// Bodies are plain JSON: the specification declares application/json for
// every request and response of this API (no signed JWT bodies, unlike
// Payments v4 and Automatic Payments v2).
//
// Status machine (the specification's statuses are AWAITING_AUTHORISATION,
// AUTHORISED and REJECTED; the reason tells the REJECTED ones apart):
//
//	AWAITING_AUTHORISATION → AUTHORISED               the user approves in the WebView
//	AWAITING_AUTHORISATION → REJECTED CUSTOMER_MANUALLY_REJECTED  the user cancels, or the receiver deletes it
//	AWAITING_AUTHORISATION → REJECTED CONSENT_EXPIRED             60 minutes without the user's decision
//	AUTHORISED             → REJECTED CUSTOMER_MANUALLY_REVOKED   the receiver deletes it, or the user revokes it
//	AUTHORISED             → REJECTED CONSENT_MAX_DATE_REACHED    expirationDateTime reached
//
// Each timer is a job of internal/jobs written in the same transaction as
// the status change, so it fires after restarts; a read past a timer shows
// its outcome at once.
package dataconsents

import (
	"errors"
	"time"
)

// Status is a consent status (ResponseConsentRead.data.status).
type Status string

// Consent statuses of the specification.
const (
	StatusAwaitingAuthorisation Status = "AWAITING_AUTHORISATION"
	StatusAuthorised            Status = "AUTHORISED"
	StatusRejected              Status = "REJECTED"
)

// RejectedBy says who rejected or revoked a consent (EnumRejectedBy).
type RejectedBy string

// Rejecting parties of the specification.
const (
	ByUser  RejectedBy = "USER"  // the customer
	ByASPSP RejectedBy = "ASPSP" // the holder (transmissora): Ponte
	ByTPP   RejectedBy = "TPP"   // the receiving institution (receptora)
)

// ReasonCode is rejection.reason.code.
type ReasonCode string

// Rejection reasons of the specification.
const (
	ReasonConsentExpired           ReasonCode = "CONSENT_EXPIRED"
	ReasonCustomerManuallyRejected ReasonCode = "CUSTOMER_MANUALLY_REJECTED"
	ReasonCustomerManuallyRevoked  ReasonCode = "CUSTOMER_MANUALLY_REVOKED"
	ReasonConsentMaxDateReached    ReasonCode = "CONSENT_MAX_DATE_REACHED"
	ReasonConsentTechnicalIssue    ReasonCode = "CONSENT_TECHNICAL_ISSUE"
	ReasonInternalSecurityReason   ReasonCode = "INTERNAL_SECURITY_REASON"
)

// reasonInformation is the additionalInformation Ponte sends with each reason.
var reasonInformation = map[ReasonCode]string{
	ReasonConsentExpired:           "Consentimento não autorizado pelo cliente em até 60 minutos.",
	ReasonCustomerManuallyRejected: "O cliente rejeitou o consentimento.",
	ReasonCustomerManuallyRevoked:  "O cliente revogou o consentimento.",
	ReasonConsentMaxDateReached:    "O consentimento atingiu sua data de expiração.",
	ReasonInternalSecurityReason:   "Consentimento revogado pela instituição transmissora por política de segurança.",
}

// AuthorisationWindow is how long a consent waits for the user's decision
// before it is REJECTED / CONSENT_EXPIRED, as the specification says.
const AuthorisationWindow = 60 * time.Minute

// MaxLifetime is how far ahead expirationDateTime may be: 12 months.
const MaxLifetime = 12 // months

// IDPrefix starts every data-sharing consent id; it keeps the
// authorization server's consent:urn:ponte:... scope and tells these
// consents from payment (urn:ponte:<uuid>) and recurring (urn:ponte:rc:) ones.
const IDPrefix = "urn:ponte:dc:"

// Errors of the service.
var (
	ErrNotFound          = errors.New("dataconsents: consent not found")
	ErrInvalidTransition = errors.New("dataconsents: invalid consent status transition")
	ErrExpired           = errors.New("dataconsents: consent expired")
	// ErrAlreadyRejected refuses a revocation of a REJECTED consent (422
	// CONSENTIMENTO_EM_STATUS_REJEITADO on DELETE).
	ErrAlreadyRejected = errors.New("dataconsents: consent already rejected")
	// ErrRejectedBy refuses an unknown rejecting party.
	ErrRejectedBy = errors.New("dataconsents: rejectedBy must be USER, ASPSP or TPP")
	// ErrAccounts refuses an authorisation whose accounts the consent cannot take.
	ErrAccounts = errors.New("dataconsents: accounts missing or not allowed")
)

// Document is an identification document (loggedUser, businessEntity).
type Document struct {
	Identification string `json:"identification"`
	Rel            string `json:"rel"`
}

// Party is loggedUser or businessEntity.
type Party struct {
	Document *Document `json:"document"`
}

// CreateRequest is the data of POST /consents (CreateConsent.data).
type CreateRequest struct {
	LoggedUser         *Party   `json:"loggedUser"`
	BusinessEntity     *Party   `json:"businessEntity,omitempty"`
	Permissions        []string `json:"permissions"`
	ExpirationDateTime string   `json:"expirationDateTime,omitempty"`
	IsLinked           *bool    `json:"isLinked,omitempty"`
}

// ExtendRequest is the data of POST /consents/{consentId}/extends
// (CreateConsentExtensions.data).
type ExtendRequest struct {
	ExpirationDateTime string `json:"expirationDateTime,omitempty"`
	LoggedUser         *Party `json:"loggedUser"`
	BusinessEntity     *Party `json:"businessEntity,omitempty"`
}

// Reason is rejection.reason.
type Reason struct {
	Code                  ReasonCode `json:"code"`
	AdditionalInformation string     `json:"additionalInformation,omitempty"`
}

// Rejection says who rejected or revoked a consent and why.
type Rejection struct {
	RejectedBy RejectedBy `json:"rejectedBy"`
	Reason     Reason     `json:"reason"`
}

// Consent is a stored data-sharing consent.
type Consent struct {
	ID string
	// ApplicationID is the receiving institution's application (the creator).
	ApplicationID string
	Status        Status
	// Document is the CPF of loggedUser; BusinessDocument the CNPJ of
	// businessEntity ("" for a natural person's consent).
	Document, BusinessDocument string
	// Permissions are the granted permissions: the request's, less the
	// groups of products Ponte does not offer.
	Permissions []string
	IsLinked    bool
	// ExpiresAt is expirationDateTime; zero: no end date.
	ExpiresAt time.Time
	// DueAt is when the current status times out; zero: never.
	DueAt     time.Time
	Rejection *Rejection
	// HolderApplicationID is the holder partner whose customer authorised
	// the consent, and AccountIDs the customers.Account ids chosen then.
	HolderApplicationID string
	AccountIDs          []string
	CreatedAt           time.Time
	AuthorisedAt        time.Time
	StatusUpdatedAt     time.Time
}

// Active reports whether the consent is authorised and usable at now.
func (c *Consent) Active(now time.Time) bool {
	return c.Status == StatusAuthorised && (c.ExpiresAt.IsZero() || now.Before(c.ExpiresAt))
}

// Extension is one renewal of a consent (ResponseConsentReadExtensions.data[]).
type Extension struct {
	ConsentID string
	// ExpiresAt is the new expiration (zero: no end); PreviousExpiresAt the
	// one before (zero: none).
	ExpiresAt, PreviousExpiresAt time.Time
	LoggedUser                   Party
	BusinessEntity               *Party
	CustomerIP, UserAgent        string
	RequestedAt                  time.Time
}

// Grant is what the data APIs need of a consent on every request.
type Grant struct {
	ConsentID, ApplicationID, Document, Status string
	Permissions                                []string
	// AccountIDs are the customers.Account ids the user chose to share.
	AccountIDs []string
	// ExpiresAt is expirationDateTime; zero: no end date.
	ExpiresAt time.Time
}

// TimeLayout is the specification's date-time: UTC, seconds, "Z".
const TimeLayout = "2006-01-02T15:04:05Z"

func formatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

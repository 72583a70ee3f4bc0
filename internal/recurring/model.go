// Package recurring is the account-holder side of the Open Finance Brasil
// Automatic Payments API v2 (official specification automatic-payments
// 2.0.0) for sweeping accounts ("Transferências Inteligentes"): recurring
// consents created by a payment initiator (ITP), read back and revoked or
// rejected by it, authorised or refused by the user in the holder's consent
// journey, and moved through their status machine with durable timers.
//
// Routes, all with a bearer access token holding the scope
// "recurring-payments":
//
//	POST  /open-banking/automatic-payments/v2/recurring-consents
//	GET   /open-banking/automatic-payments/v2/recurring-consents/{recurringConsentId}
//	PATCH /open-banking/automatic-payments/v2/recurring-consents/{recurringConsentId}
//
// and the sweeping payments made under an authorised consent (payments_*.go:
// POST /pix/recurring-payments with the consent's authorization_code token,
// GET list and by id, PATCH cancel), whose limits are decided in the
// payment's transaction and whose money moves through internal/settlement.
//
// Only recurringConfiguration.sweeping is offered: a consent asking for
// "automatic" (Pix Automático) or "vrp" is refused with 422
// FUNCIONALIDADE_NAO_HABILITADA, as the specification provides.
//
// Bodies: as for Payments v4 (internal/payments), POST and PATCH take a
// signed JWT (application/jwt, PS256) verified against the calling
// application's registered JWKS, whose aud is the URL called (the collection
// for POST, the consent's URL for PATCH); answers to signed requests are
// signed with Ponte's key. Applications flagged AcceptPlainJSON may send and
// receive plain JSON instead. Idempotency keys (x-idempotency-key, 24 h)
// compare the data only.
//
// Status machine: a consent is created AWAITING_AUTHORISATION and is
// REJECTED (TEMPO_EXPIRADO_AUTORIZACAO) when AuthorisationWindow passes (or
// its expirationDateTime, if sooner) without the user's decision; the user
// authorises it (AUTHORISED, with the debtor account chosen) or refuses it
// (REJECTED, REJEITADO_USUARIO); the initiator may reject it while it is not
// authorised (PATCH, status REJECTED) and revoke it once authorised (PATCH,
// status REVOKED); an authorised consent with an expirationDateTime is
// CONSUMED when that time comes. Each timer is a job of internal/jobs written
// in the same transaction as the status change, so timers survive restarts.
package recurring

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/ponte-ofb/ponte/internal/payments"
)

// Status is a recurring consent status (EnumAuthorisationStatusType).
type Status string

// Recurring consent statuses.
const (
	StatusAwaitingAuthorisation Status = "AWAITING_AUTHORISATION"
	StatusPartiallyAccepted     Status = "PARTIALLY_ACCEPTED"
	StatusAuthorised            Status = "AUTHORISED"
	StatusRejected              Status = "REJECTED"
	StatusRevoked               Status = "REVOKED"
	StatusConsumed              Status = "CONSUMED"
)

// RejectionCode is a consent rejection reason (ConsentRejectionReason.code).
type RejectionCode string

// Rejection codes of the specification.
const (
	RejectNaoInformado              RejectionCode = "NAO_INFORMADO"
	RejectFalhaInfraestrutura       RejectionCode = "FALHA_INFRAESTRUTURA"
	RejectTempoExpiradoAutorizacao  RejectionCode = "TEMPO_EXPIRADO_AUTORIZACAO"
	RejectRejeitadoUsuario          RejectionCode = "REJEITADO_USUARIO"
	RejectContasOrigemDestinoIguais RejectionCode = "CONTAS_ORIGEM_DESTINO_IGUAIS"
	RejectContaNaoPermitePagamento  RejectionCode = "CONTA_NAO_PERMITE_PAGAMENTO"
	RejectSaldoInsuficiente         RejectionCode = "SALDO_INSUFICIENTE"
	RejectValorAcimaLimite          RejectionCode = "VALOR_ACIMA_LIMITE"
	RejectAutenticacaoDivergente    RejectionCode = "AUTENTICACAO_DIVERGENTE"
)

// rejectionDetails are the specification's standard details per code.
var rejectionDetails = map[RejectionCode]string{
	RejectNaoInformado:              "Não informada pela detentora de conta.",
	RejectFalhaInfraestrutura:       "Falha de infraestrutura na detentora de conta.",
	RejectTempoExpiradoAutorizacao:  "Consentimento expirou antes que o usuário pudesse confirmá-lo.",
	RejectRejeitadoUsuario:          "O usuário rejeitou a autorização do consentimento.",
	RejectContasOrigemDestinoIguais: "A conta selecionada é igual à conta destino e não permite realizar esse pagamento.",
	RejectContaNaoPermitePagamento:  "A conta selecionada não permite realizar esse pagamento.",
	RejectSaldoInsuficiente:         "A conta selecionada não possui saldo suficiente para realizar o pagamento.",
	RejectValorAcimaLimite:          "O valor ultrapassa o limite estabelecido para permitir a realização de transações pelo cliente.",
	RejectAutenticacaoDivergente:    "Usuário autenticado no detentor diverge do usuário autenticado no iniciador.",
}

// RevocationCode is a consent revocation reason (ConsentRevokedReason.code).
type RevocationCode string

// Revocation codes of the specification.
const (
	RevokeNaoInformado      RevocationCode = "NAO_INFORMADO"
	RevokeRevogadoUsuario   RevocationCode = "REVOGADO_USUARIO"
	RevokeRevogadoRecebedor RevocationCode = "REVOGADO_RECEBEDOR"
)

// Actor is who asked for a rejection or revocation (rejectedBy, revokedBy).
type Actor string

// Actors and channels of the specification: rejectedFrom and revokedFrom
// take only Initiator and Holder.
const (
	ActorInitiator Actor = "INICIADORA"
	ActorUser      Actor = "USUARIO"
	ActorHolder    Actor = "DETENTORA"
)

// AuthorisationWindow is how long a consent waits for the user's decision.
// The specification defers to the Open Finance state-machine page; like the
// Consents API v3 rule and luikyv/mock-bank's automatic payments, Ponte
// rejects a consent still AWAITING_AUTHORISATION 60 minutes after creation.
const AuthorisationWindow = 60 * time.Minute

// IDPrefix starts every recurring consent id, telling it from a payment
// consent (urn:ponte:<uuid>) while staying a consent:urn:ponte:... scope.
const IDPrefix = "urn:ponte:rc:"

// Errors of the service.
var (
	ErrNotFound          = errors.New("recurring: consent not found")
	ErrInvalidTransition = errors.New("recurring: invalid consent status transition")
	ErrExpired           = errors.New("recurring: consent expired")
	ErrDebtorAccount     = errors.New("recurring: debtor account missing or invalid")
	ErrRejectionCode     = errors.New("recurring: unknown rejection code")
	// ErrJTIReused means the application already sent a signed request with
	// this jti within payments.JTIWindow.
	ErrJTIReused = errors.New("recurring: jti already used")
)

// Limit is a periodic limit (Day, Week, Month, Year): at least one field.
type Limit struct {
	QuantityLimit    *int   `json:"quantityLimit,omitempty"`
	TransactionLimit string `json:"transactionLimit,omitempty"`
}

// PeriodicLimits are the user's limits per calendar period (Brasília time).
type PeriodicLimits struct {
	Day   *Limit `json:"day,omitempty"`
	Week  *Limit `json:"week,omitempty"`
	Month *Limit `json:"month,omitempty"`
	Year  *Limit `json:"year,omitempty"`
}

// Sweeping is recurringConfiguration.sweeping of a request (SweepingRequest):
// every field optional.
type Sweeping struct {
	TotalAllowedAmount string          `json:"totalAllowedAmount,omitempty"`
	TransactionLimit   string          `json:"transactionLimit,omitempty"`
	PeriodicLimits     *PeriodicLimits `json:"periodicLimits,omitempty"`
	StartDateTime      string          `json:"startDateTime,omitempty"`
}

// RecurringConfiguration is the oneOf of the products; Ponte serves sweeping.
type RecurringConfiguration struct {
	Sweeping  *Sweeping       `json:"sweeping,omitempty"`
	Automatic json.RawMessage `json:"automatic,omitempty"`
	Vrp       json.RawMessage `json:"vrp,omitempty"`
}

// ConsentRequest is the data of POST /recurring-consents, kept as received
// (after validation) and echoed in every response.
type ConsentRequest struct {
	LoggedUser             *payments.LoggedUser     `json:"loggedUser"`
	BusinessEntity         *payments.BusinessEntity `json:"businessEntity,omitempty"`
	Creditors              []*payments.Creditor     `json:"creditors"`
	ExpirationDateTime     string                   `json:"expirationDateTime,omitempty"`
	AdditionalInformation  *string                  `json:"additionalInformation,omitempty"`
	DebtorAccount          *payments.Account        `json:"debtorAccount,omitempty"`
	RecurringConfiguration *RecurringConfiguration  `json:"recurringConfiguration"`
}

// CreateConsentBody is the body of POST /recurring-consents (the JWT claims' shape).
type CreateConsentBody struct {
	Data *ConsentRequest `json:"data"`
}

// Reason is the code and detail of a rejection or revocation.
type Reason struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// Rejection says who rejected a consent, from where, when and why.
type Rejection struct {
	RejectedBy   Actor   `json:"rejectedBy"`
	RejectedFrom Actor   `json:"rejectedFrom"`
	RejectedAt   string  `json:"rejectedAt"`
	Reason       *Reason `json:"reason,omitempty"`
}

// Revocation says who revoked a consent, from where, when and why.
type Revocation struct {
	RevokedBy   Actor   `json:"revokedBy"`
	RevokedFrom Actor   `json:"revokedFrom"`
	RevokedAt   string  `json:"revokedAt"`
	Reason      *Reason `json:"reason,omitempty"`
}

// Consent is a stored recurring consent.
type Consent struct {
	ID            string
	ApplicationID string
	Status        Status
	Request       ConsentRequest
	// DebtorAccount is the account the user authorised (nil before).
	DebtorAccount *payments.Account
	Rejection     *Rejection
	Revocation    *Revocation
	// StartAt is sweeping.startDateTime, or the creation time when absent.
	StartAt time.Time
	// ExpiresAt is expirationDateTime; zero when the consent has no end.
	ExpiresAt time.Time
	// DueAt is when the current status times out; zero when it never does.
	DueAt           time.Time
	CreatedAt       time.Time
	AuthorisedAt    time.Time
	StatusUpdatedAt time.Time
}

// TimeLayout is the specification's date-time: UTC, seconds, "Z".
const TimeLayout = payments.TimeLayout

func formatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// SweepingResponse is recurringConfiguration.sweeping of a response
// (Sweeping): startDateTime and useOverdraftLimit always present.
type SweepingResponse struct {
	TotalAllowedAmount string          `json:"totalAllowedAmount,omitempty"`
	TransactionLimit   string          `json:"transactionLimit,omitempty"`
	PeriodicLimits     *PeriodicLimits `json:"periodicLimits,omitempty"`
	UseOverdraftLimit  bool            `json:"useOverdraftLimit"`
	StartDateTime      string          `json:"startDateTime"`
}

// ConfigurationResponse is the response's recurringConfiguration.
type ConfigurationResponse struct {
	Sweeping *SweepingResponse `json:"sweeping"`
}

// ConsentData is the response's data object.
type ConsentData struct {
	RecurringConsentID     string                   `json:"recurringConsentId"`
	StatusUpdateDateTime   string                   `json:"statusUpdateDateTime"`
	LoggedUser             *payments.LoggedUser     `json:"loggedUser"`
	BusinessEntity         *payments.BusinessEntity `json:"businessEntity,omitempty"`
	Status                 Status                   `json:"status"`
	Creditors              []*payments.Creditor     `json:"creditors"`
	CreationDateTime       string                   `json:"creationDateTime"`
	ExpirationDateTime     string                   `json:"expirationDateTime,omitempty"`
	AdditionalInformation  *string                  `json:"additionalInformation,omitempty"`
	DebtorAccount          *payments.Account        `json:"debtorAccount,omitempty"`
	Rejection              *Rejection               `json:"rejection,omitempty"`
	Revocation             *Revocation              `json:"revocation,omitempty"`
	RecurringConfiguration ConfigurationResponse    `json:"recurringConfiguration"`
	AuthorisedAtDateTime   string                   `json:"authorisedAtDateTime,omitempty"`
}

// Links and Meta are the Open Finance response envelope, as in Payments v4.
type (
	Links = payments.Links
	Meta  = payments.Meta
)

// ConsentResponse is the body of the 201 and 200 responses.
type ConsentResponse struct {
	Data  ConsentData `json:"data"`
	Links Links       `json:"links"`
	Meta  Meta        `json:"meta"`
}

// Response renders c as the API returns it; self is the consent's URL.
func (c *Consent) Response(self string, now time.Time) ConsentResponse {
	debtor := c.DebtorAccount
	if debtor == nil {
		debtor = c.Request.DebtorAccount
	}
	sw := &SweepingResponse{UseOverdraftLimit: true, StartDateTime: formatTime(c.StartAt)}
	if rc := c.Request.RecurringConfiguration; rc != nil && rc.Sweeping != nil {
		sw.TotalAllowedAmount, sw.TransactionLimit, sw.PeriodicLimits = rc.Sweeping.TotalAllowedAmount, rc.Sweeping.TransactionLimit, rc.Sweeping.PeriodicLimits
	}
	d := ConsentData{
		RecurringConsentID:     c.ID,
		StatusUpdateDateTime:   formatTime(c.StatusUpdatedAt),
		LoggedUser:             c.Request.LoggedUser,
		BusinessEntity:         c.Request.BusinessEntity,
		Status:                 c.Status,
		Creditors:              c.Request.Creditors,
		CreationDateTime:       formatTime(c.CreatedAt),
		AdditionalInformation:  c.Request.AdditionalInformation,
		DebtorAccount:          debtor,
		Rejection:              c.Rejection,
		Revocation:             c.Revocation,
		RecurringConfiguration: ConfigurationResponse{Sweeping: sw},
	}
	if !c.ExpiresAt.IsZero() {
		d.ExpirationDateTime = formatTime(c.ExpiresAt)
	}
	if !c.AuthorisedAt.IsZero() {
		d.AuthorisedAtDateTime = formatTime(c.AuthorisedAt)
	}
	return ConsentResponse{Data: d, Links: Links{Self: self}, Meta: Meta{RequestDateTime: formatTime(now)}}
}

// PatchRequest is the data of PATCH /recurring-consents/{id}: a rejection
// (status REJECTED), a revocation (status REVOKED) or an edition (creditors,
// riskSignals, expirationDateTime, recurringConfiguration: Pix Automático
// only, refused here).
type PatchRequest struct {
	Status                 string           `json:"status,omitempty"`
	Rejection              *PatchRejection  `json:"rejection,omitempty"`
	Revocation             *PatchRevocation `json:"revocation,omitempty"`
	Creditors              json.RawMessage  `json:"creditors,omitempty"`
	RiskSignals            json.RawMessage  `json:"riskSignals,omitempty"`
	ExpirationDateTime     json.RawMessage  `json:"expirationDateTime,omitempty"`
	RecurringConfiguration json.RawMessage  `json:"recurringConfiguration,omitempty"`
}

// PatchRejection is the rejection object of a PATCH request (ConsentRejection).
type PatchRejection struct {
	RejectedBy   Actor   `json:"rejectedBy"`
	RejectedFrom Actor   `json:"rejectedFrom"`
	Reason       *Reason `json:"reason"`
}

// PatchRevocation is the revocation object of a PATCH request (ConsentRevocation).
type PatchRevocation struct {
	RevokedBy   Actor   `json:"revokedBy"`
	RevokedFrom Actor   `json:"revokedFrom"`
	Reason      *Reason `json:"reason"`
}

// PatchBody is the body of PATCH /recurring-consents/{id}.
type PatchBody struct {
	Data *PatchRequest `json:"data"`
}

// Package payments is the account-holder side of the Open Finance Brasil
// Payments API v4 (official specification payments 4.0.0):
// payment consents created by a payment initiator (ITP), read back by it, and
// moved through their status machine with durable expiry timers.
//
// Routes: POST /open-banking/payments/v4/consents and
// GET /open-banking/payments/v4/consents/{consentId}, both with a bearer access
// token holding the scope "payments". For now the initiator is a Ponte partner
// application authenticated with the client_credentials grant of internal/auth;
// the full FAPI-BR authorization server (PAR, private_key_jwt, mTLS-bound
// tokens) comes later and will take over authentication of these routes.
//
// Bodies: as the specification requires, POST /consents takes a signed JWT
// (application/jwt, PS256) verified against the calling application's
// registered JWKS, with claims aud (ConsentsURL), iss (the client_id), iat
// (±IATTolerance), jti (unique per application for JTIWindow, recorded in the
// consent's transaction) and data; the answer is signed with Ponte's key (see
// jws.go for every rule). Applications flagged AcceptPlainJSON (the sandbox
// demo application) may send the same {"data": ...} as plain JSON instead
// and get JSON back. Idempotency keys compare the data only, so a resend with
// a new jti and iat replays the first consent, as the specification asks.
//
// Status machine: a consent is created AWAITING_AUTHORISATION and expires
// (REJECTED / TEMPO_EXPIRADO_AUTORIZACAO) 5 minutes later unless authorised;
// Service.Authorise moves it to AUTHORISED for 60 minutes (then REJECTED /
// TEMPO_EXPIRADO_CONSUMO unless consumed); Service.Reject rejects it (a user
// cancel is REJEITADO_USUARIO). Each expiry is a job of internal/jobs written
// in the same transaction as the status change, so timers survive restarts.
package payments

import (
	"errors"
	"time"
)

// Status is a consent status (EnumAuthorisationStatusType).
type Status string

// Consent statuses.
const (
	StatusAwaitingAuthorisation Status = "AWAITING_AUTHORISATION"
	StatusPartiallyAccepted     Status = "PARTIALLY_ACCEPTED"
	StatusAuthorised            Status = "AUTHORISED"
	StatusRejected              Status = "REJECTED"
	StatusConsumed              Status = "CONSUMED"
)

// RejectionCode is a consent rejection reason (EnumConsentRejectionReasonType).
type RejectionCode string

// Rejection codes of the specification.
const (
	RejectValorInvalido             RejectionCode = "VALOR_INVALIDO"
	RejectNaoInformado              RejectionCode = "NAO_INFORMADO"
	RejectFalhaInfraestrutura       RejectionCode = "FALHA_INFRAESTRUTURA"
	RejectTempoExpiradoAutorizacao  RejectionCode = "TEMPO_EXPIRADO_AUTORIZACAO"
	RejectTempoExpiradoConsumo      RejectionCode = "TEMPO_EXPIRADO_CONSUMO"
	RejectRejeitadoUsuario          RejectionCode = "REJEITADO_USUARIO"
	RejectContasOrigemDestinoIguais RejectionCode = "CONTAS_ORIGEM_DESTINO_IGUAIS"
	RejectContaNaoPermitePagamento  RejectionCode = "CONTA_NAO_PERMITE_PAGAMENTO"
	RejectSaldoInsuficiente         RejectionCode = "SALDO_INSUFICIENTE"
	RejectValorAcimaLimite          RejectionCode = "VALOR_ACIMA_LIMITE"
	RejectQRCodeInvalido            RejectionCode = "QRCODE_INVALIDO"
)

// rejectionDetails are the specification's standard details per code.
var rejectionDetails = map[RejectionCode]string{
	RejectValorInvalido:             "O valor enviado não é válido para o QR Code informado.",
	RejectNaoInformado:              "Não informada pela detentora de conta.",
	RejectFalhaInfraestrutura:       "Falha de infraestrutura na detentora de conta.",
	RejectTempoExpiradoAutorizacao:  "Consentimento expirou antes que o usuário pudesse confirmá-lo.",
	RejectTempoExpiradoConsumo:      "O usuário não finalizou o fluxo de pagamento e o consentimento expirou.",
	RejectRejeitadoUsuario:          "O usuário rejeitou a autorização do consentimento.",
	RejectContasOrigemDestinoIguais: "A conta selecionada é igual à conta destino e não permite realizar esse pagamento.",
	RejectContaNaoPermitePagamento:  "A conta selecionada não permite realizar esse pagamento.",
	RejectSaldoInsuficiente:         "A conta selecionada não possui saldo suficiente para realizar o pagamento.",
	RejectValorAcimaLimite:          "O valor ultrapassa o limite estabelecido na instituição para permitir a realização de transações pelo cliente.",
	RejectQRCodeInvalido:            "O QRCode utilizado para a iniciação de pagamento não é válido.",
}

// Timers of the specification.
const (
	// AuthorisationWindow is how long a consent waits for the user's approval.
	AuthorisationWindow = 5 * time.Minute
	// ConsumptionWindow is how long an authorised consent waits for its payment.
	ConsumptionWindow = 60 * time.Minute
)

// Errors of the service.
var (
	ErrNotFound          = errors.New("payments: consent not found")
	ErrInvalidTransition = errors.New("payments: invalid consent status transition")
	ErrExpired           = errors.New("payments: consent expired")
	ErrDebtorAccount     = errors.New("payments: debtor account missing or different from the consent's")
	ErrRejectionCode     = errors.New("payments: unknown rejection code")
)

// Document is an official identification document.
type Document struct {
	Identification string `json:"identification"`
	Rel            string `json:"rel"`
}

// LoggedUser is the person logged in at the initiator.
type LoggedUser struct {
	Document *Document `json:"document"`
}

// BusinessEntity is the company logged in at the initiator.
type BusinessEntity struct {
	Document *Document `json:"document"`
}

// Creditor is the payee.
type Creditor struct {
	PersonType string `json:"personType"`
	CPFCNPJ    string `json:"cpfCnpj"`
	Name       string `json:"name"`
}

// Account is a creditor or debtor account.
type Account struct {
	ISPB        string `json:"ispb"`
	Issuer      string `json:"issuer,omitempty"`
	Number      string `json:"number"`
	AccountType string `json:"accountType"`
}

// Details says how the payment is initiated.
type Details struct {
	LocalInstrument string   `json:"localInstrument"`
	QRCode          *string  `json:"qrCode,omitempty"`
	Proxy           *string  `json:"proxy,omitempty"`
	CreditorAccount *Account `json:"creditorAccount"`
}

// Schedule is one of the schedule kinds; exactly one is set.
type Schedule struct {
	Single  *ScheduleSingle  `json:"single,omitempty"`
	Daily   *ScheduleDaily   `json:"daily,omitempty"`
	Weekly  *ScheduleWeekly  `json:"weekly,omitempty"`
	Monthly *ScheduleMonthly `json:"monthly,omitempty"`
	Custom  *ScheduleCustom  `json:"custom,omitempty"`
}

// ScheduleSingle is one payment on a future date.
type ScheduleSingle struct {
	Date string `json:"date"`
}

// ScheduleDaily is quantity payments on consecutive days.
type ScheduleDaily struct {
	StartDate string `json:"startDate"`
	Quantity  *int   `json:"quantity"`
}

// ScheduleWeekly is quantity payments on a day of the week.
type ScheduleWeekly struct {
	DayOfWeek string `json:"dayOfWeek"`
	StartDate string `json:"startDate"`
	Quantity  *int   `json:"quantity"`
}

// ScheduleMonthly is quantity payments on a day of the month.
type ScheduleMonthly struct {
	DayOfMonth *int   `json:"dayOfMonth"`
	StartDate  string `json:"startDate"`
	Quantity   *int   `json:"quantity"`
}

// ScheduleCustom is payments on listed dates.
type ScheduleCustom struct {
	Dates                 []string `json:"dates"`
	AdditionalInformation *string  `json:"additionalInformation"`
}

// Payment is what the consent allows to pay.
type Payment struct {
	Type         string    `json:"type"`
	Schedule     *Schedule `json:"schedule,omitempty"`
	Date         string    `json:"date,omitempty"`
	Currency     string    `json:"currency"`
	Amount       string    `json:"amount"`
	IBGETownCode string    `json:"ibgeTownCode,omitempty"`
	Details      *Details  `json:"details"`
}

// ConsentRequest is the data of POST /consents, kept as received (after
// validation) and echoed in every response.
type ConsentRequest struct {
	LoggedUser     *LoggedUser     `json:"loggedUser"`
	BusinessEntity *BusinessEntity `json:"businessEntity,omitempty"`
	Creditor       *Creditor       `json:"creditor"`
	Payment        *Payment        `json:"payment"`
	DebtorAccount  *Account        `json:"debtorAccount,omitempty"`
}

// CreateConsentBody is the body of POST /consents (the JWT claims' shape).
type CreateConsentBody struct {
	Data *ConsentRequest `json:"data"`
}

// RejectionReason says why a consent was rejected.
type RejectionReason struct {
	Code   RejectionCode `json:"code"`
	Detail string        `json:"detail"`
}

// Consent is a stored payment consent.
type Consent struct {
	ID              string
	ApplicationID   string
	Status          Status
	Request         ConsentRequest
	DebtorAccount   *Account
	Rejection       *RejectionReason
	CreatedAt       time.Time
	ExpiresAt       time.Time
	StatusUpdatedAt time.Time
}

// TimeLayout is the specification's date-time: UTC, seconds, "Z".
const TimeLayout = "2006-01-02T15:04:05Z"

func formatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ConsentData is the response's data object.
type ConsentData struct {
	ConsentID            string           `json:"consentId"`
	CreationDateTime     string           `json:"creationDateTime"`
	ExpirationDateTime   string           `json:"expirationDateTime"`
	StatusUpdateDateTime string           `json:"statusUpdateDateTime"`
	Status               Status           `json:"status"`
	LoggedUser           *LoggedUser      `json:"loggedUser"`
	BusinessEntity       *BusinessEntity  `json:"businessEntity,omitempty"`
	Creditor             *Creditor        `json:"creditor"`
	Payment              *Payment         `json:"payment"`
	DebtorAccount        *Account         `json:"debtorAccount,omitempty"`
	RejectionReason      *RejectionReason `json:"rejectionReason,omitempty"`
}

// Links holds the response's self link.
type Links struct {
	Self string `json:"self"`
}

// Meta holds the response's request time.
type Meta struct {
	RequestDateTime string `json:"requestDateTime"`
}

// ConsentResponse is the body of 201 and 200 responses.
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
	return ConsentResponse{
		Data: ConsentData{
			ConsentID:            c.ID,
			CreationDateTime:     formatTime(c.CreatedAt),
			ExpirationDateTime:   formatTime(c.ExpiresAt),
			StatusUpdateDateTime: formatTime(c.StatusUpdatedAt),
			Status:               c.Status,
			LoggedUser:           c.Request.LoggedUser,
			BusinessEntity:       c.Request.BusinessEntity,
			Creditor:             c.Request.Creditor,
			Payment:              c.Request.Payment,
			DebtorAccount:        debtor,
			RejectionReason:      c.Rejection,
		},
		Links: Links{Self: self},
		Meta:  Meta{RequestDateTime: formatTime(now)},
	}
}

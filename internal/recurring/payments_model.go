package recurring

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/ponte-ofb/ponte/internal/payments"
)

// Sweeping payments (Automatic Payments v2, /pix/recurring-payments): an
// initiator holding the authorization_code token of an AUTHORISED sweeping
// consent moves money from the user's debtor account to one of the
// consent's creditors, within the consent's limits.
//
//	POST  /open-banking/automatic-payments/v2/pix/recurring-payments                       (token: recurring-payments + recurring-consent:{id})
//	GET   /open-banking/automatic-payments/v2/pix/recurring-payments?recurringConsentId=…  (token: recurring-payments)
//	GET   /open-banking/automatic-payments/v2/pix/recurring-payments/{recurringPaymentId}  (token: recurring-payments)
//	PATCH /open-banking/automatic-payments/v2/pix/recurring-payments/{recurringPaymentId}  (token: recurring-payments)
//
// Status machine: POST stores the payment RCVD, its share of the consent's
// limits taken in the same transaction; a job reserves the amount through
// the Settlement (ACCP, or RJCT with SALDO_INSUFICIENTE and the like), then
// settles it (ACSC when the money moved at once; ACPD until the settlement
// reports through SettlementSettled or SettlementFailed). Sweeping is
// immediate: no SCHD, and PDNG does not apply to it, so PATCH (cancel, from
// SCHD or PDNG only) answers PAGAMENTO_NAO_PERMITE_CANCELAMENTO.

// PaymentsPath is the route of the recurring-payments collection.
const PaymentsPath = "/open-banking/automatic-payments/v2/pix/recurring-payments"

// PaymentStatus is a payment status (EnumPaymentStatusType).
type PaymentStatus string

// Payment statuses.
const (
	PaymentReceived          PaymentStatus = "RCVD"
	PaymentAccepted          PaymentStatus = "ACCP"
	PaymentSettlementPending PaymentStatus = "ACPD"
	PaymentSettled           PaymentStatus = "ACSC"
	PaymentRejected          PaymentStatus = "RJCT"
	PaymentCancelled         PaymentStatus = "CANC"
	PaymentPending           PaymentStatus = "PDNG"
	PaymentScheduled         PaymentStatus = "SCHD"
)

// Final reports whether no transition leaves st.
func (st PaymentStatus) Final() bool {
	return st == PaymentSettled || st == PaymentRejected || st == PaymentCancelled
}

// Error codes of POST /pix/recurring-payments
// (422ResponseErrorCreatePixRecurringPayment) and PATCH
// (422ResponseErrorCreateRecurringPaymentsPaymentId); the same names are the
// payment's rejectionReason codes (EnumRejectionReasonCode) where they exist.
const (
	CodeSaldoInsuficiente                = "SALDO_INSUFICIENTE"
	CodeValorAcimaLimite                 = "VALOR_ACIMA_LIMITE"
	CodeValorInvalido                    = "VALOR_INVALIDO"
	CodeLimitePeriodoValorExcedido       = "LIMITE_PERIODO_VALOR_EXCEDIDO"
	CodeLimitePeriodoQuantidadeExcedido  = "LIMITE_PERIODO_QUANTIDADE_EXCEDIDO"
	CodeConsentimentoInvalido            = "CONSENTIMENTO_INVALIDO"
	CodeConsentimentoPendenteAutorizacao = "CONSENTIMENTO_PENDENTE_AUTORIZACAO"
	CodePagamentoDivergenteConsentimento = "PAGAMENTO_DIVERGENTE_CONSENTIMENTO"
	CodePagamentoRecusadoDetentora       = "PAGAMENTO_RECUSADO_DETENTORA"
	CodePagamentoRecusadoSPI             = "PAGAMENTO_RECUSADO_SPI"
	CodeLimiteValorTotalExcedido         = "LIMITE_VALOR_TOTAL_CONSENTIMENTO_EXCEDIDO"
	CodeLimiteValorTransacaoExcedido     = "LIMITE_VALOR_TRANSACAO_CONSENTIMENTO_EXCEDIDO"
	CodeLimiteTentativasExcedido         = "LIMITE_TENTATIVAS_EXCEDIDO"
	CodeForaPrazoPermitido               = "FORA_PRAZO_PERMITIDO"
	CodeDetalheTentativaInvalido         = "DETALHE_TENTATIVA_INVALIDO"
	CodePagamentoNaoPermiteCancelamento  = "PAGAMENTO_NAO_PERMITE_CANCELAMENTO"
	CodeCancelamentoForaPeriodoPermitido = "CANCELAMENTO_FORA_PERIODO_PERMITIDO"
	CodeFalhaInfraestruturaDetentora     = "FALHA_INFRAESTRUTURA_DETENTORA"
	CodeConsentimentoRevogado            = "CONSENTIMENTO_REVOGADO"
	CodeTitularidadeInconsistente        = "TITULARIDADE_INCONSISTENTE"
	CodeFalhaInfraestruturaSPI           = "FALHA_INFRAESTRUTURA_SPI"
	CodeFalhaInfraestruturaICP           = "FALHA_INFRAESTRUTURA_ICP"
	CodeFalhaInfraestruturaPSPRecebedor  = "FALHA_INFRAESTRUTURA_PSP_RECEBEDOR"
)

// paymentTitles are the specification's titles of the payment error codes.
var paymentTitles = map[string]string{
	CodeSaldoInsuficiente:                "Esta conta não possui saldo suficiente para realizar o pagamento.",
	CodeValorAcimaLimite:                 "Valida se o valor ultrapassa o limite estabelecido [na instituição (conta ou canal)/no arranjo] para permitir a realização de transações pelo cliente.",
	CodeValorInvalido:                    "O valor enviado não é válido para o QR Code informado.",
	CodeLimitePeriodoValorExcedido:       "A transação não pode ser realizada pois o valor parametrizado no consentimento foi excedido.",
	CodeLimitePeriodoQuantidadeExcedido:  "A transação não pode ser realizada pois a quantidade parametrizada no consentimento foi excedida.",
	CodeConsentimentoInvalido:            "Consentimento inválido (em status final).",
	CodeConsentimentoPendenteAutorizacao: "Consentimento pendente autorização de múltiplas alçadas (status “PARTIALLY_ACCEPTED”).",
	CodePagamentoDivergenteConsentimento: "Dados do pagamento divergentes dos dados do consentimento.",
	CodePagamentoRecusadoDetentora:       "Pagamento recusado pela detentora de conta.",
	CodePagamentoRecusadoSPI:             "Pagamento recusado no Sistema de Pagamentos Instantâneos (SPI).",
	CodeLimiteValorTotalExcedido:         "Limite total excedido",
	CodeLimiteValorTransacaoExcedido:     "Limite de transação excedido.",
	CodeLimiteTentativasExcedido:         "Limite de tentativas excedido.",
	CodeForaPrazoPermitido:               "Tentativa fora do prazo.",
	CodeDetalheTentativaInvalido:         "Nova tentativa inválida",
	CodePagamentoNaoPermiteCancelamento:  "Pagamento está com um status que não permite cancelamento.",
	CodeCancelamentoForaPeriodoPermitido: "O usuário solicitou o cancelamento fora da janela de tempo permitido.",
}

// paymentDetails are the specification's standard details per code, for
// 422 answers and rejection reasons.
var paymentDetails = map[string]string{
	CodeSaldoInsuficiente:                "A conta selecionada não possui saldo suficiente para realizar o pagamento.",
	CodeValorAcimaLimite:                 "O valor ultrapassa o limite estabelecido na instituição para permitir a realização de transações pelo cliente.",
	CodeLimitePeriodoValorExcedido:       "A transação não pode ser realizada pois o valor parametrizado no consentimento foi excedido.",
	CodeLimitePeriodoQuantidadeExcedido:  "A transação não pode ser realizada pois a quantidade parametrizada no consentimento foi excedida.",
	CodeConsentimentoInvalido:            "Consentimento inválido (em status final).",
	CodeConsentimentoPendenteAutorizacao: "Consentimento pendente autorização de múltiplas alçadas (status “PARTIALLY_ACCEPTED”).",
	CodePagamentoDivergenteConsentimento: "Dados do pagamento divergentes dos dados do consentimento.",
	CodePagamentoRecusadoDetentora:       "Pagamento recusado pela detentora de conta.",
	CodeLimiteValorTotalExcedido:         "O valor da transação excede o limite global do consentimento.",
	CodeLimiteValorTransacaoExcedido:     "O valor da transação ultrapassar o limite de valor por transação.",
	CodeForaPrazoPermitido:               "O horário ou período da requisição não permite o agendamento pelo detentor.",
	CodePagamentoNaoPermiteCancelamento:  "O pagamento está com um status que não permite o cancelamento.",
	CodeFalhaInfraestruturaDetentora:     "Indica uma falha na infraestrutura da instituição detentora das informações ou recursos.",
	CodeConsentimentoRevogado:            "O pagamento estava associado a um consentimento que foi revogado.",
	payments.CodeNaoInformado:            "Não reportado/identificado pela instituição detentora de conta.",
}

// RejectionCodes are the payment rejection reasons of the specification
// (EnumRejectionReasonCode): what SettlementFailed accepts.
var RejectionCodes = []string{
	CodeSaldoInsuficiente, CodeValorAcimaLimite, CodeValorInvalido, payments.CodeNaoInformado,
	CodePagamentoDivergenteConsentimento, CodePagamentoRecusadoDetentora, CodePagamentoRecusadoSPI,
	CodeFalhaInfraestruturaSPI, CodeFalhaInfraestruturaICP, CodeFalhaInfraestruturaPSPRecebedor,
	CodeFalhaInfraestruturaDetentora, CodeConsentimentoInvalido, CodeTitularidadeInconsistente,
	CodeLimitePeriodoValorExcedido, CodeLimitePeriodoQuantidadeExcedido, CodeLimiteValorTotalExcedido,
	CodeLimiteValorTransacaoExcedido, CodeLimiteTentativasExcedido, CodeConsentimentoRevogado,
	CodeForaPrazoPermitido, CodeDetalheTentativaInvalido, payments.CodeDetalhePagamentoInvalido,
}

// Errors of the payment service.
var (
	ErrPaymentNotFound = errors.New("recurring: payment not found")
	// ErrNotOwner: the payment or consent exists but another application
	// created it (the specification answers 400).
	ErrNotOwner = errors.New("recurring: payment of another application")
	// ErrTokenConsent: the access token is not one issued for the payment's
	// recurring consent (client_credentials, or another consent's).
	ErrTokenConsent = errors.New("recurring: access token not bound to this recurring consent")
	// ErrPaymentTransition: a settlement outcome for a payment in a status
	// it cannot leave that way.
	ErrPaymentTransition = errors.New("recurring: invalid payment status transition")
	// ErrRejectionReason: SettlementFailed with a code outside the specification's.
	ErrRejectionReason = errors.New("recurring: unknown payment rejection code")
)

// Amount is payment.amount and payment.currency (PaymentPix).
type Amount struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// RiskSignals is riskSignals (RiskSignalsPayments): sweeping payments must
// carry the one of the user's presence (manual) or absence (automatic).
type RiskSignals struct {
	Manual    *ManualSignals    `json:"manual,omitempty"`
	Automatic *AutomaticSignals `json:"automatic,omitempty"`
}

// ManualSignals are the required fields of riskSignals.manual.
type ManualSignals struct {
	DeviceID           string          `json:"deviceId"`
	OSVersion          string          `json:"osVersion"`
	UserTimeZoneOffset string          `json:"userTimeZoneOffset"`
	Language           string          `json:"language"`
	ScreenDimensions   json.RawMessage `json:"screenDimensions,omitempty"`
	AccountTenure      string          `json:"accountTenure"`
}

// AutomaticSignals is riskSignals.automatic.
type AutomaticSignals struct {
	LastLoginDateTime          string `json:"lastLoginDateTime"`
	PixKeyRegistrationDateTime string `json:"pixKeyRegistrationDateTime,omitempty"`
}

// PaymentRequest is the data of POST /pix/recurring-payments
// (CreateRecurringPixPaymentData), kept as received and echoed.
type PaymentRequest struct {
	EndToEndID                string             `json:"endToEndId"`
	Date                      string             `json:"date"`
	Payment                   *Amount            `json:"payment"`
	CreditorAccount           *payments.Account  `json:"creditorAccount"`
	RemittanceInformation     *string            `json:"remittanceInformation,omitempty"`
	CNPJInitiator             string             `json:"cnpjInitiator"`
	IBGETownCode              string             `json:"ibgeTownCode,omitempty"`
	LocalInstrument           string             `json:"localInstrument"`
	Proxy                     *string            `json:"proxy,omitempty"`
	TransactionIdentification *string            `json:"transactionIdentification,omitempty"`
	Document                  *payments.Document `json:"document"`
	// RiskSignals is kept as sent (the holder's anti-fraud reads every
	// signal); validation decodes the required ones into RiskSignals.
	RiskSignals                json.RawMessage `json:"riskSignals,omitempty"`
	RecurringConsentID         string          `json:"recurringConsentId,omitempty"`
	AuthorisationFlow          string          `json:"authorisationFlow,omitempty"`
	PaymentReference           *string         `json:"paymentReference,omitempty"`
	OriginalRecurringPaymentID string          `json:"originalRecurringPaymentId,omitempty"`
}

// PaymentReason is a payment's rejectionReason.
type PaymentReason struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// CancelledBy is cancellation.cancelledBy.
type CancelledBy struct {
	Document *payments.Document `json:"document"`
}

// Cancellation is a payment's cancellation (PixPaymentCancellation).
type Cancellation struct {
	Reason        string       `json:"reason"`
	CancelledFrom string       `json:"cancelledFrom"`
	CancelledAt   string       `json:"cancelledAt"`
	CancelledBy   *CancelledBy `json:"cancelledBy"`
}

// Payment is a stored sweeping payment.
type Payment struct {
	ID             string
	ApplicationID  string
	ConsentID      string
	Status         PaymentStatus
	Request        PaymentRequest
	AmountCents    int64
	PayDate        string // YYYY-MM-DD, Brasília
	DebtorAccount  payments.Account
	DebtorDocument string
	CreditorName   string
	Rejection      *PaymentReason
	Cancellation   *Cancellation
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// PaymentData is a payment as POST, GET and PATCH answer it
// (ResponseRecurringPaymentsPostData, …DataRead, …DataPatch: one shape).
type PaymentData struct {
	RecurringPaymentID         string             `json:"recurringPaymentId"`
	RecurringConsentID         string             `json:"recurringConsentId"`
	EndToEndID                 string             `json:"endToEndId"`
	Date                       string             `json:"date"`
	CreationDateTime           string             `json:"creationDateTime"`
	StatusUpdateDateTime       string             `json:"statusUpdateDateTime"`
	Status                     PaymentStatus      `json:"status"`
	RejectionReason            *PaymentReason     `json:"rejectionReason,omitempty"`
	CNPJInitiator              string             `json:"cnpjInitiator"`
	Payment                    *Amount            `json:"payment"`
	CreditorAccount            *payments.Account  `json:"creditorAccount"`
	DebtorAccount              *payments.Account  `json:"debtorAccount,omitempty"`
	LocalInstrument            string             `json:"localInstrument"`
	Proxy                      *string            `json:"proxy,omitempty"`
	RemittanceInformation      *string            `json:"remittanceInformation,omitempty"`
	TransactionIdentification  *string            `json:"transactionIdentification,omitempty"`
	Document                   *payments.Document `json:"document"`
	AuthorisationFlow          string             `json:"authorisationFlow,omitempty"`
	PaymentReference           *string            `json:"paymentReference,omitempty"`
	OriginalRecurringPaymentID string             `json:"originalRecurringPaymentId,omitempty"`
	Cancellation               *Cancellation      `json:"cancellation,omitempty"`
}

// PaymentResponse is the body of the 201 and 200 answers about one payment.
type PaymentResponse struct {
	Data  PaymentData `json:"data"`
	Links Links       `json:"links"`
	Meta  Meta        `json:"meta"`
}

// PaymentListItem is one payment of GET /pix/recurring-payments (ResponseRecurringPixData).
type PaymentListItem struct {
	RecurringPaymentID         string             `json:"recurringPaymentId"`
	RecurringConsentID         string             `json:"recurringConsentId"`
	EndToEndID                 string             `json:"endToEndId"`
	Date                       string             `json:"date"`
	CreationDateTime           string             `json:"creationDateTime"`
	StatusUpdateDateTime       string             `json:"statusUpdateDateTime"`
	Status                     PaymentStatus      `json:"status"`
	RejectionReason            *PaymentReason     `json:"rejectionReason,omitempty"`
	Payment                    *Amount            `json:"payment"`
	RemittanceInformation      *string            `json:"remittanceInformation,omitempty"`
	TransactionIdentification  *string            `json:"transactionIdentification,omitempty"`
	Document                   *payments.Document `json:"document"`
	PaymentReference           *string            `json:"paymentReference,omitempty"`
	OriginalRecurringPaymentID string             `json:"originalRecurringPaymentId,omitempty"`
}

// PaymentListResponse is the body of GET /pix/recurring-payments.
type PaymentListResponse struct {
	Data  []PaymentListItem `json:"data"`
	Links Links             `json:"links"`
	Meta  Meta              `json:"meta"`
}

// Data renders p as the API shows it.
func (p *Payment) Data() PaymentData {
	r := p.Request
	debtor := p.DebtorAccount
	return PaymentData{
		RecurringPaymentID: p.ID, RecurringConsentID: p.ConsentID, EndToEndID: r.EndToEndID, Date: r.Date,
		CreationDateTime: formatTime(p.CreatedAt), StatusUpdateDateTime: formatTime(p.UpdatedAt), Status: p.Status,
		RejectionReason: p.Rejection, CNPJInitiator: r.CNPJInitiator, Payment: r.Payment, CreditorAccount: r.CreditorAccount,
		DebtorAccount: &debtor, LocalInstrument: r.LocalInstrument, Proxy: r.Proxy, RemittanceInformation: r.RemittanceInformation,
		TransactionIdentification: r.TransactionIdentification, Document: r.Document, AuthorisationFlow: r.AuthorisationFlow,
		PaymentReference: r.PaymentReference, OriginalRecurringPaymentID: r.OriginalRecurringPaymentID, Cancellation: p.Cancellation,
	}
}

// Response is p's 201/200 body; self is the payment's URL.
func (p *Payment) Response(self string, now time.Time) PaymentResponse {
	return PaymentResponse{Data: p.Data(), Links: Links{Self: self}, Meta: Meta{RequestDateTime: formatTime(now)}}
}

// listItem is p as the list shows it.
func (p *Payment) listItem() PaymentListItem {
	r := p.Request
	return PaymentListItem{
		RecurringPaymentID: p.ID, RecurringConsentID: p.ConsentID, EndToEndID: r.EndToEndID, Date: r.Date,
		CreationDateTime: formatTime(p.CreatedAt), StatusUpdateDateTime: formatTime(p.UpdatedAt), Status: p.Status,
		RejectionReason: p.Rejection, Payment: r.Payment, RemittanceInformation: r.RemittanceInformation,
		TransactionIdentification: r.TransactionIdentification, Document: r.Document, PaymentReference: r.PaymentReference,
		OriginalRecurringPaymentID: r.OriginalRecurringPaymentID,
	}
}

// PatchPaymentRequest is the data of PATCH /pix/recurring-payments/{id} (PatchPixPaymentData).
type PatchPaymentRequest struct {
	Status       string `json:"status"`
	Cancellation *struct {
		CancelledBy *CancelledBy `json:"cancelledBy"`
	} `json:"cancellation"`
}

// PaymentEvent is a payment's status change, emitted in the transaction
// that writes it (a webhook event for the initiator).
type PaymentEvent struct {
	ApplicationID string
	PaymentID     string
	ConsentID     string
	EndToEndID    string
	Status        PaymentStatus
	// RejectionCode is rejectionReason.code when Status is RJCT.
	RejectionCode string
	At            time.Time
}

// Webhook event of a payment's status change (internal/app adapts
// PaymentEvent to it): context and name of the envelope.
const (
	EventContext              = "AutomaticPayments"
	EventPaymentStatusChanged = "RECURRING_PAYMENT_STATUS_CHANGED"
)

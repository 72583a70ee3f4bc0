package payments

import (
	"errors"
	"time"
)

// Pix payments (POST /pix/payments and the routes under it): the second half
// of a payment consent. A POST carries one item for an immediate consent and
// one per date of a scheduled one; each becomes a PixPayment with its own
// status machine:
//
//	ACCP → ACPD → ACSC       immediate: reserved at creation, settled by the worker
//	SCHD → ACCP → …          scheduled: reserved and settled on its date
//	RJCT                     refused by the settlement (rejectionReason)
//	ACPD → PDNG → ACSC/RJCT  held for analysis by the holder partner (SettlementHeld)
//	CANC                     cancelled through the PATCH routes, from SCHD or PDNG
//
// RCVD is in the enumeration for holders that validate after answering;
// Ponte validates and reserves within the POST, so a created payment starts
// at ACCP (or SCHD, or RJCT when the accounts are the same).

// PaymentStatus is a Pix payment status (EnumPaymentStatusType).
type PaymentStatus string

// Payment statuses.
const (
	PaymentRCVD PaymentStatus = "RCVD"
	PaymentACCP PaymentStatus = "ACCP"
	PaymentACPD PaymentStatus = "ACPD"
	PaymentACSC PaymentStatus = "ACSC"
	PaymentRJCT PaymentStatus = "RJCT"
	PaymentCANC PaymentStatus = "CANC"
	PaymentPDNG PaymentStatus = "PDNG"
	PaymentSCHD PaymentStatus = "SCHD"
)

// Final reports whether no transition leaves st.
func (st PaymentStatus) Final() bool {
	return st == PaymentACSC || st == PaymentRJCT || st == PaymentCANC
}

// Error codes of POST /pix/payments (EnumErrorsCreatePayment) and of the
// PATCH routes (EnumErrorsCreatePixPayment).
const (
	CodeSaldoInsuficiente          = "SALDO_INSUFICIENTE"
	CodeValorAcimaLimite           = "VALOR_ACIMA_LIMITE"
	CodeValorInvalido              = "VALOR_INVALIDO"
	CodeCobrancaInvalida           = "COBRANCA_INVALIDA"
	CodeConsentimentoInvalido      = "CONSENTIMENTO_INVALIDO"
	CodePagamentoDivergente        = "PAGAMENTO_DIVERGENTE_CONSENTIMENTO"
	CodePagamentoRecusadoDetentora = "PAGAMENTO_RECUSADO_DETENTORA"
	CodePagamentoRecusadoSPI       = "PAGAMENTO_RECUSADO_SPI"
	CodeConsentimentoPendente      = "CONSENTIMENTO_PENDENTE_AUTORIZACAO"
	CodePagamentoNaoPermiteCancel  = "PAGAMENTO_NAO_PERMITE_CANCELAMENTO"
)

func init() {
	for code, title := range map[string]string{
		CodeSaldoInsuficiente:          "Saldo insuficiente.",
		CodeValorAcimaLimite:           "Acima do limite estabelecido.",
		CodeValorInvalido:              "Valor inválido.",
		CodeCobrancaInvalida:           "Cobrança inválida.",
		CodeConsentimentoInvalido:      "Consentimento inválido (em status final).",
		CodePagamentoDivergente:        "Divergência entre pagamento e consentimento.",
		CodePagamentoRecusadoDetentora: "Pagamento recusado pela detentora de conta.",
		CodePagamentoRecusadoSPI:       "Pagamento recusado no Sistema de Pagamentos Instantâneos (SPI).",
		CodeConsentimentoPendente:      "Consentimento pendente autorização de múltiplas alçadas (status “PARTIALLY_ACCEPTED”).",
		CodePagamentoNaoPermiteCancel:  "Pagamento não permite cancelamento",
	} {
		titles[code] = title
	}
}

// Payment rejection reasons (EnumRejectionReasonType) Ponte sets, with the
// specification's standard details.
const (
	PayRejectSaldoInsuficiente          = "SALDO_INSUFICIENTE"
	PayRejectValorAcimaLimite           = "VALOR_ACIMA_LIMITE"
	PayRejectRecusadoDetentora          = "PAGAMENTO_RECUSADO_DETENTORA"
	PayRejectContasOrigemDestinoIguais  = "CONTAS_ORIGEM_DESTINO_IGUAIS"
	PayRejectFalhaInfraestruturaDetent  = "FALHA_INFRAESTRUTURA_DETENTORA"
	PayRejectFalhaAgendamentoPagamentos = "FALHA_AGENDAMENTO_PAGAMENTOS"
)

// paymentRejectionCodes are the codes a payment's rejectionReason may carry
// (EnumRejectionReasonTypeGetPix, a superset of EnumRejectionReasonType).
var paymentRejectionCodes = map[string]bool{
	"SALDO_INSUFICIENTE": true, "VALOR_ACIMA_LIMITE": true, "VALOR_INVALIDO": true, "COBRANCA_INVALIDA": true,
	"NAO_INFORMADO": true, "PAGAMENTO_DIVERGENTE_CONSENTIMENTO": true, "DETALHE_PAGAMENTO_INVALIDO": true,
	"PAGAMENTO_RECUSADO_DETENTORA": true, "PAGAMENTO_RECUSADO_SPI": true, "FALHA_INFRAESTRUTURA": true,
	"FALHA_INFRAESTRUTURA_SPI": true, "FALHA_INFRAESTRUTURA_DICT": true, "FALHA_INFRAESTRUTURA_ICP": true,
	"FALHA_INFRAESTRUTURA_PSP_RECEBEDOR": true, "FALHA_INFRAESTRUTURA_DETENTORA": true,
	"CONTAS_ORIGEM_DESTINO_IGUAIS": true, "FALHA_AGENDAMENTO_PAGAMENTOS": true,
}

var paymentRejectionDetails = map[string]string{
	PayRejectSaldoInsuficiente:         "A conta selecionada não possui saldo suficiente para realizar o pagamento.",
	PayRejectValorAcimaLimite:          "O valor ultrapassa o limite estabelecido na instituição para permitir a realização de transações pelo cliente.",
	PayRejectRecusadoDetentora:         "A conta selecionada não permite realizar esse pagamento.",
	PayRejectContasOrigemDestinoIguais: "A conta de origem é igual à conta de destino.",
	PayRejectFalhaInfraestruturaDetent: "Falha na infraestrutura da instituição detentora.",
}

// Cancellation reasons (EnumPaymentCancellationReasonType) and channels
// (EnumPaymentCancellationFromType).
const (
	CancelPendencia   = "CANCELADO_PENDENCIA"
	CancelAgendamento = "CANCELADO_AGENDAMENTO"
	CancelFromITP     = "INICIADORA"
	CancelFromHolder  = "DETENTORA"
)

// Errors of the Pix payment service.
var (
	ErrPaymentNotFound = errors.New("payments: pix payment not found")
	// ErrNotCancellable: the payment (or every payment of the consent) is past
	// the point where it may be cancelled (PAGAMENTO_NAO_PERMITE_CANCELAMENTO).
	ErrNotCancellable = errors.New("payments: payment does not allow cancellation")
	// ErrConsentNotOwned: the token's consent belongs to another application.
	ErrConsentNotOwned = errors.New("payments: consent of another application")
	// ErrNoSettlement: the service was built without a settlement port.
	ErrNoSettlement = errors.New("payments: no settlement configured")
	// ErrPaymentRejectionCode: an outcome's code is not a payment rejection code.
	ErrPaymentRejectionCode = errors.New("payments: unknown payment rejection code")
)

// PixAmount is the payment object of a Pix payment (PaymentPix).
type PixAmount struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// PixPaymentRequest is one item of POST /pix/payments' data, kept as received
// (after validation) and echoed in every response.
type PixPaymentRequest struct {
	EndToEndID                string     `json:"endToEndId"`
	LocalInstrument           string     `json:"localInstrument"`
	Payment                   *PixAmount `json:"payment"`
	CreditorAccount           *Account   `json:"creditorAccount"`
	RemittanceInformation     *string    `json:"remittanceInformation,omitempty"`
	QRCode                    *string    `json:"qrCode,omitempty"`
	Proxy                     *string    `json:"proxy,omitempty"`
	CNPJInitiator             string     `json:"cnpjInitiator"`
	TransactionIdentification *string    `json:"transactionIdentification,omitempty"`
	IBGETownCode              string     `json:"ibgeTownCode,omitempty"`
	AuthorisationFlow         string     `json:"authorisationFlow,omitempty"`
	ConsentID                 string     `json:"consentId,omitempty"`
}

// CreatePixPaymentsBody is the body of POST /pix/payments (the JWT claims' shape).
type CreatePixPaymentsBody struct {
	Data []PixPaymentRequest `json:"data"`
}

// CancelledBy names the paying user who asked for a cancellation.
type CancelledBy struct {
	Document *Document `json:"document"`
}

// CancelRequest is the data of both PATCH routes (PatchPixPaymentData).
type CancelRequest struct {
	Status       string `json:"status"`
	Cancellation *struct {
		CancelledBy *CancelledBy `json:"cancelledBy"`
	} `json:"cancellation"`
}

// CancelBody is the body of both PATCH routes.
type CancelBody struct {
	Data *CancelRequest `json:"data"`
}

// Cancellation is a cancelled payment's cancellation object.
type Cancellation struct {
	Reason        string      `json:"reason"`
	CancelledFrom string      `json:"cancelledFrom"`
	CancelledAt   string      `json:"cancelledAt"`
	CancelledBy   CancelledBy `json:"cancelledBy"`
}

// PaymentRejection says why a payment was rejected.
type PaymentRejection struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// PixPayment is a stored Pix payment.
type PixPayment struct {
	ID            string
	ConsentID     string
	ApplicationID string
	Status        PaymentStatus
	Request       PixPaymentRequest
	DebtorAccount Account
	Parties       Parties
	AmountCents   int64
	// ScheduledDate is the date of a scheduled payment ("" for an immediate one).
	ScheduledDate   string
	DueAt           time.Time
	Rejection       *PaymentRejection
	Cancellation    *Cancellation
	CreatedAt       time.Time
	StatusUpdatedAt time.Time
}

// Parties are the people of a payment as the consent names them, kept with
// the payment so the settlement worker needs no second read.
type Parties struct {
	DebtorDocument   string `json:"debtorDocument"`
	CreditorName     string `json:"creditorName"`
	CreditorDocument string `json:"creditorDocument"`
}

// PixPaymentData is a payment as the API returns it (ResponsePixPaymentData
// and the items of ResponseCreatePixPayment and ResponsePatchPixPaymentData).
type PixPaymentData struct {
	PaymentID                 string            `json:"paymentId"`
	EndToEndID                string            `json:"endToEndId"`
	ConsentID                 string            `json:"consentId"`
	CreationDateTime          string            `json:"creationDateTime"`
	StatusUpdateDateTime      string            `json:"statusUpdateDateTime"`
	Proxy                     *string           `json:"proxy,omitempty"`
	IBGETownCode              string            `json:"ibgeTownCode,omitempty"`
	Status                    PaymentStatus     `json:"status"`
	RejectionReason           *PaymentRejection `json:"rejectionReason,omitempty"`
	LocalInstrument           string            `json:"localInstrument"`
	CNPJInitiator             string            `json:"cnpjInitiator"`
	Payment                   *PixAmount        `json:"payment"`
	TransactionIdentification *string           `json:"transactionIdentification,omitempty"`
	RemittanceInformation     *string           `json:"remittanceInformation,omitempty"`
	CreditorAccount           *Account          `json:"creditorAccount"`
	Cancellation              *Cancellation     `json:"cancellation,omitempty"`
	DebtorAccount             Account           `json:"debtorAccount"`
	AuthorisationFlow         string            `json:"authorisationFlow,omitempty"`
}

// Data renders p as the API returns it.
func (p *PixPayment) Data() PixPaymentData {
	r := p.Request
	return PixPaymentData{
		PaymentID: p.ID, EndToEndID: r.EndToEndID, ConsentID: p.ConsentID,
		CreationDateTime: formatTime(p.CreatedAt), StatusUpdateDateTime: formatTime(p.StatusUpdatedAt),
		Proxy: r.Proxy, IBGETownCode: r.IBGETownCode, Status: p.Status, RejectionReason: p.Rejection,
		LocalInstrument: r.LocalInstrument, CNPJInitiator: r.CNPJInitiator, Payment: r.Payment,
		TransactionIdentification: r.TransactionIdentification, RemittanceInformation: r.RemittanceInformation,
		CreditorAccount: r.CreditorAccount, Cancellation: p.Cancellation, DebtorAccount: p.DebtorAccount,
		AuthorisationFlow: r.AuthorisationFlow,
	}
}

// PixPaymentsResponse is the 201 of POST /pix/payments.
type PixPaymentsResponse struct {
	Data  []PixPaymentData `json:"data"`
	Links Links            `json:"links"`
	Meta  Meta             `json:"meta"`
}

// PixPaymentResponse is the 200 of GET and PATCH /pix/payments/{paymentId}.
type PixPaymentResponse struct {
	Data  PixPaymentData `json:"data"`
	Links Links          `json:"links"`
	Meta  Meta           `json:"meta"`
}

// CancelledPayment is one item of PATCH /pix/payments/consents/{consentId}'s answer.
type CancelledPayment struct {
	PaymentID            string `json:"paymentId"`
	StatusUpdateDateTime string `json:"statusUpdateDateTime"`
}

// CancelledPaymentsResponse is the 200 of PATCH /pix/payments/consents/{consentId}.
type CancelledPaymentsResponse struct {
	Data  []CancelledPayment `json:"data"`
	Links Links              `json:"links"`
	Meta  Meta               `json:"meta"`
}

// PaymentEvent is a payment's status change, for the webhook the holder
// partner owning the debtor account receives.
type PaymentEvent struct {
	PaymentID     string
	ConsentID     string
	ApplicationID string // the initiator
	EndToEndID    string
	Status        PaymentStatus
	AmountCents   int64
	DebtorAccount Account
	Rejection     *PaymentRejection
	At            time.Time
}

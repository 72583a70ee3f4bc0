package recurring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/ofb"
	"github.com/ponte-ofb/ponte/internal/payments"
)

// Patterns of the payment request (automatic-payments 2.0.0).
var (
	endToEndPattern    = regexp.MustCompile(`^([E])([0-9]{8})([0-9]{4})(0[1-9]|1[0-2])(0[1-9]|[1-2][0-9]|3[0-1])(2[0-3]|[01][0-9])([0-5][0-9])([a-zA-Z0-9]{11})$`)
	datePattern        = regexp.MustCompile(`^(\d{4})-(1[0-2]|0?[1-9])-(3[01]|[12][0-9]|0?[1-9])$`)
	currencyPattern    = regexp.MustCompile(`^([A-Z]{3})$`)
	documentPattern    = regexp.MustCompile(`^(?:\d{11}|\d{14})$`)
	townPattern        = regexp.MustCompile(`^\d{7}$`)
	txidPattern        = regexp.MustCompile(`^[a-zA-Z0-9]{1,35}$`)
	paymentIDPattern   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9\-]{0,99}$`)
	phoneProxyPattern  = regexp.MustCompile(`^\+[1-9]\d{1,14}$`)
	digitsProxyPattern = regexp.MustCompile(`^\d{11}$|^\d{14}$`)
)

var (
	localInstruments   = []string{"MANU", "DICT", "INIC"}
	authorisationFlows = []string{"HYBRID_FLOW", "CIBA_FLOW", "FIDO_FLOW"}
	documentRels       = []string{"CPF", "CNPJ"}
)

// endToEndTolerance is how far the endToEndId's yyyyMMddHHmm may be from
// the time Ponte processes the payment, either way (the Pix rule the
// specification quotes: "tolerância máxima de 12 horas").
const endToEndTolerance = 12 * time.Hour

// DecodePayment decodes a POST /pix/recurring-payments body (plain JSON, or
// the claims of a verified JWT).
func DecodePayment(body []byte) (*PaymentRequest, *payments.ValidationError) {
	return decodeData[PaymentRequest](body)
}

// DecodePaymentPatch decodes a PATCH /pix/recurring-payments/{id} body.
func DecodePaymentPatch(body []byte) (*PatchPaymentRequest, *payments.ValidationError) {
	return decodeData[PatchPaymentRequest](body)
}

// Validate checks the request's formats and the rules that need no
// consent: required fields, patterns, localInstrument with proxy and
// transactionIdentification, riskSignals, endToEndId against now. It returns
// nil or a 422 with at most three problems.
func (r *PaymentRequest) Validate(now time.Time) *payments.ValidationError {
	c := &checker{}
	r.validate(c, now)
	return c.result()
}

func (r *PaymentRequest) validate(c *checker, now time.Time) {
	e2eOK := c.required("endToEndId", r.EndToEndID, endToEndPattern, 32)
	dateOK := c.required("date", r.Date, datePattern, 10)
	if r.Payment == nil {
		c.missing("payment")
	} else {
		if c.required("payment.amount", r.Payment.Amount, amountPattern, 19) && len(r.Payment.Amount) < 4 {
			c.invalid("payment.amount")
		}
		c.required("payment.currency", r.Payment.Currency, currencyPattern, 3)
	}
	if r.CreditorAccount == nil {
		c.missing("creditorAccount")
	} else {
		validateAccount(c, "creditorAccount", r.CreditorAccount)
	}
	c.required("cnpjInitiator", r.CNPJInitiator, cnpjPattern, 14)
	instrumentOK := c.enum("localInstrument", r.LocalInstrument, localInstruments)
	docOK := false
	if r.Document == nil {
		c.missing("document")
	} else {
		idOK := c.required("document.identification", r.Document.Identification, documentPattern, 14)
		relOK := c.enum("document.rel", r.Document.Rel, documentRels)
		docOK = idOK && relOK
	}
	c.optional("ibgeTownCode", r.IBGETownCode, townPattern, 7)
	if r.RemittanceInformation != nil {
		c.optional("remittanceInformation", *r.RemittanceInformation, nil, 140)
	}
	if r.TransactionIdentification != nil {
		c.required("transactionIdentification", *r.TransactionIdentification, txidPattern, 35)
	}
	c.optional("recurringConsentId", r.RecurringConsentID, ConsentIDPattern, 256)
	if r.AuthorisationFlow != "" {
		c.enum("authorisationFlow", r.AuthorisationFlow, authorisationFlows)
	}
	if r.PaymentReference != nil {
		c.optional("paymentReference", *r.PaymentReference, nil, 10)
	}
	c.optional("originalRecurringPaymentId", r.OriginalRecurringPaymentID, paymentIDPattern, 100)
	if len(c.problems) > 0 {
		return // business rules only on a well-formed request
	}
	if r.Payment.Currency != "BRL" {
		c.business("payment.currency", "a moeda deve ser BRL")
	}
	if cents, ok := Cents(r.Payment.Amount); !ok || cents <= 0 {
		c.business("payment.amount", "o valor deve ser maior que zero")
	}
	if docOK {
		doc := r.Document
		switch {
		case doc.Rel == "CPF" && (len(doc.Identification) != 11 || !ofb.ValidCPF(doc.Identification)),
			doc.Rel == "CNPJ" && (len(doc.Identification) != 14 || !ofb.ValidCNPJ(doc.Identification)):
			c.invalid("document.identification")
		}
	}
	if instrumentOK {
		r.validateInstrument(c)
	}
	if e2eOK && dateOK {
		validateEndToEnd(c, r.EndToEndID, now)
	}
	if r.AuthorisationFlow == "CIBA_FLOW" || r.AuthorisationFlow == "FIDO_FLOW" {
		c.business("authorisationFlow", "a detentora oferece Transferências Inteligentes apenas pelo fluxo de redirecionamento (HYBRID_FLOW)")
	}
	if r.OriginalRecurringPaymentID != "" {
		c.add(CodeDetalheTentativaInvalido, "O parâmetro originalRecurringPaymentId inserido para a nova tentativa de pagamento não condiz com o pagamento original: novas tentativas existem apenas no Pix Automático.")
	}
	r.validateRiskSignals(c)
}

// validateInstrument applies the proxy and transactionIdentification rules of localInstrument.
func (r *PaymentRequest) validateInstrument(c *checker) {
	switch r.LocalInstrument {
	case "MANU":
		if r.Proxy != nil {
			c.business("proxy", "não deve ser informado quando localInstrument é MANU")
		}
	case "DICT", "INIC":
		if r.Proxy == nil || *r.Proxy == "" {
			c.missing("proxy")
		} else if !validProxy(*r.Proxy) {
			c.invalid("proxy")
		}
	}
	switch r.LocalInstrument {
	case "MANU", "DICT":
		if r.TransactionIdentification != nil {
			c.business("transactionIdentification", "não deve ser informado quando localInstrument é "+r.LocalInstrument)
		}
	case "INIC":
		if r.TransactionIdentification == nil {
			c.missing("transactionIdentification")
		} else if len(*r.TransactionIdentification) > 25 {
			c.business("transactionIdentification", "com localInstrument INIC deve ter até 25 caracteres alfanuméricos")
		}
	}
}

// validProxy checks a Pix key's form: phone (+E.164), e-mail (≤77), CPF,
// CNPJ or random key (UUID).
func validProxy(p string) bool {
	switch {
	case phoneProxyPattern.MatchString(p), digitsProxyPattern.MatchString(p):
		return true
	case strings.Contains(p, "@"):
		a, err := mail.ParseAddress(p)
		return err == nil && a.Address == p && len(p) <= 77
	}
	_, err := uuid.Parse(p)
	return err == nil && len(p) == 36
}

// validateEndToEnd checks the endToEndId's date and time (UTC) against now.
func validateEndToEnd(c *checker, e2e string, now time.Time) {
	at, err := time.Parse("200601021504", e2e[9:21])
	if err != nil {
		c.invalid("endToEndId")
		return
	}
	if d := at.Sub(now); d > endToEndTolerance || d < -endToEndTolerance {
		c.business("endToEndId", "data e hora do endToEndId fora da tolerância de 12 horas do processamento")
	}
}

// validateRiskSignals requires riskSignals, as the specification does for
// sweeping, with the required fields of the signals sent.
func (r *PaymentRequest) validateRiskSignals(c *checker) {
	raw := bytes.TrimSpace(r.RiskSignals)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		c.missing("riskSignals")
		return
	}
	var rs RiskSignals
	if raw[0] != '{' || json.Unmarshal(raw, &rs) != nil {
		c.invalid("riskSignals")
		return
	}
	if rs.Manual == nil && rs.Automatic == nil {
		c.missing("riskSignals.manual")
		return
	}
	if m := rs.Manual; m != nil {
		for _, f := range []struct{ name, v string }{{"deviceId", m.DeviceID}, {"osVersion", m.OSVersion},
			{"userTimeZoneOffset", m.UserTimeZoneOffset}, {"language", m.Language}, {"accountTenure", m.AccountTenure}} {
			if f.v == "" {
				c.missing("riskSignals.manual." + f.name)
			}
		}
		if len(m.ScreenDimensions) == 0 {
			c.missing("riskSignals.manual.screenDimensions")
		}
		if m.AccountTenure != "" {
			c.optional("riskSignals.manual.accountTenure", m.AccountTenure, datePattern, 10)
		}
	}
	if a := rs.Automatic; a != nil {
		if c.required("riskSignals.automatic.lastLoginDateTime", a.LastLoginDateTime, dateTimePattern, 20) {
			_, _ = parseDateTime(c, "riskSignals.automatic.lastLoginDateTime", a.LastLoginDateTime)
		}
		if a.PixKeyRegistrationDateTime != "" {
			c.optional("riskSignals.automatic.pixKeyRegistrationDateTime", a.PixKeyRegistrationDateTime, dateTimePattern, 20)
		} else if rs.Manual == nil && (r.LocalInstrument == "DICT" || r.LocalInstrument == "INIC") {
			c.missing("riskSignals.automatic.pixKeyRegistrationDateTime")
		}
	}
}

// Cents parses a specification amount ("1234.56") into integer cents.
func Cents(v string) (int64, bool) {
	if !amountPattern.MatchString(v) {
		return 0, false
	}
	whole, frac, _ := strings.Cut(v, ".")
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > (math.MaxInt64-99)/100 {
		return 0, false
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	return w*100 + f, true
}

// formatCents is the specification's amount for cents.
func formatCents(c int64) string { return fmt.Sprintf("%d.%02d", c/100, c%100) }

// Validate checks a PATCH /pix/recurring-payments/{id} request: status CANC with
// cancellation.cancelledBy.document.
func (p *PatchPaymentRequest) Validate() *payments.ValidationError {
	c := &checker{}
	if c.enum("status", p.Status, []string{string(PaymentCancelled)}) {
		switch {
		case p.Cancellation == nil:
			c.missing("cancellation")
		case p.Cancellation.CancelledBy == nil:
			c.missing("cancellation.cancelledBy")
		case p.Cancellation.CancelledBy.Document == nil:
			c.missing("cancellation.cancelledBy.document")
		default:
			d := p.Cancellation.CancelledBy.Document
			c.required("cancellation.cancelledBy.document.identification", d.Identification, documentPattern, 14)
			c.enum("cancellation.cancelledBy.document.rel", d.Rel, documentRels)
		}
	}
	return c.result()
}

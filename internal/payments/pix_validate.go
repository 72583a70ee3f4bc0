package payments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Patterns of POST /pix/payments (payments 4.0.0).
var (
	endToEndPattern     = regexp.MustCompile(`^([E])([0-9]{8})([0-9]{4})(0[1-9]|1[0-2])(0[1-9]|[1-2][0-9]|3[0-1])(2[0-3]|[01][0-9])([0-5][0-9])([a-zA-Z0-9]{11})$`)
	txIDPattern         = regexp.MustCompile(`^[a-zA-Z0-9]{1,35}$`)
	authorisationFlows  = []string{"HYBRID_FLOW", "CIBA_FLOW", "FIDO_FLOW"}
	maxPaymentProblems  = 9 // 422ResponseErrorCreatePixPayments' maxItems
	paymentIDPattern    = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9\-]{0,99}$`)
	endToEndScheduledAt = 15 // hour (UTC) a scheduled Pix's endToEndId carries
)

// validPaymentID checks a paymentId against the specification's pattern.
func validPaymentID(id string) bool { return paymentIDPattern.MatchString(id) }

// EndToEndTolerance is how far an immediate payment's endToEndId time may be
// from Ponte's clock, either way (the SPI's tolerance).
const EndToEndTolerance = 12 * time.Hour

// decodePixPayments decodes POST /pix/payments' body: malformed JSON is a
// 400; a value of the wrong JSON type a 422 PARAMETRO_INVALIDO; a missing or
// empty data a 422 PARAMETRO_NAO_INFORMADO.
func decodePixPayments(body []byte) ([]PixPaymentRequest, *ValidationError) {
	trimmed := bytes.TrimSpace(body)
	if !json.Valid(trimmed) || len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, &ValidationError{Status: http.StatusBadRequest, Problems: []Problem{{Code: CodeParametroInvalido,
			Detail: "O corpo da requisição não é um objeto JSON válido."}}}
	}
	var in CreatePixPaymentsBody
	if err := json.Unmarshal(trimmed, &in); err != nil {
		var te *json.UnmarshalTypeError
		field := "data"
		if errors.As(err, &te) && te.Field != "" {
			field = te.Field
		}
		return nil, unprocessable(CodeParametroInvalido, fmt.Sprintf("Parâmetro %s não obedece as regras de formatação esperadas.", field))
	}
	if len(in.Data) == 0 {
		return nil, unprocessable(CodeParametroNaoInformado, "Parâmetro data obrigatório não informado.")
	}
	return in.Data, nil
}

// decodeCancel decodes a PATCH body and checks it (PatchPixPaymentData):
// every problem is a 400, the only 422 of these routes being
// PAGAMENTO_NAO_PERMITE_CANCELAMENTO. It returns the canceller's document.
func decodeCancel(body []byte) (*Document, *ValidationError) {
	bad := func(code, detail string) *ValidationError {
		return &ValidationError{Status: http.StatusBadRequest, Problems: []Problem{{Code: code, Detail: detail}}}
	}
	trimmed := bytes.TrimSpace(body)
	if !json.Valid(trimmed) || len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, bad(CodeParametroInvalido, "O corpo da requisição não é um objeto JSON válido.")
	}
	var in CancelBody
	if err := json.Unmarshal(trimmed, &in); err != nil {
		return nil, bad(CodeParametroInvalido, "Parâmetro data não obedece as regras de formatação esperadas.")
	}
	missing := func(f string) *ValidationError {
		return bad(CodeParametroNaoInformado, "Parâmetro "+f+" obrigatório não informado.")
	}
	invalid := func(f string) *ValidationError {
		return bad(CodeParametroInvalido, "Parâmetro "+f+" não obedece as regras de formatação esperadas.")
	}
	switch d := in.Data; {
	case d == nil:
		return nil, missing("data")
	case d.Status == "":
		return nil, missing("data.status")
	case d.Status != string(PaymentCANC):
		return nil, invalid("data.status")
	case d.Cancellation == nil:
		return nil, missing("data.cancellation")
	case d.Cancellation.CancelledBy == nil:
		return nil, missing("data.cancellation.cancelledBy")
	case d.Cancellation.CancelledBy.Document == nil:
		return nil, missing("data.cancellation.cancelledBy.document")
	case d.Cancellation.CancelledBy.Document.Identification == "":
		return nil, missing("data.cancellation.cancelledBy.document.identification")
	case !cpfPattern.MatchString(d.Cancellation.CancelledBy.Document.Identification):
		return nil, invalid("data.cancellation.cancelledBy.document.identification")
	case d.Cancellation.CancelledBy.Document.Rel == "":
		return nil, missing("data.cancellation.cancelledBy.document.rel")
	case !relCPFPattern.MatchString(d.Cancellation.CancelledBy.Document.Rel):
		return nil, invalid("data.cancellation.cancelledBy.document.rel")
	}
	return in.Data.Cancellation.CancelledBy.Document, nil
}

func unprocessable(code, detail string) *ValidationError {
	return &ValidationError{Status: http.StatusUnprocessableEntity, Problems: []Problem{{Code: code, Detail: detail}}}
}

func (c *checker) result() *ValidationError {
	if len(c.problems) == 0 {
		return nil
	}
	if len(c.problems) > maxPaymentProblems {
		c.problems = c.problems[:maxPaymentProblems]
	}
	return &ValidationError{Status: http.StatusUnprocessableEntity, Problems: c.problems}
}

// validatePixPayments checks the items' formats and the rules that need no
// consent: required fields, patterns, localInstrument's conditions on proxy,
// qrCode and transactionIdentification, endToEndId's form and uniqueness
// within the request, one cnpjInitiator. It returns nil or a 422.
func validatePixPayments(items []PixPaymentRequest) *ValidationError {
	c := &checker{}
	if len(items) > MaxPayments {
		c.add(CodeParametroInvalido, "Quantidade permitida de pagamentos excedida")
		return c.result()
	}
	seen := map[string]bool{}
	for i := range items {
		p := &items[i]
		f := func(name string) string { return fmt.Sprintf("data[%d].%s", i, name) }
		if p.EndToEndID == "" {
			c.missing(f("endToEndId"))
		} else if !endToEndPattern.MatchString(p.EndToEndID) {
			c.invalid(f("endToEndId"))
		} else if _, ok := endToEndTime(p.EndToEndID); !ok {
			c.add(CodeParametroInvalido, "Data de liquidação inválida")
		} else if seen[p.EndToEndID] {
			c.add(CodeParametroInvalido, "Parâmetro %s repetido na requisição: cada pagamento tem o seu endToEndId.", f("endToEndId"))
		}
		seen[p.EndToEndID] = true
		okLI := c.enum(f("localInstrument"), p.LocalInstrument, localInstruments)
		if p.Payment == nil {
			c.missing(f("payment"))
		} else {
			if c.required(f("payment.amount"), p.Payment.Amount, amountPattern, 19) && strings.Trim(p.Payment.Amount, "0.") == "" {
				c.business(f("payment.amount"), "o valor deve ser maior que zero")
			}
			c.required(f("payment.currency"), p.Payment.Currency, currencyPattern, 3)
		}
		if p.CreditorAccount == nil {
			c.missing(f("creditorAccount"))
		} else {
			validateAccount(c, f("creditorAccount"), p.CreditorAccount)
		}
		if p.RemittanceInformation != nil && len([]rune(*p.RemittanceInformation)) > 140 {
			c.invalid(f("remittanceInformation"))
		}
		if p.QRCode != nil && len(*p.QRCode) > 512 {
			c.invalid(f("qrCode"))
		}
		if p.Proxy != nil && len([]rune(*p.Proxy)) > 77 {
			c.invalid(f("proxy"))
		}
		if c.required(f("cnpjInitiator"), p.CNPJInitiator, cnpjPattern, 14) && p.CNPJInitiator != items[0].CNPJInitiator {
			c.business(f("cnpjInitiator"), "todos os pagamentos de uma requisição têm o mesmo iniciador")
		}
		txOK := p.TransactionIdentification == nil || c.optional(f("transactionIdentification"), *p.TransactionIdentification, txIDPattern, 35)
		c.optional(f("ibgeTownCode"), p.IBGETownCode, ibgePattern, 7)
		if p.AuthorisationFlow != "" && !slices.Contains(authorisationFlows, p.AuthorisationFlow) {
			c.invalid(f("authorisationFlow"))
		} else if p.AuthorisationFlow != "" && p.AuthorisationFlow != "HYBRID_FLOW" {
			c.business(f("authorisationFlow"), "somente HYBRID_FLOW é suportado para pagamentos autorizados por redirecionamento")
		}
		if p.ConsentID != "" && (len(p.ConsentID) > 256 || !ConsentIDPattern.MatchString(p.ConsentID)) {
			c.invalid(f("consentId"))
		}
		if okLI {
			checkInstrument(c, f, p, txOK)
		}
	}
	return c.result()
}

// checkInstrument applies localInstrument's conditions (Details and
// transactionIdentification in the specification).
func checkInstrument(c *checker, f func(string) string, p *PixPaymentRequest, txOK bool) {
	li := p.LocalInstrument
	has := func(s *string) bool { return s != nil && *s != "" }
	switch li {
	case "MANU":
		if p.Proxy != nil {
			c.business(f("proxy"), "não deve ser informado para localInstrument MANU")
		}
	default:
		if !has(p.Proxy) {
			c.business(f("proxy"), "obrigatório para localInstrument "+li)
		}
	}
	switch li {
	case "QRDN", "QRES":
		if !has(p.QRCode) {
			c.business(f("qrCode"), "obrigatório para localInstrument "+li)
		} else if len(*p.QRCode) <= 512 {
			checkPaymentQR(c, f, p, txOK)
		}
	default:
		if p.QRCode != nil {
			c.business(f("qrCode"), "não deve ser informado para localInstrument "+li)
		}
	}
	if !txOK {
		return
	}
	tx := p.TransactionIdentification
	switch li {
	case "MANU", "DICT":
		if tx != nil {
			c.business(f("transactionIdentification"), "não deve ser informado para localInstrument "+li)
		}
	case "INIC":
		if !has(tx) || len(*tx) > 25 {
			c.business(f("transactionIdentification"), "obrigatório para localInstrument INIC, com até 25 caracteres alfanuméricos")
		}
	case "QRES":
		if has(tx) && len(*tx) > 25 {
			c.business(f("transactionIdentification"), "o TxId de um QR Code estático tem até 25 caracteres alfanuméricos")
		}
	case "QRDN":
		if !has(tx) || len(*tx) < 26 {
			c.business(f("transactionIdentification"), "obrigatório para localInstrument QRDN, com o TxId do QR Code dinâmico (26 a 35 caracteres)")
		}
	}
}

// checkPaymentQR reads a QRES or QRDN item's qrCode: the instrument and key
// rules of checkQRCode, then the amount the code fixes (VALOR_INVALIDO, the
// code POST /pix/payments lists for it) and, for a static code, its TxId,
// which transactionIdentification must carry, or be absent when the code has
// none ("***").
func checkPaymentQR(c *checker, f func(string) string, p *PixPaymentRequest, txOK bool) {
	code := checkQRCode(c, *p.QRCode, qrFacts{instrument: p.LocalInstrument, qrField: f("qrCode"), proxyField: f("proxy"), proxy: p.Proxy})
	if code == nil {
		return
	}
	if p.Payment != nil && amountPattern.MatchString(p.Payment.Amount) && qrAmountDiffers(code, p.Payment.Amount) {
		c.add(CodeValorInvalido, "O valor enviado não é válido para o QR Code informado.")
	}
	if !txOK || code.Dynamic() {
		return
	}
	tx := p.TransactionIdentification
	switch {
	case code.TxID != "" && (tx == nil || *tx != code.TxID):
		c.business(f("transactionIdentification"), "deve ser o TxId do QR Code estático ("+code.TxID+")")
	case code.TxID == "" && tx != nil:
		c.business(f("transactionIdentification"), "não deve ser informado: o QR Code estático não tem TxId")
	}
}

// endToEndTime is the date and time an endToEndId carries (yyyyMMddHHmm,
// UTC); ok is false for a date that does not exist (20250230…).
func endToEndTime(e2e string) (time.Time, bool) {
	if len(e2e) != 32 {
		return time.Time{}, false
	}
	t, err := time.Parse("200601021504", e2e[9:21])
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// consentDates are the dates the consent's payments settle on, in order: one
// for an immediate or single payment, one per occurrence of a schedule. A
// monthly day the month lacks (29–31) moves to the next day, the first of the
// following month, as the specification's recurring-payment rule says.
func consentDates(p *Payment) []time.Time {
	parse := func(s string) time.Time {
		m := datePattern.FindStringSubmatch(s)
		if m == nil {
			return time.Time{}
		}
		y, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		d, _ := strconv.Atoi(m[3])
		return time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC)
	}
	qty := func(q *int) int {
		if q == nil {
			return 0
		}
		return *q
	}
	sc := p.Schedule
	var out []time.Time
	switch {
	case sc == nil:
		out = append(out, parse(p.Date))
	case sc.Single != nil:
		out = append(out, parse(sc.Single.Date))
	case sc.Daily != nil:
		start := parse(sc.Daily.StartDate)
		for i := range qty(sc.Daily.Quantity) {
			out = append(out, start.AddDate(0, 0, i))
		}
	case sc.Weekly != nil:
		start := parse(sc.Weekly.StartDate)
		want := time.Weekday((slices.Index(daysOfWeek, sc.Weekly.DayOfWeek) + 1) % 7)
		first := start.AddDate(0, 0, (int(want)-int(start.Weekday())+7)%7)
		for i := range qty(sc.Weekly.Quantity) {
			out = append(out, first.AddDate(0, 0, 7*i))
		}
	case sc.Monthly != nil:
		start := parse(sc.Monthly.StartDate)
		day := 1
		if sc.Monthly.DayOfMonth != nil {
			day = *sc.Monthly.DayOfMonth
		}
		for m := 0; len(out) < qty(sc.Monthly.Quantity) && m < 12*3; m++ {
			first := time.Date(start.Year(), start.Month()+time.Month(m), 1, 0, 0, 0, 0, time.UTC)
			d := first.AddDate(0, 0, day-1)
			if d.Month() != first.Month() { // the month lacks the day: the first of the next
				d = first.AddDate(0, 1, 0)
			}
			if !d.Before(start) {
				out = append(out, d)
			}
		}
	case sc.Custom != nil:
		for _, s := range sc.Custom.Dates {
			out = append(out, parse(s))
		}
		slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	}
	return out
}

// matchConsent checks the items against the consent they consume, at now:
// their number against the consent's dates, each one's amount, currency,
// creditor account, localInstrument, proxy, qrCode and ibgeTownCode against
// the consent (PAGAMENTO_DIVERGENTE_CONSENTIMENTO), and each endToEndId's
// date: within EndToEndTolerance of now for an immediate payment, the
// scheduled date at 15:00 UTC for a scheduled one (PARAMETRO_INVALIDO). It
// returns the date each item settles on ("" for immediate) or a 422.
func matchConsent(c *Consent, items []PixPaymentRequest, now time.Time) ([]string, *ValidationError) {
	pay := c.Request.Payment
	chk := &checker{}
	divergent := func(what string) {
		chk.add(CodePagamentoDivergente, "Dados do pagamento divergentes dos dados do consentimento: %s.", what)
	}
	dates := consentDates(pay)
	if len(items) != len(dates) {
		divergent(fmt.Sprintf("o consentimento prevê %d pagamento(s), a requisição traz %d", len(dates), len(items)))
		return nil, chk.result()
	}
	det := pay.Details
	eq := func(a, b *string) bool {
		return (a == nil || *a == "") == (b == nil || *b == "") && (a == nil || b == nil || *a == *b)
	}
	for i := range items {
		p := &items[i]
		f := func(name string) string { return fmt.Sprintf("data[%d].%s", i, name) }
		if p.ConsentID != "" && p.ConsentID != c.ID {
			divergent(f("consentId") + " não é o consentimento do token")
		}
		if p.Payment.Amount != pay.Amount {
			divergent(f("payment.amount"))
		}
		if p.Payment.Currency != pay.Currency {
			divergent(f("payment.currency"))
		}
		if det != nil && (det.CreditorAccount == nil || !sameAccount(*det.CreditorAccount, *p.CreditorAccount)) {
			divergent(f("creditorAccount"))
		}
		if det != nil && p.LocalInstrument != det.LocalInstrument {
			divergent(f("localInstrument"))
		} else if det != nil {
			if !eq(p.Proxy, det.Proxy) {
				divergent(f("proxy"))
			}
			if !eq(p.QRCode, det.QRCode) {
				divergent(f("qrCode"))
			}
		}
		if p.IBGETownCode != pay.IBGETownCode {
			divergent(f("ibgeTownCode"))
		}
	}
	if v := chk.result(); v != nil {
		return nil, v
	}
	// endToEndId dates: each item takes one of the consent's dates.
	out := make([]string, len(items))
	scheduled := pay.Schedule != nil
	used := make([]bool, len(dates))
	for i := range items {
		at, _ := endToEndTime(items[i].EndToEndID)
		if !scheduled {
			if at.Before(now.Add(-EndToEndTolerance)) || at.After(now.Add(EndToEndTolerance)) {
				chk.add(CodeParametroInvalido, "Parâmetro data[%d].endToEndId não obedece as regras de formatação esperadas: data e hora a mais de %d horas da submissão.",
					i, int(EndToEndTolerance.Hours()))
			}
			continue
		}
		day := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
		j := slices.IndexFunc(dates, func(d time.Time) bool { return d.Equal(day) })
		switch {
		case j < 0 || used[j]:
			chk.add(CodeParametroInvalido, "Parâmetro data[%d].endToEndId não obedece as regras de formatação esperadas: a data não é uma das datas agendadas no consentimento.", i)
		case at.Hour() != endToEndScheduledAt || at.Minute() != 0:
			chk.add(CodeParametroInvalido, "Parâmetro data[%d].endToEndId não obedece as regras de formatação esperadas: um Pix agendado usa o horário fixo 15:00 UTC.", i)
		default:
			used[j] = true
			out[i] = day.Format(time.DateOnly)
		}
	}
	if v := chk.result(); v != nil {
		return nil, v
	}
	return out, nil
}

// sameAccount compares accounts as the SPI does: issuer without leading zeros.
func sameAccount(a, b Account) bool {
	trim := func(s string) string { return strings.TrimLeft(s, "0") }
	return a.ISPB == b.ISPB && trim(a.Issuer) == trim(b.Issuer) && a.Number == b.Number && a.AccountType == b.AccountType
}

// amountCents converts a validated amount ("100000.12") to integer cents.
func amountCents(amount string) (int64, error) {
	whole, frac, ok := strings.Cut(amount, ".")
	if !ok || len(frac) != 2 {
		return 0, fmt.Errorf("payments: amount %q", amount)
	}
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("payments: amount %q: %w", amount, err)
	}
	return n, nil
}

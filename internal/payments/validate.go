package payments

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/ofb"
)

// Error codes of POST /consents (422ResponseErrorCreateConsent) and the 400s.
const (
	CodeFormaPagamentoInvalida   = "FORMA_PAGAMENTO_INVALIDA"
	CodeDataPagamentoInvalida    = "DATA_PAGAMENTO_INVALIDA"
	CodeDetalhePagamentoInvalido = "DETALHE_PAGAMENTO_INVALIDO"
	CodeParametroNaoInformado    = "PARAMETRO_NAO_INFORMADO"
	CodeParametroInvalido        = "PARAMETRO_INVALIDO"
	CodeErroIdempotencia         = "ERRO_IDEMPOTENCIA"
	CodeNaoInformado             = "NAO_INFORMADO"
)

// titles are the specification's titles per code.
var titles = map[string]string{
	CodeFormaPagamentoInvalida:   "Forma de pagamento inválida.",
	CodeDataPagamentoInvalida:    "Data de pagamento inválida.",
	CodeDetalhePagamentoInvalido: "Detalhe do pagamento inválido.",
	CodeParametroNaoInformado:    "Parâmetro não informado.",
	CodeParametroInvalido:        "Parâmetro inválido.",
	CodeErroIdempotencia:         "Erro idempotência.",
	CodeNaoInformado:             "Não informado.",
}

// Problem is one error entry of a response.
type Problem struct {
	Code   string
	Detail string
}

// ValidationError is a refused request: its status (400 or 422) and up to
// maxProblems problems.
type ValidationError struct {
	Status   int
	Problems []Problem
}

// maxProblems is the specification's maxItems for 422 errors on POST /consents.
const maxProblems = 3

func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Code + ": " + p.Detail)
	}
	return b.String()
}

// Has reports whether the error lists code.
func (e *ValidationError) Has(code string) bool {
	return slices.ContainsFunc(e.Problems, func(p Problem) bool { return p.Code == code })
}

// Patterns of the specification (payments 4.0.0).
var (
	cpfPattern          = regexp.MustCompile(`^\d{11}$`)
	cnpjPattern         = regexp.MustCompile(`^\d{14}$`)
	relCPFPattern       = regexp.MustCompile(`^[A-Z]{3}$`)
	relCNPJPattern      = regexp.MustCompile(`^[A-Z]{4}$`)
	cpfCnpjPattern      = regexp.MustCompile(`^\d{11}$|^\d{14}$`)
	namePattern         = regexp.MustCompile(`^([A-Za-zÀ-ÖØ-öø-ÿ,.@:&*+_<>()!?/\\$%\d' -]+)$`)
	datePattern         = regexp.MustCompile(`^(\d{4})-(1[0-2]|0?[1-9])-(3[01]|[12][0-9]|0?[1-9])$`)
	currencyPattern     = regexp.MustCompile(`^([A-Z]{3})$`)
	amountPattern       = regexp.MustCompile(`^((\d{1,16}\.\d{2}))$`)
	ibgePattern         = regexp.MustCompile(`^\d{7}$`)
	ispbPattern         = regexp.MustCompile(`^[0-9]{8}$`)
	issuerPattern       = regexp.MustCompile(`^[0-9]{1,4}$`)
	accountNumberRegexp = regexp.MustCompile(`^[0-9]{1,20}$`)
	// ConsentIDPattern is the specification's consentId pattern.
	ConsentIDPattern = regexp.MustCompile(`^urn:[a-zA-Z0-9][a-zA-Z0-9\-]{0,31}:[a-zA-Z0-9()+,\-.:=@;$_!*'%\/?#]+$`)
)

var (
	personTypes      = []string{"PESSOA_NATURAL", "PESSOA_JURIDICA"}
	localInstruments = []string{"MANU", "DICT", "QRDN", "QRES", "INIC"}
	accountTypes     = []string{"CACC", "SVGS", "TRAN"}
	daysOfWeek       = []string{"SEGUNDA_FEIRA", "TERCA_FEIRA", "QUARTA_FEIRA", "QUINTA_FEIRA", "SEXTA_FEIRA", "SABADO", "DOMINGO"}
)

// brasilia is the time zone payment dates are reckoned in (UTC−3, no DST since 2019).
var brasilia = time.FixedZone("BRT", -3*60*60)

// MaxScheduleDays is the farthest a scheduled payment may be (D+730).
const MaxScheduleDays = 730

// MaxPayments is the most payments one consent may allow.
const MaxPayments = 60

type checker struct {
	problems []Problem
}

func (c *checker) add(code, format string, args ...any) {
	c.problems = append(c.problems, Problem{Code: code, Detail: fmt.Sprintf(format, args...)})
}

func (c *checker) missing(field string) {
	c.add(CodeParametroNaoInformado, "Parâmetro %s obrigatório não informado.", field)
}

func (c *checker) invalid(field string) {
	c.add(CodeParametroInvalido, "Parâmetro %s não obedece as regras de formatação esperadas.", field)
}

func (c *checker) business(field, why string) {
	c.add(CodeDetalhePagamentoInvalido, "Parâmetro %s não obedece às regras de negócio: %s.", field, why)
}

// required checks a required string against its pattern (nil: any) and maxLen (0: none).
func (c *checker) required(field, v string, re *regexp.Regexp, maxLen int) bool {
	if v == "" {
		c.missing(field)
		return false
	}
	return c.optional(field, v, re, maxLen)
}

func (c *checker) optional(field, v string, re *regexp.Regexp, maxLen int) bool {
	if v == "" {
		return true
	}
	if (re != nil && !re.MatchString(v)) || (maxLen > 0 && len([]rune(v)) > maxLen) {
		c.invalid(field)
		return false
	}
	return true
}

func (c *checker) enum(field, v string, allowed []string) bool {
	if v == "" {
		c.missing(field)
		return false
	}
	if !slices.Contains(allowed, v) {
		c.invalid(field)
		return false
	}
	return true
}

// Validate checks a consent request against the specification's formats and
// business rules at now. It returns nil or a 422 *ValidationError with at most
// three problems, the first found first.
func (r *ConsentRequest) Validate(now time.Time) *ValidationError {
	c := &checker{}
	r.validate(c, now)
	if len(c.problems) == 0 {
		return nil
	}
	if len(c.problems) > maxProblems {
		c.problems = c.problems[:maxProblems]
	}
	return &ValidationError{Status: 422, Problems: c.problems}
}

func (r *ConsentRequest) validate(c *checker, now time.Time) {
	// loggedUser
	switch {
	case r.LoggedUser == nil:
		c.missing("loggedUser")
	case r.LoggedUser.Document == nil:
		c.missing("loggedUser.document")
	default:
		d := r.LoggedUser.Document
		if c.required("loggedUser.document.identification", d.Identification, cpfPattern, 11) && !ofb.ValidCPF(d.Identification) {
			c.invalid("loggedUser.document.identification")
		}
		if c.required("loggedUser.document.rel", d.Rel, relCPFPattern, 3) && d.Rel != "CPF" {
			c.invalid("loggedUser.document.rel")
		}
	}
	// businessEntity
	if b := r.BusinessEntity; b != nil {
		if b.Document == nil {
			c.missing("businessEntity.document")
		} else {
			d := b.Document
			if c.required("businessEntity.document.identification", d.Identification, cnpjPattern, 14) && !ofb.ValidCNPJ(d.Identification) {
				c.invalid("businessEntity.document.identification")
			}
			if c.required("businessEntity.document.rel", d.Rel, relCNPJPattern, 4) && d.Rel != "CNPJ" {
				c.invalid("businessEntity.document.rel")
			}
		}
	}
	// creditor
	if cr := r.Creditor; cr == nil {
		c.missing("creditor")
	} else {
		okType := c.enum("creditor.personType", cr.PersonType, personTypes)
		if c.required("creditor.cpfCnpj", cr.CPFCNPJ, cpfCnpjPattern, 14) {
			switch {
			case len(cr.CPFCNPJ) == 11 && !ofb.ValidCPF(cr.CPFCNPJ), len(cr.CPFCNPJ) == 14 && !ofb.ValidCNPJ(cr.CPFCNPJ):
				c.invalid("creditor.cpfCnpj")
			case okType && cr.PersonType == "PESSOA_NATURAL" && len(cr.CPFCNPJ) != 11:
				c.business("creditor.cpfCnpj", "pessoa natural deve ser identificada por CPF")
			case okType && cr.PersonType == "PESSOA_JURIDICA" && len(cr.CPFCNPJ) != 14:
				c.business("creditor.cpfCnpj", "pessoa jurídica deve ser identificada por CNPJ")
			}
		}
		c.required("creditor.name", cr.Name, namePattern, 120)
	}
	// payment
	p := r.Payment
	if p == nil {
		c.missing("payment")
	} else {
		p.validate(c, now)
	}
	if r.DebtorAccount != nil {
		validateAccount(c, "debtorAccount", r.DebtorAccount)
	}
}

func (p *Payment) validate(c *checker, now time.Time) {
	if p.Type == "" {
		c.missing("payment.type")
	} else if p.Type != "PIX" {
		c.add(CodeFormaPagamentoInvalida, "Forma de pagamento %s não suportada.", p.Type)
	}
	if c.required("payment.currency", p.Currency, currencyPattern, 3) && p.Currency != "BRL" {
		c.business("payment.currency", "a moeda deve ser BRL")
	}
	if c.required("payment.amount", p.Amount, amountPattern, 19) && strings.Trim(p.Amount, "0.") == "" {
		c.business("payment.amount", "o valor deve ser maior que zero")
	}
	c.optional("payment.ibgeTownCode", p.IBGETownCode, ibgePattern, 7)

	today := civilDate(now)
	switch {
	case p.Date != "" && p.Schedule != nil:
		c.add(CodeParametroInvalido, "Parâmetros payment.date e payment.schedule são mutuamente excludentes.")
	case p.Date == "" && p.Schedule == nil:
		c.add(CodeParametroNaoInformado, "Parâmetro payment.date ou payment.schedule obrigatório não informado.")
	case p.Date != "":
		if d, ok := parseDate(c, "payment.date", p.Date); ok && !d.Equal(today) {
			c.add(CodeDataPagamentoInvalida, "Data de pagamento inválida para a forma de pagamento selecionada: pagamento único deve ser na data de hoje (%s); para datas futuras use schedule.single.", today.Format(time.DateOnly))
		}
	default:
		p.Schedule.validate(c, today)
	}

	if p.Details == nil {
		c.missing("payment.details")
		return
	}
	d := p.Details
	if !c.enum("payment.details.localInstrument", d.LocalInstrument, localInstruments) {
		// Rules below depend on it.
	} else {
		li := d.LocalInstrument
		if p.Schedule != nil && p.Schedule.Single == nil && li != "MANU" && li != "DICT" && li != "QRES" {
			c.add(CodeFormaPagamentoInvalida, "Forma de pagamento (localInstrument - %s) não suportada para agendamento recorrente; use MANU, DICT ou QRES.", li)
		}
		switch li {
		case "MANU":
			if d.Proxy != nil {
				c.business("payment.details.proxy", "não deve ser informado para localInstrument MANU")
			}
			if d.QRCode != nil {
				c.business("payment.details.qrCode", "não deve ser informado para localInstrument MANU")
			}
		case "DICT":
			if d.Proxy == nil || *d.Proxy == "" {
				c.business("payment.details.proxy", "obrigatório para localInstrument DICT")
			}
			if d.QRCode != nil {
				c.business("payment.details.qrCode", "não deve ser informado para localInstrument DICT")
			}
		case "QRDN", "QRES":
			if d.Proxy == nil || *d.Proxy == "" {
				c.business("payment.details.proxy", "obrigatório para localInstrument "+li)
			}
			if d.QRCode == nil || *d.QRCode == "" {
				c.business("payment.details.qrCode", "obrigatório para localInstrument "+li)
			} else if len(*d.QRCode) <= 512 {
				code := checkQRCode(c, *d.QRCode, qrFacts{instrument: li, qrField: "payment.details.qrCode", proxyField: "payment.details.proxy", proxy: d.Proxy})
				// The amount must be the one the code fixes (422 on a
				// divergence, the payment.amount description says).
				if amountPattern.MatchString(p.Amount) && qrAmountDiffers(code, p.Amount) {
					c.business("payment.amount", qrAmountDetail(code))
				}
			}
		case "INIC":
			if d.Proxy == nil || *d.Proxy == "" {
				c.business("payment.details.proxy", "obrigatório para localInstrument INIC")
			}
		}
	}
	if d.Proxy != nil && len([]rune(*d.Proxy)) > 77 {
		c.invalid("payment.details.proxy")
	}
	if d.QRCode != nil && len(*d.QRCode) > 512 {
		c.invalid("payment.details.qrCode")
	}
	if d.CreditorAccount == nil {
		c.missing("payment.details.creditorAccount")
	} else {
		validateAccount(c, "payment.details.creditorAccount", d.CreditorAccount)
	}
}

func validateAccount(c *checker, field string, a *Account) {
	c.required(field+".ispb", a.ISPB, ispbPattern, 8)
	c.optional(field+".issuer", a.Issuer, issuerPattern, 4)
	c.required(field+".number", a.Number, accountNumberRegexp, 20)
	if c.enum(field+".accountType", a.AccountType, accountTypes) && a.Issuer == "" && a.AccountType != "TRAN" {
		c.business(field+".issuer", "obrigatório para contas do tipo "+a.AccountType)
	}
}

func (s *Schedule) validate(c *checker, today time.Time) {
	n := 0
	for _, set := range []bool{s.Single != nil, s.Daily != nil, s.Weekly != nil, s.Monthly != nil, s.Custom != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		c.add(CodeParametroInvalido, "Parâmetro payment.schedule deve conter exatamente um de single, daily, weekly, monthly ou custom.")
		return
	}
	first, last := today.AddDate(0, 0, 1), today.AddDate(0, 0, MaxScheduleDays)
	inWindow := func(field string, d time.Time) bool {
		if d.Before(first) || d.After(last) {
			c.add(CodeDataPagamentoInvalida, "Data de pagamento inválida para a forma de pagamento selecionada: %s deve estar entre D+1 (%s) e D+%d (%s).",
				field, first.Format(time.DateOnly), MaxScheduleDays, last.Format(time.DateOnly))
			return false
		}
		return true
	}
	quantity := func(field string, q *int, max int) (int, bool) {
		switch {
		case q == nil:
			c.missing(field)
			return 0, false
		case *q > MaxPayments || *q > max:
			c.add(CodeParametroInvalido, "Quantidade permitida de pagamentos excedida.")
			return 0, false
		case *q < 2:
			c.invalid(field)
			return 0, false
		}
		return *q, true
	}
	switch {
	case s.Single != nil:
		if c.required("payment.schedule.single.date", s.Single.Date, nil, 0) {
			if d, ok := parseDate(c, "payment.schedule.single.date", s.Single.Date); ok {
				inWindow("payment.schedule.single.date", d)
			}
		}
	case s.Daily != nil:
		start, okStart := requiredDate(c, "payment.schedule.daily.startDate", s.Daily.StartDate)
		q, okQ := quantity("payment.schedule.daily.quantity", s.Daily.Quantity, 60)
		if okStart && inWindow("payment.schedule.daily.startDate", start) && okQ {
			inWindow("payment.schedule.daily (última data)", start.AddDate(0, 0, q-1))
		}
	case s.Weekly != nil:
		okDay := c.enum("payment.schedule.weekly.dayOfWeek", s.Weekly.DayOfWeek, daysOfWeek)
		start, okStart := requiredDate(c, "payment.schedule.weekly.startDate", s.Weekly.StartDate)
		q, okQ := quantity("payment.schedule.weekly.quantity", s.Weekly.Quantity, 60)
		if okDay && okStart && inWindow("payment.schedule.weekly.startDate", start) && okQ {
			want := time.Weekday((slices.Index(daysOfWeek, s.Weekly.DayOfWeek) + 1) % 7)
			firstPay := start.AddDate(0, 0, (int(want)-int(start.Weekday())+7)%7)
			inWindow("payment.schedule.weekly (última data)", firstPay.AddDate(0, 0, 7*(q-1)))
		}
	case s.Monthly != nil:
		okDay := true
		switch dm := s.Monthly.DayOfMonth; {
		case dm == nil:
			c.missing("payment.schedule.monthly.dayOfMonth")
			okDay = false
		case *dm < 1 || *dm > 31:
			c.invalid("payment.schedule.monthly.dayOfMonth")
			okDay = false
		}
		start, okStart := requiredDate(c, "payment.schedule.monthly.startDate", s.Monthly.StartDate)
		q, okQ := quantity("payment.schedule.monthly.quantity", s.Monthly.Quantity, 24)
		if okDay && okStart && inWindow("payment.schedule.monthly.startDate", start) && okQ {
			// The last payment is at most q months after the start.
			inWindow("payment.schedule.monthly (última data)", start.AddDate(0, q-1, 0))
		}
	case s.Custom != nil:
		cu := s.Custom
		if cu.AdditionalInformation == nil {
			c.missing("payment.schedule.custom.additionalInformation")
		} else if len([]rune(*cu.AdditionalInformation)) > 255 {
			c.invalid("payment.schedule.custom.additionalInformation")
		}
		switch {
		case len(cu.Dates) == 0:
			c.missing("payment.schedule.custom.dates")
			return
		case len(cu.Dates) > MaxPayments:
			c.add(CodeParametroInvalido, "Quantidade permitida de pagamentos excedida.")
			return
		case len(cu.Dates) < 2:
			c.invalid("payment.schedule.custom.dates")
			return
		}
		seen := map[time.Time]bool{}
		for i, raw := range cu.Dates {
			field := fmt.Sprintf("payment.schedule.custom.dates[%d]", i)
			d, ok := parseDate(c, field, raw)
			if !ok {
				return
			}
			if seen[d] {
				c.add(CodeParametroInvalido, "Parâmetro payment.schedule.custom.dates contém datas repetidas.")
				return
			}
			seen[d] = true
			if !inWindow(field, d) {
				return
			}
		}
	}
}

func requiredDate(c *checker, field, v string) (time.Time, bool) {
	if v == "" {
		c.missing(field)
		return time.Time{}, false
	}
	return parseDate(c, field, v)
}

// parseDate parses a specification date (month and day may lack their zero).
func parseDate(c *checker, field, v string) (time.Time, bool) {
	m := datePattern.FindStringSubmatch(v)
	if m == nil {
		c.invalid(field)
		return time.Time{}, false
	}
	var y, mo, d int
	fmt.Sscanf(m[1]+" "+m[2]+" "+m[3], "%d %d %d", &y, &mo, &d)
	t := time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d { // 2025-02-30 and the like
		c.invalid(field)
		return time.Time{}, false
	}
	return t, true
}

// civilDate is now's date in Brasília, as midnight UTC of that date.
func civilDate(now time.Time) time.Time {
	y, m, d := now.In(brasilia).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

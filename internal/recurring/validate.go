package recurring

import (
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/ponte-ofb/ponte/internal/ofb"
	"github.com/ponte-ofb/ponte/internal/payments"
)

// Error codes of POST /recurring-consents (ResponseErrorCreateConsent) and
// PATCH /recurring-consents/{id} (422ResponseErrorRecurringConsents) that
// payments does not already name.
const (
	CodeFuncionalidadeNaoHabilitada         = "FUNCIONALIDADE_NAO_HABILITADA"
	CodeConsentimentoNaoPermiteCancelamento = "CONSENTIMENTO_NAO_PERMITE_CANCELAMENTO"
	CodeCampoNaoPermitido                   = "CAMPO_NAO_PERMITIDO"
	CodePermissaoInsuficiente               = "PERMISSAO_INSUFICIENTE"
	CodeDetalheEdicaoInvalido               = "DETALHE_EDICAO_INVALIDO"
	CodeFaltamSinaisObrigatoriosPlataforma  = "FALTAM_SINAIS_OBRIGATORIOS_PLATAFORMA"
)

// titles are the specification's titles per code.
var titles = map[string]string{
	payments.CodeDataPagamentoInvalida:      "Data de pagamento inválida.",
	payments.CodeDetalhePagamentoInvalido:   "Detalhe do pagamento inválido.",
	payments.CodeParametroNaoInformado:      "Parâmetro não informado.",
	payments.CodeParametroInvalido:          "Parâmetro inválido.",
	payments.CodeErroIdempotencia:           "Erro idempotência.",
	payments.CodeNaoInformado:               "Não informado.",
	CodeFuncionalidadeNaoHabilitada:         "A detentora de conta não oferece o serviço nessa modalidade.",
	CodeConsentimentoNaoPermiteCancelamento: "O status do consentimento não permite a realização do cancelamento.",
	CodeCampoNaoPermitido:                   "O(s) campo(s) solicitado(s) para edição não podem ser editados.",
	CodePermissaoInsuficiente:               "Consentimento possui múltiplas alçadas aprovadoras e não permite a edição pelo usuário atual.",
	CodeDetalheEdicaoInvalido:               "A tentativa de edição do consentimento não respeitou as regras de negócio descritas nos campos.",
	CodeFaltamSinaisObrigatoriosPlataforma:  "Os sinais obrigatórios para a plataforma do usuário não foram enviados em sua totalidade.",
	payments.CodeBadSignature:               "Assinatura inválida.",
	payments.CodeInvalidClient:              "Cliente inválido.",
}

// maxProblems is the specification's maxItems for 422 errors.
const maxProblems = 3

// Patterns of the specification (automatic-payments 2.0.0).
var (
	cpfPattern      = regexp.MustCompile(`^\d{11}$`)
	cnpjPattern     = regexp.MustCompile(`^\d{14}$`)
	relCPFPattern   = regexp.MustCompile(`^[A-Z]{3}$`)
	relCNPJPattern  = regexp.MustCompile(`^[A-Z]{4}$`)
	cpfCnpjPattern  = regexp.MustCompile(`^\d{11}$|^\d{14}$`)
	namePattern     = regexp.MustCompile(`^([A-Za-zÀ-ÖØ-öø-ÿ,.@:&*+_<>()!?/\\$%\d' -]+)$`)
	amountPattern   = regexp.MustCompile(`^((\d{1,16}\.\d{2}))$`)
	dateTimePattern = regexp.MustCompile(`^(\d{4})-(1[0-2]|0?[1-9])-(3[01]|[12][0-9]|0?[1-9])T(?:[01]\d|2[0123]):(?:[012345]\d):(?:[012345]\d)Z$`)
	ispbPattern     = regexp.MustCompile(`^[0-9]{8}$`)
	issuerPattern   = regexp.MustCompile(`^[0-9]{1,4}$`)
	numberPattern   = regexp.MustCompile(`^[0-9]{1,20}$`)
	// ConsentIDPattern is the specification's recurringConsentId pattern.
	ConsentIDPattern = regexp.MustCompile(`^urn:[a-zA-Z0-9][a-zA-Z0-9\-]{0,31}:[a-zA-Z0-9()+,\-.:=@;$_!*'%\/?#]+$`)
)

var (
	personTypes  = []string{"PESSOA_NATURAL", "PESSOA_JURIDICA"}
	accountTypes = []string{"CACC", "SVGS", "TRAN"}
)

type checker struct {
	problems []payments.Problem
}

func (c *checker) add(code, format string, args ...any) {
	c.problems = append(c.problems, payments.Problem{Code: code, Detail: fmt.Sprintf(format, args...)})
}

func (c *checker) missing(field string) {
	c.add(payments.CodeParametroNaoInformado, "Parâmetro %s obrigatório não informado.", field)
}

func (c *checker) invalid(field string) {
	c.add(payments.CodeParametroInvalido, "Parâmetro %s não obedece as regras de formatação esperadas.", field)
}

func (c *checker) business(field, why string) {
	c.add(payments.CodeDetalhePagamentoInvalido, "Parâmetro %s não obedece às regras de negócio: %s.", field, why)
}

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

func (c *checker) result() *payments.ValidationError {
	if len(c.problems) == 0 {
		return nil
	}
	if len(c.problems) > maxProblems {
		c.problems = c.problems[:maxProblems]
	}
	return &payments.ValidationError{Status: http.StatusUnprocessableEntity, Problems: c.problems}
}

// Validate checks a recurring-consent request against the specification's
// formats and the sweeping rules at now. It returns nil or a 422
// *payments.ValidationError with at most three problems, the first found first.
func (r *ConsentRequest) Validate(now time.Time) *payments.ValidationError {
	c := &checker{}
	r.validate(c, now)
	return c.result()
}

func (r *ConsentRequest) validate(c *checker, now time.Time) {
	// Products first: a product Ponte does not offer is the one answer.
	rc := r.RecurringConfiguration
	switch {
	case rc == nil:
		c.missing("recurringConfiguration")
	default:
		n := 0
		for _, set := range []bool{rc.Sweeping != nil, len(rc.Automatic) > 0, len(rc.Vrp) > 0} {
			if set {
				n++
			}
		}
		switch {
		case n == 0:
			c.missing("recurringConfiguration.sweeping")
		case n > 1:
			c.add(payments.CodeParametroInvalido, "Parâmetro recurringConfiguration deve conter exatamente um de automatic, sweeping ou vrp.")
		case rc.Sweeping == nil:
			c.add(CodeFuncionalidadeNaoHabilitada, "A detentora de conta não oferece o serviço nessa modalidade: apenas Transferências Inteligentes (recurringConfiguration.sweeping).")
		}
	}
	if len(c.problems) > 0 {
		return
	}

	// loggedUser
	cpf := ""
	switch {
	case r.LoggedUser == nil:
		c.missing("loggedUser")
	case r.LoggedUser.Document == nil:
		c.missing("loggedUser.document")
	default:
		d := r.LoggedUser.Document
		if c.required("loggedUser.document.identification", d.Identification, cpfPattern, 11) {
			if ofb.ValidCPF(d.Identification) {
				cpf = d.Identification
			} else {
				c.invalid("loggedUser.document.identification")
			}
		}
		if c.required("loggedUser.document.rel", d.Rel, relCPFPattern, 3) && d.Rel != "CPF" {
			c.invalid("loggedUser.document.rel")
		}
	}
	// businessEntity
	cnpj, pj := "", r.BusinessEntity != nil
	if b := r.BusinessEntity; b != nil {
		if b.Document == nil {
			c.missing("businessEntity.document")
		} else {
			d := b.Document
			if c.required("businessEntity.document.identification", d.Identification, cnpjPattern, 14) {
				if ofb.ValidCNPJ(d.Identification) {
					cnpj = d.Identification
				} else {
					c.invalid("businessEntity.document.identification")
				}
			}
			if c.required("businessEntity.document.rel", d.Rel, relCNPJPattern, 4) && d.Rel != "CNPJ" {
				c.invalid("businessEntity.document.rel")
			}
		}
	}
	r.validateCreditors(c, cpf, cnpj, pj)

	// expirationDateTime
	var expires time.Time
	if r.ExpirationDateTime != "" {
		if t, ok := parseDateTime(c, "expirationDateTime", r.ExpirationDateTime); ok {
			if !t.After(now) {
				c.business("expirationDateTime", "deve ser posterior à data e hora de criação do consentimento")
			} else {
				expires = t
			}
		}
	}
	if r.AdditionalInformation != nil && len([]rune(*r.AdditionalInformation)) > 140 {
		c.invalid("additionalInformation")
	}
	if r.DebtorAccount != nil {
		validateAccount(c, "debtorAccount", r.DebtorAccount)
	}
	r.RecurringConfiguration.Sweeping.validate(c, now, expires)
}

func (r *ConsentRequest) validateCreditors(c *checker, cpf, cnpj string, pj bool) {
	if len(r.Creditors) == 0 {
		c.missing("creditors")
		return
	}
	if !pj && len(r.Creditors) > 1 {
		c.business("creditors", "para usuário pessoa natural, Transferências Inteligentes admitem um único recebedor")
		return
	}
	for i, cr := range r.Creditors {
		field := fmt.Sprintf("creditors[%d]", i)
		if cr == nil {
			c.missing(field)
			continue
		}
		okType := c.enum(field+".personType", cr.PersonType, personTypes)
		if c.required(field+".cpfCnpj", cr.CPFCNPJ, cpfCnpjPattern, 14) {
			doc := cr.CPFCNPJ
			switch {
			case len(doc) == 11 && !ofb.ValidCPF(doc), len(doc) == 14 && !ofb.ValidCNPJ(doc):
				c.invalid(field + ".cpfCnpj")
			case okType && cr.PersonType == "PESSOA_NATURAL" && len(doc) != 11:
				c.business(field+".cpfCnpj", "pessoa natural deve ser identificada por CPF")
			case okType && cr.PersonType == "PESSOA_JURIDICA" && len(doc) != 14:
				c.business(field+".cpfCnpj", "pessoa jurídica deve ser identificada por CNPJ")
			case !pj && cpf != "" && doc != cpf:
				c.business(field+".cpfCnpj", "em Transferências Inteligentes o CPF do recebedor deve ser o do usuário logado (loggedUser)")
			case pj && cnpj != "" && (len(doc) != 14 || doc[:8] != cnpj[:8]):
				c.business(field+".cpfCnpj", "em Transferências Inteligentes o CNPJ do recebedor deve ter a mesma raiz do CNPJ de businessEntity")
			}
		}
		c.required(field+".name", cr.Name, namePattern, 120)
	}
}

func validateAccount(c *checker, field string, a *payments.Account) {
	c.required(field+".ispb", a.ISPB, ispbPattern, 8)
	c.optional(field+".issuer", a.Issuer, issuerPattern, 4)
	c.required(field+".number", a.Number, numberPattern, 20)
	if c.enum(field+".accountType", a.AccountType, accountTypes) && a.Issuer == "" && a.AccountType != "TRAN" {
		c.business(field+".issuer", "obrigatório para contas do tipo "+a.AccountType)
	}
}

// amount checks an optional amount's format and that it is above zero, and
// returns it as a rational (nil when absent or invalid).
func amount(c *checker, field, v string) *big.Rat {
	if v == "" || !c.optional(field, v, amountPattern, 19) {
		return nil
	}
	r, ok := new(big.Rat).SetString(v)
	if !ok {
		c.invalid(field)
		return nil
	}
	if r.Sign() <= 0 {
		c.business(field, "o valor deve ser maior que zero")
		return nil
	}
	return r
}

func (s *Sweeping) validate(c *checker, now, expires time.Time) {
	total := amount(c, "recurringConfiguration.sweeping.totalAllowedAmount", s.TotalAllowedAmount)
	perTx := amount(c, "recurringConfiguration.sweeping.transactionLimit", s.TransactionLimit)
	if total != nil && perTx != nil && perTx.Cmp(total) > 0 {
		c.business("recurringConfiguration.sweeping.transactionLimit", "não pode ser maior que totalAllowedAmount")
	}
	if p := s.PeriodicLimits; p != nil {
		type period struct {
			name  string
			limit *Limit
			value *big.Rat
		}
		periods := []*period{{name: "day", limit: p.Day}, {name: "week", limit: p.Week}, {name: "month", limit: p.Month}, {name: "year", limit: p.Year}}
		for _, pd := range periods {
			if pd.limit == nil {
				continue
			}
			field := "recurringConfiguration.sweeping.periodicLimits." + pd.name
			if pd.limit.QuantityLimit == nil && pd.limit.TransactionLimit == "" {
				c.add(payments.CodeParametroNaoInformado, "Parâmetro %s.quantityLimit ou %s.transactionLimit obrigatório não informado.", field, field)
				continue
			}
			if q := pd.limit.QuantityLimit; q != nil && *q < 1 {
				c.invalid(field + ".quantityLimit")
			}
			pd.value = amount(c, field+".transactionLimit", pd.limit.TransactionLimit)
			if pd.value != nil && total != nil && pd.value.Cmp(total) > 0 {
				c.business(field+".transactionLimit", "não pode ser maior que totalAllowedAmount")
			}
		}
		// A shorter period cannot allow more than a longer one.
		for i, short := range periods {
			for _, long := range periods[i+1:] {
				if short.limit == nil || long.limit == nil {
					continue
				}
				if short.value != nil && long.value != nil && short.value.Cmp(long.value) > 0 {
					c.business("recurringConfiguration.sweeping.periodicLimits."+short.name+".transactionLimit",
						"não pode ser maior que o limite de "+long.name)
				}
				if sq, lq := short.limit.QuantityLimit, long.limit.QuantityLimit; sq != nil && lq != nil && *sq >= 1 && *sq > *lq {
					c.business("recurringConfiguration.sweeping.periodicLimits."+short.name+".quantityLimit",
						"não pode ser maior que o limite de "+long.name)
				}
			}
		}
	}
	if s.StartDateTime != "" {
		field := "recurringConfiguration.sweeping.startDateTime"
		if t, ok := parseDateTime(c, field, s.StartDateTime); ok {
			switch {
			case civilDate(t).Before(civilDate(now)):
				c.add(payments.CodeDataPagamentoInvalida, "Data de pagamento inválida para a forma de pagamento selecionada: %s não pode ser anterior à data de criação do consentimento.", field)
			case !expires.IsZero() && !t.Before(expires):
				c.add(payments.CodeDataPagamentoInvalida, "Data de pagamento inválida para a forma de pagamento selecionada: %s deve ser anterior a expirationDateTime.", field)
			}
		}
	}
}

// parseDateTime parses a specification date-time (UTC, "Z", seconds).
func parseDateTime(c *checker, field, v string) (time.Time, bool) {
	if len(v) > 20 || !dateTimePattern.MatchString(v) {
		c.invalid(field)
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, normalizeDateTime(v))
	if err != nil {
		c.invalid(field)
		return time.Time{}, false
	}
	return t.UTC(), true
}

// normalizeDateTime pads single-digit months and days (the pattern admits them).
func normalizeDateTime(v string) string {
	var y, mo, d, h, mi, s int
	if _, err := fmt.Sscanf(v, "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &s); err != nil {
		return v
	}
	out := fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02dZ", y, mo, d, h, mi, s)
	// time.Parse rejects 2025-02-30; it does not roll dates over.
	return out
}

// brasilia is the time zone sweeping limits and dates are reckoned in
// (UTC−3, no daylight saving time since 2019).
var brasilia = time.FixedZone("BRT", -3*60*60)

// civilDate is t's date in Brasília, as midnight UTC of that date.
func civilDate(t time.Time) time.Time {
	y, m, d := t.In(brasilia).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Validate checks a PATCH request's shape: exactly one of a rejection, a
// revocation or an edition, with its required fields. An edition is
// CAMPO_NAO_PERMITIDO (only Pix Automático consents may be edited).
func (p *PatchRequest) Validate() *payments.ValidationError {
	c := &checker{}
	edition := len(p.Creditors) > 0 || len(p.RiskSignals) > 0 || len(p.ExpirationDateTime) > 0 || len(p.RecurringConfiguration) > 0
	switch {
	case p.Status == "" && edition:
		c.add(CodeCampoNaoPermitido, "O(s) campo(s) solicitado(s) para edição não podem ser editados: a edição é permitida apenas para consentimentos de Pix Automático.")
	case p.Status == "":
		c.missing("data.status")
	case edition:
		c.add(payments.CodeParametroInvalido, "Parâmetro data deve conter uma rejeição, uma revogação ou uma edição, não mais de uma.")
	case p.Status == string(StatusRejected):
		switch r := p.Rejection; {
		case r == nil:
			c.missing("data.rejection")
		case p.Revocation != nil:
			c.add(payments.CodeParametroInvalido, "Parâmetro data.revocation não é permitido com status REJECTED.")
		default:
			actorFields(c, "data.rejection.rejectedBy", "data.rejection.rejectedFrom", r.RejectedBy, r.RejectedFrom)
			reasonField(c, "data.rejection.reason", r.Reason, rejectionCodes())
		}
	case p.Status == string(StatusRevoked):
		switch r := p.Revocation; {
		case r == nil:
			c.missing("data.revocation")
		case p.Rejection != nil:
			c.add(payments.CodeParametroInvalido, "Parâmetro data.rejection não é permitido com status REVOKED.")
		default:
			actorFields(c, "data.revocation.revokedBy", "data.revocation.revokedFrom", r.RevokedBy, r.RevokedFrom)
			reasonField(c, "data.revocation.reason", r.Reason, []string{string(RevokeNaoInformado), string(RevokeRevogadoUsuario), string(RevokeRevogadoRecebedor)})
		}
	default:
		c.invalid("data.status")
	}
	return c.result()
}

// actorFields checks by/from of a PATCH: the request comes from the
// initiator, so from must be INICIADORA; by is the initiator or the user (or
// the receiving user's side, NAO_INFORMADO cases) — never the holder.
func actorFields(c *checker, byField, fromField string, by, from Actor) {
	// The PATCH's 422 codes have no business-rule code: these are PARAMETRO_INVALIDO.
	if c.enum(byField, string(by), []string{string(ActorInitiator), string(ActorUser), string(ActorHolder)}) && by == ActorHolder {
		c.add(payments.CodeParametroInvalido, "Parâmetro %s inválido: a detentora não rejeita nem revoga por meio da iniciadora.", byField)
	}
	if c.enum(fromField, string(from), []string{string(ActorInitiator), string(ActorHolder)}) && from != ActorInitiator {
		c.add(payments.CodeParametroInvalido, "Parâmetro %s inválido: pedidos recebidos da iniciadora têm origem INICIADORA.", fromField)
	}
}

func reasonField(c *checker, field string, r *Reason, codes []string) {
	if r == nil {
		c.missing(field)
		return
	}
	c.enum(field+".code", r.Code, codes)
	if r.Detail == "" {
		c.missing(field + ".detail")
	} else if len([]rune(r.Detail)) > 2048 {
		c.invalid(field + ".detail")
	}
}

func rejectionCodes() []string {
	out := make([]string, 0, len(rejectionDetails))
	for code := range rejectionDetails {
		out = append(out, string(code))
	}
	slices.Sort(out)
	return out
}

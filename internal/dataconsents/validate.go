package dataconsents

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/ofb"
)

// Error codes of the specification.
const (
	CodeParametroInvalido           = "PARAMETRO_INVALIDO"
	CodeParametroNaoInformado       = "PARAMETRO_NAO_INFORMADO"
	CodeSemPermissoesFuncionais     = "SEM_PERMISSOES_FUNCIONAIS_RESTANTES"
	CodeInformacoesPJNaoInformadas  = "INFORMACOES_PJ_NAO_INFORMADAS"
	CodePermissoesPJIncorretas      = "PERMISSOES_PJ_INCORRETAS"
	CodePermissaoPFPJEmConjunto     = "PERMISSAO_PF_PJ_EM_CONJUNTO"
	CodeCombinacaoPermissoes        = "COMBINACAO_PERMISSOES_INCORRETA"
	CodeDataExpiracaoInvalida       = "DATA_EXPIRACAO_INVALIDA"
	CodeErroNaoMapeado              = "ERRO_NAO_MAPEADO"
	CodeConsentimentoRejeitado      = "CONSENTIMENTO_EM_STATUS_REJEITADO"
	CodeEstadoConsentimentoInvalido = "ESTADO_CONSENTIMENTO_INVALIDO"
	CodeDependeMultiplaAlcada       = "DEPENDE_MULTIPLA_ALCADA"
)

// titles are the errors' titles.
var titles = map[string]string{
	CodeParametroInvalido:           "Parâmetro inválido",
	CodeParametroNaoInformado:       "Parâmetro não informado",
	CodeSemPermissoesFuncionais:     "Sem permissões funcionais restantes",
	CodeInformacoesPJNaoInformadas:  "Informações PJ não informadas",
	CodePermissoesPJIncorretas:      "Permissões PJ incorretas",
	CodePermissaoPFPJEmConjunto:     "Permissões PF e PJ em conjunto",
	CodeCombinacaoPermissoes:        "Combinação de permissões incorreta",
	CodeDataExpiracaoInvalida:       "Nova data para expiração do consentimento é inválida.",
	CodeErroNaoMapeado:              "Erro não mapeado",
	CodeConsentimentoRejeitado:      "Consentimento em status rejeitado",
	CodeEstadoConsentimentoInvalido: "Estado inválido do consentimento.",
	CodeDependeMultiplaAlcada:       "Necessário aprovação de múltipla alçada.",
}

// Problem is one error of a refused request.
type Problem struct {
	Code, Detail string
}

// ValidationError is a refused request: its HTTP status and problems.
type ValidationError struct {
	Status   int
	Problems []Problem
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Code + ": " + p.Detail
	}
	return fmt.Sprintf("dataconsents: %d %s", e.Status, strings.Join(parts, "; "))
}

func badRequest(code, detail string) *ValidationError {
	return &ValidationError{Status: http.StatusBadRequest, Problems: []Problem{{Code: code, Detail: detail}}}
}

func unprocessable(code, detail string) *ValidationError {
	return &ValidationError{Status: http.StatusUnprocessableEntity, Problems: []Problem{{Code: code, Detail: detail}}}
}

// The specification's patterns.
var (
	dateTimePattern = regexp.MustCompile(`^(\d{4})-(1[0-2]|0?[1-9])-(3[01]|[12][0-9]|0?[1-9])T(?:[01]\d|2[0123]):(?:[012345]\d):(?:[012345]\d)Z$`)
	cpfPattern      = regexp.MustCompile(`^\d{11}$`)
	cnpjPattern     = regexp.MustCompile(`^[0-9A-Z]{12}[0-9]{2}$`)
	relCPFPattern   = regexp.MustCompile(`^[A-Z]{3}$`)
	relCNPJPattern  = regexp.MustCompile(`^[A-Z]{4}$`)
	// ConsentIDPattern is the specification's consentId (URN).
	ConsentIDPattern = regexp.MustCompile(`^urn:[a-zA-Z0-9][a-zA-Z0-9-]{0,31}:[a-zA-Z0-9()+,\-.:=@;$_!*'%/?#]+$`)
)

// ValidCNPJ checks a CNPJ of the 3.3.x format: twelve digits or capital
// letters and two check digits, each character worth its ASCII code − 48
// (the alphanumeric CNPJ of IN RFB 2.229/2024; all-digit CNPJs as before).
func ValidCNPJ(s string) bool {
	if !cnpjPattern.MatchString(s) {
		return false
	}
	if strings.Trim(s, s[:1]) == "" {
		return false // one repeated character
	}
	weights := []int{6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2}
	for _, n := range []int{12, 13} {
		sum := 0
		w := weights[13-n:]
		for i := 0; i < n; i++ {
			sum += int(s[i]-'0') * w[i]
		}
		d := 11 - sum%11
		if d >= 10 {
			d = 0
		}
		if d != int(s[n]-'0') {
			return false
		}
	}
	return true
}

// checkLoggedUser checks loggedUser: a CPF with valid check digits.
func checkLoggedUser(u *Party, field string) *ValidationError {
	switch {
	case u == nil || u.Document == nil:
		return badRequest(CodeParametroNaoInformado, "Parâmetro "+field+".document obrigatório não informado.")
	case !cpfPattern.MatchString(u.Document.Identification):
		return badRequest(CodeParametroInvalido, "Parâmetro "+field+".document.identification deve ter 11 dígitos.")
	case !ofb.ValidCPF(u.Document.Identification):
		return badRequest(CodeParametroInvalido, "Parâmetro "+field+".document.identification não é um CPF válido (dígitos verificadores).")
	case !relCPFPattern.MatchString(u.Document.Rel) || u.Document.Rel != "CPF":
		return badRequest(CodeParametroInvalido, "Parâmetro "+field+".document.rel deve ser CPF.")
	}
	return nil
}

// checkBusinessEntity checks businessEntity, if present: a valid CNPJ.
func checkBusinessEntity(b *Party, field string) *ValidationError {
	switch {
	case b == nil:
		return nil
	case b.Document == nil:
		return badRequest(CodeParametroNaoInformado, "Parâmetro "+field+".document obrigatório não informado.")
	case !cnpjPattern.MatchString(b.Document.Identification):
		return badRequest(CodeParametroInvalido, "Parâmetro "+field+".document.identification deve ter 14 caracteres (^[0-9A-Z]{12}[0-9]{2}$).")
	case !ValidCNPJ(b.Document.Identification):
		return badRequest(CodeParametroInvalido, "Parâmetro "+field+".document.identification não é um CNPJ válido (dígitos verificadores).")
	case !relCNPJPattern.MatchString(b.Document.Rel) || b.Document.Rel != "CNPJ":
		return badRequest(CodeParametroInvalido, "Parâmetro "+field+".document.rel deve ser CNPJ.")
	}
	return nil
}

// parseExpiration checks an expirationDateTime's format; "" is no end date.
func parseExpiration(v string) (time.Time, *ValidationError) {
	if v == "" {
		return time.Time{}, nil
	}
	if len(v) > 20 || !dateTimePattern.MatchString(v) {
		return time.Time{}, badRequest(CodeParametroInvalido, "Parâmetro expirationDateTime deve ser uma data e hora UTC (AAAA-MM-DDThh:mm:ssZ).")
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, badRequest(CodeParametroInvalido, "Parâmetro expirationDateTime não é uma data e hora válida.")
	}
	return t.UTC(), nil
}

// maxExpiration is the latest expirationDateTime allowed at now.
func maxExpiration(now time.Time) time.Time { return now.AddDate(0, MaxLifetime, 0) }

// Validate checks a creation request at now and returns the permissions to
// grant (the request's, less unsupported products' groups, in request
// order) and the expiration (zero: none), or the refusal: 400 for what the
// schema forbids (missing or malformed fields, unknown or repeated
// permissions, bad check digits), 422 with the specification's codes for
// the business rules.
func (r *CreateRequest) Validate(now time.Time, categories []string) ([]string, time.Time, *ValidationError) {
	if verr := checkLoggedUser(r.LoggedUser, "loggedUser"); verr != nil {
		return nil, time.Time{}, verr
	}
	if verr := checkBusinessEntity(r.BusinessEntity, "businessEntity"); verr != nil {
		return nil, time.Time{}, verr
	}
	if len(r.Permissions) == 0 {
		return nil, time.Time{}, badRequest(CodeParametroNaoInformado, "Parâmetro permissions obrigatório não informado (ao menos uma permissão).")
	}
	seen := map[string]bool{}
	personal, business := false, false
	for _, p := range r.Permissions {
		if !KnownPermission(p) {
			return nil, time.Time{}, badRequest(CodeParametroInvalido, fmt.Sprintf("Permissão %q não existe nos agrupamentos da especificação.", p))
		}
		if seen[p] {
			return nil, time.Time{}, badRequest(CodeParametroInvalido, fmt.Sprintf("Permissão %q repetida em permissions.", p))
		}
		seen[p] = true
		switch p {
		case PermCustomersPersonalIdentifications, PermCustomersPersonalAdditionalInfo:
			personal = true
		case PermCustomersBusinessIdentifications, PermCustomersBusinessAdditionalInfo:
			business = true
		}
	}
	expires, verr := parseExpiration(r.ExpirationDateTime)
	if verr != nil {
		return nil, time.Time{}, verr
	}
	switch {
	case personal && business:
		return nil, time.Time{}, unprocessable(CodePermissaoPFPJEmConjunto,
			"Permissões de dados cadastrais de pessoa natural e de pessoa jurídica não podem ser solicitadas em conjunto.")
	case business && r.BusinessEntity == nil:
		return nil, time.Time{}, unprocessable(CodeInformacoesPJNaoInformadas,
			"Permissões de pessoa jurídica solicitadas sem businessEntity.")
	case personal && r.BusinessEntity != nil:
		return nil, time.Time{}, unprocessable(CodePermissoesPJIncorretas,
			"Consentimento de pessoa jurídica (businessEntity) com permissões de dados cadastrais de pessoa natural.")
	case !CompleteGroups(r.Permissions):
		return nil, time.Time{}, unprocessable(CodeCombinacaoPermissoes,
			"As permissões devem formar agrupamentos completos da tabela da especificação (cada um com RESOURCES_READ).")
	case !expires.IsZero() && (!expires.After(now) || expires.After(maxExpiration(now))):
		return nil, time.Time{}, unprocessable(CodeDataExpiracaoInvalida,
			fmt.Sprintf("expirationDateTime deve ser posterior a agora e em até %d meses.", MaxLifetime))
	}
	granted := supportedSubset(r.Permissions, categories)
	if len(granted) == 0 {
		return nil, time.Time{}, unprocessable(CodeSemPermissoesFuncionais,
			"Nenhuma das permissões solicitadas corresponde a produtos oferecidos por esta instituição.")
	}
	return granted, expires, nil
}

// Validate checks an extension request of consent c at now and returns the
// new expiration (zero: no end date).
func (r *ExtendRequest) Validate(c *Consent, now time.Time) (time.Time, *ValidationError) {
	if verr := checkLoggedUser(r.LoggedUser, "loggedUser"); verr != nil {
		return time.Time{}, verr
	}
	if verr := checkBusinessEntity(r.BusinessEntity, "businessEntity"); verr != nil {
		return time.Time{}, verr
	}
	expires, verr := parseExpiration(r.ExpirationDateTime)
	if verr != nil {
		return time.Time{}, verr
	}
	switch {
	case !c.Active(now):
		return time.Time{}, unprocessable(CodeEstadoConsentimentoInvalido,
			"O consentimento informado não pode ser renovado sem redirecionamento porque está em um estado que não permite a renovação.")
	case c.BusinessDocument == "" && r.LoggedUser.Document.Identification != c.Document:
		return time.Time{}, unprocessable(CodeErroNaoMapeado,
			"O usuário logado informado não é o usuário que criou este consentimento de pessoa natural.")
	case c.BusinessDocument != "" && (r.BusinessEntity == nil || r.BusinessEntity.Document.Identification != c.BusinessDocument):
		return time.Time{}, unprocessable(CodeErroNaoMapeado,
			"businessEntity deve ser o titular pessoa jurídica deste consentimento.")
	case c.ExpiresAt.IsZero():
		// Already without end date: nothing can extend it.
		return time.Time{}, unprocessable(CodeDataExpiracaoInvalida,
			"O consentimento informado não pode ser renovado pois já tem prazo indeterminado.")
	case !expires.IsZero() && (!expires.After(c.ExpiresAt) || expires.After(maxExpiration(now))):
		return time.Time{}, unprocessable(CodeDataExpiracaoInvalida,
			fmt.Sprintf("O consentimento informado não pode ser renovado pois a nova data de expiração não segue a convenção do ecossistema: posterior à atual e em até %d meses.", MaxLifetime))
	}
	return expires, nil
}

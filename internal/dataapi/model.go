// Package dataapi serves the Open Finance Brasil data-sharing APIs Ponte
// transmits for its holder partners' customers: Resources v3
// (/open-banking/resources/v3) and Accounts 2.4.2 (/open-banking/accounts/v2).
// Every call carries an access token from Ponte's authorization server bound
// to a data-sharing consent (scope consent:<id>); the consent's grant says
// which permissions and which accounts the receiving institution may read.
//
// It also owns the account data those APIs share — balances, overdraft
// limits, transactions and the identification fields the customers package
// does not hold — with an import (admin API and CLI, CSV or JSON) and a
// deterministic sandbox data set.
package dataapi

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Permissions of the Consents API v3 that these routes check.
const (
	PermResourcesRead       = "RESOURCES_READ"
	PermAccountsRead        = "ACCOUNTS_READ"
	PermBalancesRead        = "ACCOUNTS_BALANCES_READ"
	PermTransactionsRead    = "ACCOUNTS_TRANSACTIONS_READ"
	PermOverdraftLimitsRead = "ACCOUNTS_OVERDRAFT_LIMITS_READ"
)

// Token scopes of the two APIs (their specifications' OAuth2Security).
const (
	ScopeResources = "resources"
	ScopeAccounts  = "accounts"
	// ScopeAdminWrite is the partner-token scope of the account-data import.
	ScopeAdminWrite = "accounts.admin.write"
)

// Consent statuses (Consents API v3).
const (
	ConsentAuthorised = "AUTHORISED"
)

// Grant is what an authorised data-sharing consent allows: whose data
// (Document, a customer of a holder partner), for which receiving application
// (ApplicationID, the partner application the consent was created by),
// which permissions and which accounts (ids of internal/customers accounts),
// until when.
type Grant struct {
	ConsentID     string
	ApplicationID string
	Document      string
	Status        string
	Permissions   []string
	AccountIDs    []string
	ExpiresAt     time.Time
}

// Has reports whether the grant holds permission.
func (g *Grant) Has(permission string) bool { return slices.Contains(g.Permissions, permission) }

// Covers reports whether the grant shares the account with this id.
func (g *Grant) Covers(accountID string) bool { return slices.Contains(g.AccountIDs, accountID) }

// ErrGrantNotFound is what Grants returns for an unknown consent.
var ErrGrantNotFound = errors.New("dataapi: consent not found")

// Grants looks up the grant of a data-sharing consent (the Consents v3
// service, adapted in app wiring).
type Grants interface {
	Grant(ctx context.Context, consentID string) (*Grant, error)
}

// Token is an access token the authorization server issued, as introspected.
type Token struct {
	// ApplicationID is the partner application the token was issued to.
	ApplicationID string
	ClientID      string
	Scopes        []string
	ExpiresAt     time.Time
	// CertThumbprint is the RFC 8705 cnf x5t#S256 of a certificate-bound
	// token; empty for an unbound one.
	CertThumbprint string
}

// ErrInvalidToken is what a TokenVerifier returns for any token it refuses:
// unknown, expired, revoked or issued to a disabled application.
var ErrInvalidToken = errors.New("dataapi: invalid access token")

// TokenVerifier introspects the opaque access tokens of Ponte's authorization
// server (wired to oidc.Server.TokenInfo).
type TokenVerifier interface {
	VerifyToken(ctx context.Context, raw string) (*Token, error)
}

// Account types of the Accounts API, by internal/customers account type.
var accountTypes = map[string]string{
	"CACC": "CONTA_DEPOSITO_A_VISTA",
	"SVGS": "CONTA_POUPANCA",
	"TRAN": "CONTA_PAGAMENTO_PRE_PAGA",
}

// Account subtypes (EnumAccountSubType).
var subtypes = []string{"INDIVIDUAL", "CONJUNTA_SIMPLES", "CONJUNTA_SOLIDARIA"}

// Transaction enumerations of the Accounts API.
var (
	transactionStatuses = []string{"TRANSACAO_EFETIVADA", "LANCAMENTO_FUTURO", "TRANSACAO_PROCESSANDO"}
	creditDebitTypes    = []string{"CREDITO", "DEBITO"}
	transactionTypes    = []string{"TED", "DOC", "PIX", "TRANSFERENCIA_MESMA_INSTITUICAO", "BOLETO", "CONVENIO_ARRECADACAO",
		"PACOTE_TARIFA_SERVICOS", "TARIFA_SERVICOS_AVULSOS", "FOLHA_PAGAMENTO", "DEPOSITO", "SAQUE", "CARTAO",
		"ENCARGOS_JUROS_CHEQUE_ESPECIAL", "RENDIMENTO_APLIC_FINANCEIRA", "PORTABILIDADE_SALARIO",
		"RESGATE_APLIC_FINANCEIRA", "OPERACAO_CREDITO", "OUTROS"}
	personTypes = []string{"PESSOA_NATURAL", "PESSOA_JURIDICA"}
)

// Institution is the transmitting institution's identification the Accounts
// API shows for an account without a profile of its own.
type Institution struct {
	BrandName   string
	CompanyCNPJ string
	CompeCode   string
}

// Profile is an account's identification beyond internal/customers: the
// institution that keeps it and its subtype.
type Profile struct {
	CompeCode   string `json:"compeCode"`
	BrandName   string `json:"brandName"`
	CompanyCNPJ string `json:"companyCnpj"`
	Subtype     string `json:"subtype"`
}

// Balances are an account's balances (decimal strings, 2-4 places).
type Balances struct {
	AvailableAmount             string    `json:"availableAmount"`
	BlockedAmount               string    `json:"blockedAmount"`
	AutomaticallyInvestedAmount string    `json:"automaticallyInvestedAmount"`
	Currency                    string    `json:"currency,omitempty"`
	UpdatedAt                   time.Time `json:"-"`
}

// OverdraftLimits are an account's overdraft limits; an empty amount is
// absent.
type OverdraftLimits struct {
	ContractedAmount string    `json:"overdraftContractedLimit,omitempty"`
	UsedAmount       string    `json:"overdraftUsedLimit,omitempty"`
	UnarrangedAmount string    `json:"unarrangedOverdraftAmount,omitempty"`
	Currency         string    `json:"currency,omitempty"`
	UpdatedAt        time.Time `json:"-"`
}

// Transaction is one account transaction. Empty partie fields are absent.
type Transaction struct {
	TransactionID                  string    `json:"transactionId"`
	CompletedAuthorisedPaymentType string    `json:"completedAuthorisedPaymentType"`
	CreditDebitType                string    `json:"creditDebitType"`
	TransactionName                string    `json:"transactionName"`
	Type                           string    `json:"type"`
	Amount                         string    `json:"amount"`
	Currency                       string    `json:"currency,omitempty"`
	TransactionDateTime            time.Time `json:"transactionDateTime"`
	PartieCnpjCpf                  string    `json:"partieCnpjCpf,omitempty"`
	PartiePersonType               string    `json:"partiePersonType,omitempty"`
	PartieCompeCode                string    `json:"partieCompeCode,omitempty"`
	PartieBranchCode               string    `json:"partieBranchCode,omitempty"`
	PartieNumber                   string    `json:"partieNumber,omitempty"`
	PartieCheckDigit               string    `json:"partieCheckDigit,omitempty"`
}

// brazil is Brasília time: booking dates are calendar days there (no daylight
// saving since 2019).
var brazil = time.FixedZone("BRT", -3*60*60)

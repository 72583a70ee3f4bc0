package dataconsents

import "slices"

// Permissions of the specification (CreateConsent.data.permissions items).
const (
	PermResourcesRead = "RESOURCES_READ"

	PermCustomersPersonalIdentifications = "CUSTOMERS_PERSONAL_IDENTIFICATIONS_READ"
	PermCustomersPersonalAdditionalInfo  = "CUSTOMERS_PERSONAL_ADITTIONALINFO_READ"
	PermCustomersBusinessIdentifications = "CUSTOMERS_BUSINESS_IDENTIFICATIONS_READ"
	PermCustomersBusinessAdditionalInfo  = "CUSTOMERS_BUSINESS_ADITTIONALINFO_READ"

	PermAccountsRead                = "ACCOUNTS_READ"
	PermAccountsBalancesRead        = "ACCOUNTS_BALANCES_READ"
	PermAccountsTransactionsRead    = "ACCOUNTS_TRANSACTIONS_READ"
	PermAccountsOverdraftLimitsRead = "ACCOUNTS_OVERDRAFT_LIMITS_READ"
)

// Data categories of the regulated table (CATEGORIA DE DADOS).
const (
	CategoryRegistration = "Cadastro"
	CategoryAccounts     = "Contas"
	CategoryCreditCards  = "Cartão de Crédito"
	CategoryCredit       = "Operações de Crédito"
	CategoryInvestments  = "Investimento"
	CategoryExchange     = "Câmbio"
)

// Group is one row group of the specification's table: a data grouping
// (AGRUPAMENTO) whose permissions a receiver must ask for all together.
type Group struct {
	// Category and Name are the table's CATEGORIA DE DADOS and AGRUPAMENTO,
	// as the consent screen shows them in Portuguese.
	Category, Name string
	// Description tells the user what the grouping shares.
	Description string
	// Permissions are all of the group's permissions, RESOURCES_READ included.
	Permissions []string
	// Business marks the groups of a business entity's registration data
	// (Dados Cadastrais PJ, Informações complementares PJ); Personal those
	// of a natural person's.
	Business, Personal bool
}

// Groups is the regulated table of data groupings (consents 3.3.1,
// "Orientações importantes"), in the order the consent screen lists them.
var Groups = []Group{
	{Category: CategoryRegistration, Name: "Dados Cadastrais", Description: "Nome, CPF, documentos, filiação e dados de contato.",
		Permissions: []string{PermCustomersPersonalIdentifications, PermResourcesRead}, Personal: true},
	{Category: CategoryRegistration, Name: "Informações complementares", Description: "Renda, profissão, patrimônio e relacionamento com a instituição.",
		Permissions: []string{PermCustomersPersonalAdditionalInfo, PermResourcesRead}, Personal: true},
	{Category: CategoryRegistration, Name: "Dados Cadastrais", Description: "Razão social, CNPJ, sócios e dados de contato da empresa.",
		Permissions: []string{PermCustomersBusinessIdentifications, PermResourcesRead}, Business: true},
	{Category: CategoryRegistration, Name: "Informações complementares", Description: "Faturamento, porte e relacionamento da empresa com a instituição.",
		Permissions: []string{PermCustomersBusinessAdditionalInfo, PermResourcesRead}, Business: true},
	{Category: CategoryAccounts, Name: "Saldos", Description: "Saldos disponíveis, bloqueados e investidos automaticamente das contas.",
		Permissions: []string{PermAccountsRead, PermAccountsBalancesRead, PermResourcesRead}},
	{Category: CategoryAccounts, Name: "Limites", Description: "Limites de cheque especial contratados e utilizados.",
		Permissions: []string{PermAccountsRead, PermAccountsOverdraftLimitsRead, PermResourcesRead}},
	{Category: CategoryAccounts, Name: "Extratos", Description: "Transações das contas: entradas, saídas e seus detalhes.",
		Permissions: []string{PermAccountsRead, PermAccountsTransactionsRead, PermResourcesRead}},
	{Category: CategoryCreditCards, Name: "Limites", Description: "Limites do cartão de crédito.",
		Permissions: []string{"CREDIT_CARDS_ACCOUNTS_READ", "CREDIT_CARDS_ACCOUNTS_LIMITS_READ", PermResourcesRead}},
	{Category: CategoryCreditCards, Name: "Transações", Description: "Transações do cartão de crédito.",
		Permissions: []string{"CREDIT_CARDS_ACCOUNTS_READ", "CREDIT_CARDS_ACCOUNTS_TRANSACTIONS_READ", PermResourcesRead}},
	{Category: CategoryCreditCards, Name: "Faturas", Description: "Faturas do cartão de crédito e suas transações.",
		Permissions: []string{"CREDIT_CARDS_ACCOUNTS_READ", "CREDIT_CARDS_ACCOUNTS_BILLS_READ", "CREDIT_CARDS_ACCOUNTS_BILLS_TRANSACTIONS_READ", PermResourcesRead}},
	{Category: CategoryCredit, Name: "Dados do Contrato", Description: "Empréstimos, financiamentos, adiantamento a depositantes e direitos creditórios descontados: contratos, garantias, parcelas e pagamentos.",
		Permissions: []string{
			"LOANS_READ", "LOANS_WARRANTIES_READ", "LOANS_SCHEDULED_INSTALMENTS_READ", "LOANS_PAYMENTS_READ",
			"FINANCINGS_READ", "FINANCINGS_WARRANTIES_READ", "FINANCINGS_SCHEDULED_INSTALMENTS_READ", "FINANCINGS_PAYMENTS_READ",
			"UNARRANGED_ACCOUNTS_OVERDRAFT_READ", "UNARRANGED_ACCOUNTS_OVERDRAFT_WARRANTIES_READ",
			"UNARRANGED_ACCOUNTS_OVERDRAFT_SCHEDULED_INSTALMENTS_READ", "UNARRANGED_ACCOUNTS_OVERDRAFT_PAYMENTS_READ",
			"INVOICE_FINANCINGS_READ", "INVOICE_FINANCINGS_WARRANTIES_READ", "INVOICE_FINANCINGS_SCHEDULED_INSTALMENTS_READ",
			"INVOICE_FINANCINGS_PAYMENTS_READ", PermResourcesRead}},
	{Category: CategoryInvestments, Name: "Dados da Operação", Description: "Renda fixa bancária e de crédito, renda variável, títulos do Tesouro e fundos de investimento.",
		Permissions: []string{"BANK_FIXED_INCOMES_READ", "CREDIT_FIXED_INCOMES_READ", "FUNDS_READ", "VARIABLE_INCOMES_READ",
			"TREASURE_TITLES_READ", PermResourcesRead}},
	{Category: CategoryExchange, Name: "Dados da Operação", Description: "Operações de câmbio contratadas.",
		Permissions: []string{"EXCHANGES_READ", PermResourcesRead}},
}

// DefaultCategories are the products Ponte's data APIs serve: accounts
// (Accounts API, with the Resources API). Groups of other categories are
// removed from a request, as the specification tells a holder to do with
// products it does not offer.
var DefaultCategories = []string{CategoryAccounts}

// KnownPermission reports whether p is a permission of the table.
func KnownPermission(p string) bool {
	for _, g := range Groups {
		if slices.Contains(g.Permissions, p) {
			return true
		}
	}
	return false
}

// covered returns the groups whose permissions are all in set.
func covered(set map[string]bool) []Group {
	var out []Group
	for _, g := range Groups {
		all := true
		for _, p := range g.Permissions {
			if !set[p] {
				all = false
				break
			}
		}
		if all {
			out = append(out, g)
		}
	}
	return out
}

// CompleteGroups reports whether perms is exactly a union of complete
// groups of the table: every permission belongs to some group all of whose
// permissions were asked for.
func CompleteGroups(perms []string) bool {
	set := make(map[string]bool, len(perms))
	for _, p := range perms {
		set[p] = true
	}
	union := map[string]bool{}
	for _, g := range covered(set) {
		for _, p := range g.Permissions {
			union[p] = true
		}
	}
	return len(perms) > 0 && len(union) == len(set)
}

// GroupsOf returns the complete groups perms holds, in table order.
func GroupsOf(perms []string) []Group {
	set := make(map[string]bool, len(perms))
	for _, p := range perms {
		set[p] = true
	}
	return covered(set)
}

// supportedSubset keeps, in request order, the permissions of the complete
// groups of the given categories; nil when none remains.
func supportedSubset(perms, categories []string) []string {
	keep := map[string]bool{}
	for _, g := range GroupsOf(perms) {
		if slices.Contains(categories, g.Category) {
			for _, p := range g.Permissions {
				keep[p] = true
			}
		}
	}
	var out []string
	for _, p := range perms {
		if keep[p] {
			out = append(out, p)
		}
	}
	return out
}

// NeedsAccounts reports whether perms give access to account data, so the
// user chooses which accounts to share.
func NeedsAccounts(perms []string) bool {
	return slices.Contains(perms, PermAccountsRead)
}

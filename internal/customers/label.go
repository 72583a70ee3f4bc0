package customers

// accountTypeNames are the names people know for each account type; the
// WebView's script (web/static/journey.js, accountTypeNames) repeats them for
// the accounts it lists after login.
var accountTypeNames = map[string]string{
	TypeCACC: "Conta corrente",
	TypeSVGS: "Conta poupança",
	TypeTRAN: "Conta de pagamento",
}

// AccountTypeName is the Portuguese name of an account type ("Conta
// corrente" for CACC); an unknown type is returned as it is.
func AccountTypeName(accountType string) string {
	if n, ok := accountTypeNames[accountType]; ok {
		return n
	}
	return accountType
}

// AccountLabel is how an account is shown to its owner: "Conta corrente ·
// ag. 0001 · conta 1234567". A payment account (TRAN) has no branch, so the
// label leaves the agência out rather than print an empty one.
func AccountLabel(accountType, issuer, number string) string {
	label := AccountTypeName(accountType)
	if issuer != "" {
		label += " · ag. " + issuer
	}
	return label + " · conta " + number
}

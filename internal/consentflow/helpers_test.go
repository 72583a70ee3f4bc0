package consentflow_test

import "github.com/ponte-ofb/ponte/internal/auth"

func newApp(name, companyKey string) auth.NewApplication {
	return auth.NewApplication{Name: name, CompanyKey: companyKey, Scopes: []string{"openfinance.ticket.read", "openfinance.ticket.write"}}
}

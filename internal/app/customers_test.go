package app_test

import (
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestSandboxCustomersSeeded: a sandbox start seeds the demo application's
// customers and accounts once, and a restart keeps them as they are.
func TestSandboxCustomersSeeded(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			check := func(s *apptest.Server) map[string]string {
				t.Helper()
				ctx, a := t.Context(), s.App
				list, err := a.Customers.ListCustomers(ctx, a.Demo.ID)
				if err != nil || len(list) != 2 {
					t.Fatalf("demo customers: %v %v", list, err)
				}
				ids := map[string]string{}
				for _, c := range list {
					ids[c.Document] = c.ID
					accts, err := a.Customers.Accounts(ctx, a.Demo.ID, c.Document)
					// The sandbox customer's first account is its CACC at 37241230
					// (the data APIs' sandbox adds more accounts to 47742663023).
					if err != nil || len(accts) == 0 || accts[0].ISPB != "37241230" || accts[0].AccountType != "CACC" {
						t.Errorf("%s accounts: %v %v", c.Document, accts, err)
					}
				}
				for _, doc := range []string{"47742663023", "12345678909"} {
					if ids[doc] == "" {
						t.Errorf("sandbox customer %s missing", doc)
					}
				}
				return ids
			}
			first := check(s)
			s = s.Restart(t)
			again := check(s)
			for doc, id := range first {
				if again[doc] != id {
					t.Errorf("restart replaced customer %s", doc)
				}
			}
		})
	}
}

// TestProductionSeedsNoCustomers: outside the sandbox there is no demo data.
func TestProductionSeedsNoCustomers(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{Mode: config.Production})
	if s.App.Customers == nil || s.App.Demo != nil {
		t.Fatalf("customers %v, demo %v", s.App.Customers, s.App.Demo)
	}
	var n int
	if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM customers`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d customers in production (%v)", n, err)
	}
}

package customers

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

const (
	maria = "47742663023"
	joao  = "12345678909"
	cnpj  = "11222333000181"
)

func newApp(t *testing.T, db *store.DB, c clock.Clock, name string) string {
	t.Helper()
	a, _, err := auth.NewApplications(db, c).Create(t.Context(), auth.NewApplication{Name: name, CompanyKey: strings.ToUpper(name), Scopes: []string{"openfinance.ticket.write"}})
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

func setup(t *testing.T, db *store.DB) (*Service, string, string) {
	c := clock.NewFake(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	return NewService(db, c), newApp(t, db, c, "HolderA"), newApp(t, db, c, "HolderB")
}

// fieldsOf returns the field names of a validation error.
func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	var out []string
	for _, f := range verr.Fields {
		out = append(out, f.Field)
	}
	return out
}

func countRows(t *testing.T, db *store.DB, table string) int {
	t.Helper()
	var n int
	if err := db.Read().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCustomerValidation(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, app, _ := setup(t, db)
		for _, tc := range []struct {
			document, name string
			want           string
		}{
			{"", "Ana", "document"},
			{"4774266302", "Ana", "document"},     // 10 digits
			{"47742663024", "Ana", "document"},    // bad check digit
			{"477.426.630-23", "Ana", "document"}, // formatted
			{"11111111111", "Ana", "document"},    // repeated digits
			{"11222333000182", "Ana", "document"},
			{maria, "", "name"},
			{maria, "  ", "name"},
			{maria, strings.Repeat("a", 201), "name"},
		} {
			_, err := s.CreateCustomer(t.Context(), app, tc.document, tc.name)
			if got := fieldsOf(t, err); len(got) != 1 || got[0] != tc.want {
				t.Errorf("%q %q: fields %v, want [%s] (%v)", tc.document, tc.name, got, tc.want, err)
			}
		}
		if _, err := s.CreateCustomer(t.Context(), app, "1", ""); len(fieldsOf(t, err)) != 2 {
			t.Errorf("both fields should be reported: %v", err)
		}
		if n := countRows(t, db, "customers"); n != 0 {
			t.Errorf("%d customers written by invalid requests", n)
		}
	})
}

func TestCustomersCreateListUnique(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, appA, appB := setup(t, db)
		ctx := t.Context()
		c, err := s.CreateCustomer(ctx, appA, maria, " Maria da Silva ")
		if err != nil {
			t.Fatal(err)
		}
		if c.Name != "Maria da Silva" || c.ApplicationID != appA || c.Document != maria || c.ID == "" {
			t.Errorf("customer %+v", c)
		}
		if _, err := s.CreateCustomer(ctx, appA, cnpj, "Empresa Ltda"); err != nil {
			t.Errorf("CNPJ customer: %v", err)
		}
		if _, err := s.CreateCustomer(ctx, appA, maria, "Other"); !errors.Is(err, ErrCustomerExists) {
			t.Errorf("duplicate document: %v", err)
		}
		// The same person may be a customer of another application.
		if _, err := s.CreateCustomer(ctx, appB, maria, "Maria (B)"); err != nil {
			t.Errorf("same document in another application: %v", err)
		}
		list, err := s.ListCustomers(ctx, appA)
		if err != nil || len(list) != 2 {
			t.Fatalf("list A: %d %v", len(list), err)
		}
		got, err := s.Customer(ctx, appB, maria)
		if err != nil || got.Name != "Maria (B)" {
			t.Errorf("customer B: %+v %v", got, err)
		}
		if _, err := s.Customer(ctx, appB, cnpj); !errors.Is(err, ErrCustomerNotFound) {
			t.Errorf("A's customer seen through B: %v", err)
		}
		if _, err := s.Customer(ctx, appA, "123"); fieldsOf(t, err)[0] != "document" {
			t.Errorf("invalid document lookup: %v", err)
		}
	})
}

func TestAccountValidation(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, app, _ := setup(t, db)
		ctx := t.Context()
		if _, err := s.CreateCustomer(ctx, app, maria, "Maria"); err != nil {
			t.Fatal(err)
		}
		ok := Account{ISPB: "37241230", Issuer: "0001", Number: "1234567", AccountType: TypeCACC}
		with := func(f func(*Account)) Account { a := ok; f(&a); return a }
		for name, tc := range map[string]struct {
			document string
			a        Account
			want     string
		}{
			"short ispb":       {maria, with(func(a *Account) { a.ISPB = "3724123" }), "ispb"},
			"alpha ispb":       {maria, with(func(a *Account) { a.ISPB = "3724123X" }), "ispb"},
			"no issuer CACC":   {maria, with(func(a *Account) { a.Issuer = "" }), "issuer"},
			"no issuer SVGS":   {maria, with(func(a *Account) { a.Issuer, a.AccountType = "", TypeSVGS }), "issuer"},
			"long issuer":      {maria, with(func(a *Account) { a.Issuer = "00001" }), "issuer"},
			"alpha issuer":     {maria, with(func(a *Account) { a.Issuer = "00A1" }), "issuer"},
			"no number":        {maria, with(func(a *Account) { a.Number = "" }), "number"},
			"long number":      {maria, with(func(a *Account) { a.Number = strings.Repeat("1", 21) }), "number"},
			"alpha number":     {maria, with(func(a *Account) { a.Number = "12345-6" }), "number"},
			"bad type":         {maria, with(func(a *Account) { a.AccountType = "SLRY" }), "accountType"},
			"no type":          {maria, with(func(a *Account) { a.AccountType = "" }), "accountType"},
			"currency":         {maria, with(func(a *Account) { a.Currency = "USD" }), "currency"},
			"status":           {maria, with(func(a *Account) { a.Status = "CLOSED" }), "status"},
			"invalid document": {"47742663024", ok, "document"},
		} {
			_, err := s.AddAccount(ctx, app, tc.document, tc.a)
			if got := fieldsOf(t, err); len(got) != 1 || got[0] != tc.want {
				t.Errorf("%s: fields %v, want [%s] (%v)", name, got, tc.want, err)
			}
		}
		if _, err := s.AddAccount(ctx, app, joao, ok); !errors.Is(err, ErrCustomerNotFound) {
			t.Errorf("unknown customer: %v", err)
		}
		if n := countRows(t, db, "accounts"); n != 0 {
			t.Errorf("%d accounts written by invalid requests", n)
		}
		// TRAN needs no issuer; a short issuer is zero-padded.
		if a, err := s.AddAccount(ctx, app, maria, Account{ISPB: "37241230", Number: "99", AccountType: "tran"}); err != nil || a.Issuer != "" || a.AccountType != TypeTRAN {
			t.Errorf("TRAN without issuer: %+v %v", a, err)
		}
		a, err := s.AddAccount(ctx, app, maria, with(func(a *Account) { a.Issuer = "1" }))
		if err != nil || a.Issuer != "0001" || a.Currency != CurrencyBRL || a.Status != StatusActive {
			t.Errorf("defaults and padding: %+v %v", a, err)
		}
	})
}

func TestAccountsUniqueAndOwnership(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, appA, appB := setup(t, db)
		ctx := t.Context()
		for _, c := range []struct{ app, doc, name string }{{appA, maria, "Maria"}, {appA, joao, "João"}, {appB, cnpj, "Empresa"}} {
			if _, err := s.CreateCustomer(ctx, c.app, c.doc, c.name); err != nil {
				t.Fatal(err)
			}
		}
		mariaAcct := Account{ISPB: "37241230", Issuer: "0001", Number: "1234567", AccountType: TypeCACC}
		if _, err := s.AddAccount(ctx, appA, maria, mariaAcct); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddAccount(ctx, appA, joao, Account{ISPB: "37241230", Issuer: "0001", Number: "7654321", AccountType: TypeSVGS}); err != nil {
			t.Fatal(err)
		}
		bAcct := Account{ISPB: "00000000", Issuer: "0002", Number: "1", AccountType: TypeCACC}
		if _, err := s.AddAccount(ctx, appB, cnpj, bAcct); err != nil {
			t.Fatal(err)
		}
		// (ispb, issuer, number) is unique across customers and applications.
		for _, doc := range []struct{ app, doc string }{{appA, maria}, {appA, joao}} {
			if _, err := s.AddAccount(ctx, doc.app, doc.doc, mariaAcct); !errors.Is(err, ErrAccountExists) {
				t.Errorf("duplicate account for %s: %v", doc.doc, err)
			}
		}
		if _, err := s.AddAccount(ctx, appA, maria, Account{ISPB: "37241230", Issuer: "1", Number: "1234567", AccountType: TypeCACC}); !errors.Is(err, ErrAccountExists) {
			t.Errorf("duplicate account with unpadded issuer: %v", err)
		}
		if _, err := s.AddAccount(ctx, appB, cnpj, mariaAcct); !errors.Is(err, ErrAccountExists) {
			t.Errorf("duplicate account in another application: %v", err)
		}
		list, err := s.Accounts(ctx, appA, maria)
		if err != nil || len(list) != 1 || list[0].Number != "1234567" {
			t.Errorf("Maria's accounts: %v %v", list, err)
		}
		if _, err := s.Accounts(ctx, appB, maria); !errors.Is(err, ErrCustomerNotFound) {
			t.Errorf("accounts of another application's customer: %v", err)
		}
		for _, tc := range []struct {
			name                           string
			app, doc, ispb, issuer, number string
			want                           bool
		}{
			{"own account", appA, maria, "37241230", "0001", "1234567", true},
			{"own account, unpadded issuer", appA, maria, "37241230", "1", "1234567", true},
			{"another customer's account", appA, maria, "37241230", "0001", "7654321", false},
			{"the other customer owns it", appA, joao, "37241230", "0001", "7654321", true},
			{"wrong issuer", appA, maria, "37241230", "0002", "1234567", false},
			{"wrong ispb", appA, maria, "00000000", "0001", "1234567", false},
			{"wrong number", appA, maria, "37241230", "0001", "123456", false},
			{"another application's customer account", appA, maria, "00000000", "0002", "1", false},
			{"the account through another application", appB, maria, "37241230", "0001", "1234567", false},
			{"another application's own customer", appB, cnpj, "00000000", "0002", "1", true},
			{"unknown document", appA, "11144477735", "37241230", "0001", "1234567", false},
			{"garbage", appA, "", "", "", "", false},
		} {
			got, err := s.OwnsAccount(ctx, tc.app, tc.doc, tc.ispb, tc.issuer, tc.number)
			if err != nil || got != tc.want {
				t.Errorf("%s: %v %v, want %v", tc.name, got, err, tc.want)
			}
		}
	})
}

func TestEnsureSandboxIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, app, _ := setup(t, db)
		ctx := t.Context()
		first, err := s.EnsureSandbox(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		again, err := s.EnsureSandbox(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		for i := range first {
			if first[i].ID != again[i].ID {
				t.Errorf("second run replaced customer %s", first[i].Document)
			}
		}
		const instances = 6
		errs := make([]error, instances)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range instances {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = NewService(db, clock.System{}).EnsureSandbox(ctx, app)
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("instance %d: %v", i, err)
			}
		}
		if n := countRows(t, db, "customers"); n != 2 {
			t.Errorf("%d customers, want 2", n)
		}
		if n := countRows(t, db, "accounts"); n != 2 {
			t.Errorf("%d accounts, want 2", n)
		}
		want := map[string]string{maria: "Maria da Silva", joao: "João Souza"}
		numbers := map[string]bool{}
		for doc, name := range want {
			c, err := s.Customer(ctx, app, doc)
			if err != nil || c.Name != name {
				t.Errorf("%s: %+v %v", doc, c, err)
				continue
			}
			list, err := s.Accounts(ctx, app, doc)
			if err != nil || len(list) != 1 {
				t.Fatalf("%s accounts: %v %v", doc, list, err)
			}
			a := list[0]
			if a.ISPB != "37241230" || a.Issuer != "0001" || a.AccountType != TypeCACC || a.Currency != CurrencyBRL || a.Status != StatusActive {
				t.Errorf("%s account %+v", doc, a)
			}
			numbers[a.Number] = true
			if ok, err := s.OwnsAccount(ctx, app, doc, a.ISPB, a.Issuer, a.Number); !ok || err != nil {
				t.Errorf("%s does not own its sandbox account: %v", doc, err)
			}
		}
		if len(numbers) != 2 {
			t.Errorf("sandbox account numbers are not distinct: %v", numbers)
		}
	})
}

// TestEnsureSandboxConcurrentDatabases: instances with their own connection
// pools (separate processes) on one database all start.
func TestEnsureSandboxConcurrentDatabases(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			url := e.URL(t)
			first := storetest.Open(t, url)
			_, app, _ := setup(t, first)
			const instances = 4
			dbs := []*store.DB{first}
			for range instances - 1 {
				dbs = append(dbs, storetest.Open(t, url))
			}
			errs := make([]error, instances)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, db := range dbs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[i] = NewService(db, clock.System{}).EnsureSandbox(t.Context(), app)
				}()
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("instance %d: %v", i, err)
				}
			}
			if n := countRows(t, first, "accounts"); n != 2 {
				t.Errorf("%d accounts, want 2", n)
			}
		})
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/store"
)

var customersGroup = group{
	name:    "customers",
	summary: "manage a holder partner's customers (end users)",
	about: `Manages the end users a holder partner application serves, in the database
'ponte serve' uses. Documents are a CPF (11 digits) or CNPJ (14 digits), digits
only, with valid check digits; each is unique within its application.`,
	subs: []subcommand{
		{"add", "register a customer of a partner application"},
		{"list", "list an application's customers"},
	},
	after: "See also 'ponte accounts' for the customers' accounts.\n",
}

var accountsGroup = group{
	name:    "accounts",
	summary: "manage customers' bank accounts",
	about: `Manages customers' bank accounts: the debtor accounts a user may choose in the
consent WebView. An account (ispb, issuer, number) belongs to one customer.`,
	subs: []subcommand{
		{"add", "give a customer an account"},
		{"list", "list a customer's accounts"},
		{"import", "load an account's balances, limits and transactions (CSV or JSON)"},
	},
}

// customersCmd runs `ponte customers ...`.
func customersCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, rest, done, err := customersGroup.dispatch(args, stdout, stderr)
	if done {
		return err
	}
	var (
		cfg                 config.Config
		c                   *command
		app, document, name string
		asJSON              bool
	)
	switch sub {
	case "add":
		c = newCommand("ponte customers add --app CLIENT_ID --document DOCUMENT --name NAME [flags]",
			"Registers a customer (an end user) of a holder partner application. The document is a CPF\nor CNPJ, digits only, with valid check digits, unique within the application.", stdout, stderr)
		c.String(&app, "app", "CLIENT_ID", "", "the partner application that serves the customer (required)")
		c.String(&document, "document", "DOCUMENT", "", "the customer's CPF (11 digits) or CNPJ (14 digits) (required)")
		c.String(&name, "name", "NAME", "", "the customer's name (required)")
	case "list":
		c = newCommand("ponte customers list --app CLIENT_ID [flags]", "Lists a partner application's customers.", stdout, stderr)
		c.String(&app, "app", "CLIENT_ID", "", "the partner application that serves the customers (required)")
		c.Bool(&asJSON, "json", false, "print JSON")
	}
	c.Storage(&cfg)
	if err := c.Parse(rest); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	required := map[string][]string{"add": {"app", "document", "name"}, "list": {"app"}}[sub]
	if err := c.Required(required...); err != nil {
		return err
	}
	svc, appID, closeDB, err := openCustomers(ctx, cfg, app)
	if err != nil {
		return err
	}
	defer closeDB()
	switch sub {
	case "add":
		c, err := svc.CreateCustomer(ctx, appID, document, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "customer %s (%s) created for %s\n", c.Document, c.Name, app)
	case "list":
		list, err := svc.ListCustomers(ctx, appID)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, orEmpty(list))
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DOCUMENT\tNAME\tCREATED")
		for _, c := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Document, c.Name, c.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	}
	return nil
}

// accountsCmd runs `ponte accounts ...`.
func accountsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, rest, done, err := accountsGroup.dispatch(args, stdout, stderr)
	if done {
		return err
	}
	if sub == "import" {
		return accountsImportCmd(ctx, rest, stdout, stderr)
	}
	var (
		cfg           config.Config
		c             *command
		app, document string
		a             customers.Account
		asJSON        bool
	)
	switch sub {
	case "add":
		c = newCommand("ponte accounts add --app CLIENT_ID --document DOCUMENT --ispb ISPB --issuer AGENCY --number NUMBER [flags]",
			"Gives a customer a bank account. (ispb, issuer, number) is unique: an account belongs to one customer.\nThe issuer (agency, without its check digit) is required for CACC and SVGS and stored as 4 digits.", stdout, stderr)
		c.String(&app, "app", "CLIENT_ID", "", "the partner application that serves the customer (required)")
		c.String(&document, "document", "DOCUMENT", "", "the customer's CPF or CNPJ (required)")
		c.String(&a.ISPB, "ispb", "ISPB", "", "the institution's ISPB, 8 digits (required)")
		c.String(&a.Issuer, "issuer", "AGENCY", "", "the agency, 1-4 digits without check digit (required for CACC and SVGS)")
		c.String(&a.Number, "number", "NUMBER", "", "the account number with its check digit, 1-20 digits (required)")
		c.String(&a.AccountType, "type", "TYPE", customers.TypeCACC, "account type: CACC, SVGS or TRAN")
		c.String(&a.Status, "status", "STATUS", customers.StatusActive, "account status: ACTIVE or BLOCKED")
	case "list":
		c = newCommand("ponte accounts list --app CLIENT_ID --document DOCUMENT [flags]", "Lists a customer's accounts.", stdout, stderr)
		c.String(&app, "app", "CLIENT_ID", "", "the partner application that serves the customer (required)")
		c.String(&document, "document", "DOCUMENT", "", "the customer's CPF or CNPJ (required)")
		c.Bool(&asJSON, "json", false, "print JSON")
	}
	c.Storage(&cfg)
	if err := c.Parse(rest); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	required := map[string][]string{"add": {"app", "document", "ispb", "number"}, "list": {"app", "document"}}[sub]
	if err := c.Required(required...); err != nil {
		return err
	}
	svc, appID, closeDB, err := openCustomers(ctx, cfg, app)
	if err != nil {
		return err
	}
	defer closeDB()
	switch sub {
	case "add":
		acct, err := svc.AddAccount(ctx, appID, document, a)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "account %s %s %s (%s) added for customer %s\n", acct.ISPB, acct.Issuer, acct.Number, acct.AccountType, document)
	case "list":
		list, err := svc.Accounts(ctx, appID, document)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, orEmpty(list))
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ISPB\tISSUER\tNUMBER\tTYPE\tCURRENCY\tSTATUS")
		for _, x := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.ISPB, x.Issuer, x.Number, x.AccountType, x.Currency, x.Status)
		}
		return tw.Flush()
	}
	return nil
}

// openCustomers opens the database and resolves the application's client_id.
func openCustomers(ctx context.Context, cfg config.Config, clientID string) (*customers.Service, string, func(), error) {
	db, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		return nil, "", nil, err
	}
	appID, err := applicationID(ctx, db, clientID)
	if err != nil {
		db.Close()
		return nil, "", nil, err
	}
	return customers.NewService(db, clock.System{}), appID, func() { db.Close() }, nil
}

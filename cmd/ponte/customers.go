package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/store"
)

const customersUsage = `Usage: ponte customers <command> [flags]

Manages the end users a holder partner application serves, in the database
'ponte serve' uses. Documents are a CPF (11 digits) or CNPJ (14 digits), digits
only, with valid check digits; each is unique within its application.

Commands:
  add    register a customer of a partner application
  list   list an application's customers

Run 'ponte customers <command> --help' for a command's flags.
See also 'ponte accounts' for the customers' accounts.
`

const accountsUsage = `Usage: ponte accounts <command> [flags]

Manages customers' bank accounts: the debtor accounts a user may choose in the
consent WebView. An account (ispb, issuer, number) belongs to one customer.

Commands:
  add    give a customer an account
  list   list a customer's accounts
  import load an account's balances, limits and transactions (CSV or JSON)

Run 'ponte accounts <command> --help' for a command's flags.
`

// customersCmd runs `ponte customers ...`.
func customersCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if done, err := groupHelp(args, customersUsage, stdout); done {
		return err
	}
	sub, rest := args[0], args[1:]
	var (
		cfg                 config.Config
		fs                  *flag.FlagSet
		app, document, name string
		asJSON              bool
	)
	switch sub {
	case "add":
		fs = newFlagSet("ponte customers add --app CLIENT_ID --document DOCUMENT --name NAME [flags]",
			"Registers a customer (an end user) of a holder partner application. The document is a CPF\nor CNPJ, digits only, with valid check digits, unique within the application.", stderr)
		fs.StringVar(&document, "document", "", "the customer's CPF (11 digits) or CNPJ (14 digits) (required)")
		fs.StringVar(&name, "name", "", "the customer's name (required)")
	case "list":
		fs = newFlagSet("ponte customers list --app CLIENT_ID [flags]", "Lists a partner application's customers.", stderr)
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	default:
		fmt.Fprintf(stderr, "ponte customers: unknown command %q\n\n%s", sub, customersUsage)
		return errUsage
	}
	fs.StringVar(&app, "app", "", "client_id of the partner application that serves the customer (required)")
	cfg.RegisterStorage(fs)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if fs.NArg() != 0 || app == "" || (sub == "add" && (document == "" || name == "")) {
		fs.Usage()
		return errUsage
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
	if done, err := groupHelp(args, accountsUsage, stdout); done {
		return err
	}
	sub, rest := args[0], args[1:]
	if sub == "import" {
		return accountsImportCmd(ctx, rest, stdout, stderr)
	}
	var (
		cfg           config.Config
		fs            *flag.FlagSet
		app, document string
		a             customers.Account
		asJSON        bool
	)
	switch sub {
	case "add":
		fs = newFlagSet("ponte accounts add --app CLIENT_ID --document DOCUMENT --ispb ISPB --issuer AGENCY --number NUMBER [flags]",
			"Gives a customer a bank account. (ispb, issuer, number) is unique: an account belongs to one customer.\nThe issuer (agency, without its check digit) is required for CACC and SVGS and stored as 4 digits.", stderr)
		fs.StringVar(&a.ISPB, "ispb", "", "the institution's ISPB, 8 digits (required)")
		fs.StringVar(&a.Issuer, "issuer", "", "the agency, 1-4 digits without check digit (required for CACC and SVGS)")
		fs.StringVar(&a.Number, "number", "", "the account number with its check digit, 1-20 digits (required)")
		fs.StringVar(&a.AccountType, "type", customers.TypeCACC, "account type: CACC, SVGS or TRAN")
		fs.StringVar(&a.Status, "status", customers.StatusActive, "account status: ACTIVE or BLOCKED")
	case "list":
		fs = newFlagSet("ponte accounts list --app CLIENT_ID --document DOCUMENT [flags]", "Lists a customer's accounts.", stderr)
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	default:
		fmt.Fprintf(stderr, "ponte accounts: unknown command %q\n\n%s", sub, accountsUsage)
		return errUsage
	}
	fs.StringVar(&app, "app", "", "client_id of the partner application that serves the customer (required)")
	fs.StringVar(&document, "document", "", "the customer's CPF or CNPJ (required)")
	cfg.RegisterStorage(fs)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if fs.NArg() != 0 || app == "" || document == "" || (sub == "add" && (a.ISPB == "" || a.Number == "")) {
		fs.Usage()
		return errUsage
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

package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/store"
)

// accountsImportCmd runs `ponte accounts import`: it loads account data (the
// Accounts API's balances, overdraft limits, identification and
// transactions) from a JSON document or CSV transactions file into the
// account of a partner's customer, in one transaction.
func accountsImportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		cfg                      config.Config
		clientID, document, acct string
		file                     string
	)
	c := newCommand("ponte accounts import --app CLIENT_ID --document DOCUMENT --account NUMBER --file F.csv|F.json [flags]",
		"Imports account data for a customer's account. A .json file holds any of \"account\" (compeCode,\n"+
			"brandName, companyCnpj, subtype), \"balances\", \"overdraftLimits\" and \"transactions\"; a .csv file holds\n"+
			"transactions, one per row, under a header naming the columns (transactionId,\n"+
			"completedAuthorisedPaymentType, creditDebitType, transactionName, type, amount, transactionDateTime,\n"+
			"and optionally currency and the partie* fields). A transaction already imported under the same\n"+
			"transactionId is replaced: re-importing a file is harmless.", stdout, stderr)
	c.String(&clientID, "app", "CLIENT_ID", "", "the partner application that serves the customer (required)")
	c.String(&document, "document", "DOCUMENT", "", "the customer's CPF or CNPJ (required)")
	c.String(&acct, "account", "NUMBER", "", "the account number, check digit included, as registered with 'ponte accounts add' (required)")
	c.String(&file, "file", "FILE", "", "the file to import: NAME.json or NAME.csv (required)")
	c.Alias("client-id", "app")
	c.Storage(&cfg)
	if err := c.Parse(args); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	if err := c.Required("app", "document", "account", "file"); err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("open %s: %w", file, err)
	}
	defer f.Close()
	data, err := dataapi.Decode(f, file)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	db, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		return err
	}
	defer db.Close()
	appID, err := applicationID(ctx, db, clientID)
	if err != nil {
		return err
	}
	// The import needs no consents: it only writes account data.
	res, err := dataapi.NewService(db, clock.System{}, nil).Import(ctx, appID, document, acct, data)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "account %s (%s) of customer %s: %d transactions imported", acct, res.AccountID, document, res.Transactions)
	for _, part := range []struct {
		done bool
		name string
	}{{res.Profile, "identification"}, {res.Balances, "balances"}, {res.Limits, "overdraft limits"}} {
		if part.done {
			fmt.Fprintf(stdout, ", %s", part.name)
		}
	}
	fmt.Fprintln(stdout)
	return nil
}

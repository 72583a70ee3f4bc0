package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ponte-ofb/ponte/internal/cards"
	"github.com/ponte-ofb/ponte/internal/cards/applepay"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/vault"
)

const cardsUsage = `Usage: ponte cards <command> [flags]

Manages the card vault in the database 'ponte serve' uses. Card numbers are
sealed with the data key (--data-key) and never printed.

Commands:
  create              register a card; the card number is read from standard input
  list                list cards (last four digits only)
  set-status PROXY    set a card's status: CREATING, ACTIVE, BLOCKED or CANCELLED
  apple-test-device   write a sandbox Apple Pay device certificate and key, so
                      a partner can decrypt its own sandbox payloads

Run 'ponte cards <command> --help' for a command's flags.
`

func cardsCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if done, err := groupHelp(args, cardsUsage, stdout); done {
		return err
	}
	sub, rest := args[0], args[1:]
	var (
		cfg    config.Config
		fs     *flag.FlagSet
		n      cards.NewCard
		app    string
		out    string
		asJSON bool
	)
	switch sub {
	case "create":
		fs = newFlagSet("ponte cards create --app CLIENT_ID --proxy PROXY [flags] < card-number",
			"Registers a card for a partner application. The card number is read from the first line of\nstandard input, so it stays out of shell history and process lists.", stderr)
		fs.StringVar(&app, "app", "", "client_id of the partner application that owns the card (required)")
		fs.StringVar(&n.Proxy, "proxy", "", "the card id used in API paths (required)")
		fs.IntVar(&n.ExpiryMonth, "expiry-month", 0, "expiry month, 1-12 (required)")
		fs.IntVar(&n.ExpiryYear, "expiry-year", 0, "expiry year, four digits (required)")
		fs.StringVar(&n.HolderName, "name", "", "card holder name (required)")
		fs.StringVar(&n.PhoneNumber, "phone", "", "holder phone number, digits (required)")
		fs.StringVar(&n.Address.ZipCode, "zip-code", "", "address: zip code (required)")
		fs.StringVar(&n.Address.Address, "street", "", "address: street (required)")
		fs.StringVar(&n.Address.Number, "number", "", "address: number (required)")
		fs.StringVar(&n.Address.Neighborhood, "neighborhood", "", "address: neighborhood")
		fs.StringVar(&n.Address.Complement, "complement", "", "address: complement")
		fs.StringVar(&n.Address.City, "city", "", "address: city (required)")
		fs.StringVar(&n.Address.State, "state", "", "address: state (required)")
		fs.StringVar(&n.Address.Country, "country", "Brasil", "address: country")
		fs.StringVar(&n.Brand, "brand", cards.BrandMastercard, "card brand (Mastercard)")
		fs.StringVar(&n.Status, "status", cards.StatusActive, "initial status")
	case "list":
		fs = newFlagSet("ponte cards list [flags]", "Lists cards with their last four digits; never card numbers.", stderr)
		fs.StringVar(&app, "app", "", "only this application's cards (client_id)")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	case "set-status":
		fs = newFlagSet("ponte cards set-status [flags] PROXY STATUS", "Sets a card's status: CREATING, ACTIVE, BLOCKED or CANCELLED.", stderr)
		fs.StringVar(&app, "app", "", "client_id of the card's application (needed when several applications use PROXY)")
	case "apple-test-device":
		fs = newFlagSet("ponte cards apple-test-device --out DIR [flags]",
			"Writes device-certificate.pem (a P-256 leaf chained to the sandbox Apple trust root in DATA-DIR)\nand device-key.pem (its private key). Send the certificate as appleCertificate; decrypt the\nreturned EncryptedData with the key. Sandbox only: real Apple devices chain to Apple Root CA - G3.", stderr)
		fs.StringVar(&out, "out", "", "directory to write the files to (required)")
	default:
		fmt.Fprintf(stderr, "ponte cards: unknown command %q\n\n%s", sub, cardsUsage)
		return errUsage
	}
	cfg.RegisterStorage(fs)
	if err := parse(fs, rest); err != nil {
		return err
	}
	wantArgs := map[string]int{"create": 0, "list": 0, "set-status": 2, "apple-test-device": 0}[sub]
	if fs.NArg() != wantArgs || (sub == "create" && (app == "" || n.Proxy == "")) || (sub == "apple-test-device" && out == "") {
		fs.Usage()
		return errUsage
	}
	if sub == "apple-test-device" {
		return appleTestDevice(cfg.DataDir, out, stdout)
	}
	db, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		return err
	}
	defer db.Close()
	v, err := vault.LoadOrCreate(cfg.DataKeyPath())
	if err != nil {
		return err
	}
	svc := cards.NewService(db, clock.System{}, v, cards.Wallets{}, nil, nil)
	appID := ""
	if app != "" {
		if appID, err = applicationID(ctx, db, app); err != nil {
			return err
		}
	}
	switch sub {
	case "create":
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("read the card number from standard input: %w", err)
		}
		n.PAN = strings.Join(strings.Fields(line), "")
		c, err := svc.Create(ctx, appID, n)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "card %s created for %s: **** %s, status %s\n", c.Proxy, app, c.LastFour, c.Status)
	case "list":
		list, err := svc.List(ctx, appID)
		if err != nil {
			return err
		}
		if asJSON {
			out := make([]cards.CardJSON, 0, len(list))
			for _, c := range list {
				out = append(out, c.JSON())
			}
			return writeJSON(stdout, out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROXY\tLAST4\tEXPIRY\tSTATUS\tNAME")
		for _, c := range list {
			fmt.Fprintf(tw, "%s\t%s\t%02d/%d\t%s\t%s\n", c.Proxy, c.LastFour, c.ExpiryMonth, c.ExpiryYear, c.Status, c.HolderName)
		}
		return tw.Flush()
	case "set-status":
		c, err := svc.SetStatus(ctx, appID, fs.Arg(0), strings.ToUpper(fs.Arg(1)))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "card %s is now %s\n", c.Proxy, c.Status)
	}
	return nil
}

func appleTestDevice(dataDir, out string, stdout io.Writer) error {
	now := time.Now()
	root, rootKey, err := applepay.LoadOrCreateTestRoot(dataDir, now)
	if err != nil {
		return err
	}
	certPEM, keyPEM, err := applepay.IssueTestDevice(rand.Reader, root, rootKey, now)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o700); err != nil {
		return err
	}
	certPath, keyPath := filepath.Join(out, "device-certificate.pem"), filepath.Join(out, "device-key.pem")
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (send as appleCertificate)\nwrote %s (mode 0600; decrypts EncryptedData)\n", certPath, keyPath)
	return nil
}

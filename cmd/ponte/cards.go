package main

import (
	"bufio"
	"context"
	"crypto/rand"
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

var cardsGroup = group{
	name:    "cards",
	summary: "manage the card vault",
	about: `Manages the card vault in the database 'ponte serve' uses. Card numbers are
sealed with the data key (--data-key) and never printed.`,
	subs: []subcommand{
		{"create", "register a card; the card number is read from standard input"},
		{"list", "list cards (last four digits only)"},
		{"set-status", "set a card's status: CREATING, ACTIVE, BLOCKED or CANCELLED"},
		{"apple-test-device", "write a sandbox Apple Pay device certificate and key"},
	},
}

func cardsCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	sub, rest, done, err := cardsGroup.dispatch(args, stdout, stderr)
	if done {
		return err
	}
	var (
		cfg    config.Config
		c      *command
		n      cards.NewCard
		app    string
		out    string
		asJSON bool
	)
	switch sub {
	case "create":
		c = newCommand("ponte cards create --app CLIENT_ID --proxy PROXY [flags] < card-number",
			"Registers a card for a partner application. The card number is read from the first line of\nstandard input, so it stays out of shell history and process lists.", stdout, stderr)
		c.String(&app, "app", "CLIENT_ID", "", "the partner application that owns the card (required)")
		c.String(&n.Proxy, "proxy", "PROXY", "", "the card id used in API paths (required)")
		c.Int(&n.ExpiryMonth, "expiry-month", "MM", 0, "expiry month, 1-12 (required)")
		c.Int(&n.ExpiryYear, "expiry-year", "YYYY", 0, "expiry year, four digits (required)")
		c.String(&n.HolderName, "name", "NAME", "", "card holder name (required)")
		c.String(&n.PhoneNumber, "phone", "DIGITS", "", "holder phone number, digits (required)")
		c.String(&n.Address.ZipCode, "zip-code", "ZIP", "", "address: zip code (required)")
		c.String(&n.Address.Address, "street", "STREET", "", "address: street (required)")
		c.String(&n.Address.Number, "number", "NUMBER", "", "address: number (required)")
		c.String(&n.Address.Neighborhood, "neighborhood", "NAME", "", "address: neighborhood")
		c.String(&n.Address.Complement, "complement", "TEXT", "", "address: complement")
		c.String(&n.Address.City, "city", "CITY", "", "address: city (required)")
		c.String(&n.Address.State, "state", "UF", "", "address: state (required)")
		c.String(&n.Address.Country, "country", "COUNTRY", "Brasil", "address: country")
		c.String(&n.Brand, "brand", "BRAND", cards.BrandMastercard, "card brand (Mastercard)")
		c.String(&n.Status, "status", "STATUS", cards.StatusActive, "initial status")
	case "list":
		c = newCommand("ponte cards list [flags]", "Lists cards with their last four digits; never card numbers.", stdout, stderr)
		c.String(&app, "app", "CLIENT_ID", "", "only this partner application's cards")
		c.Bool(&asJSON, "json", false, "print JSON")
	case "set-status":
		c = newCommand("ponte cards set-status [flags] PROXY STATUS", "Sets a card's status: CREATING, ACTIVE, BLOCKED or CANCELLED.", stdout, stderr)
		c.String(&app, "app", "CLIENT_ID", "", "the card's partner application (needed when several applications use PROXY)")
	case "apple-test-device":
		c = newCommand("ponte cards apple-test-device --out DIR [flags]",
			"Writes device-certificate.pem (a P-256 leaf chained to the sandbox Apple trust root in DATA-DIR)\nand device-key.pem (its private key), so a partner can decrypt its own sandbox payloads. Send\nthe certificate as appleCertificate; decrypt the returned EncryptedData with the key. Sandbox\nonly: real Apple devices chain to Apple Root CA - G3.", stdout, stderr)
		c.String(&out, "out", "DIR", "", "directory to write the files to (required)")
	}
	c.Storage(&cfg)
	if err := c.Parse(rest); err != nil {
		return err
	}
	if sub == "set-status" {
		if c.NArg() != 2 {
			return c.Fail("want PROXY and STATUS")
		}
	} else if err := c.NoArgs(); err != nil {
		return err
	}
	required := map[string][]string{"create": {"app", "proxy"}, "apple-test-device": {"out"}}[sub]
	if err := c.Required(required...); err != nil {
		return err
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
		c, err := svc.SetStatus(ctx, appID, c.Arg(0), strings.ToUpper(c.Arg(1)))
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

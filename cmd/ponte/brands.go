package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/store"
)

const brandsUsage = `Usage: ponte brands <command> [flags]

Manages brands: the account holders Ponte, as initiator (ITP), sends users
to, with Ponte's client registration at each. A brand's signing key is a PEM
file (mode 0600) created in DATA-DIR/brands unless --key-file names one; the
key never goes into the database or the output.

Commands:
  add      register a brand (prints its id and the public key to register at the brand)
  list     list brands
  disable  stop offering a brand to new journey sessions

Run 'ponte brands <command> --help' for a command's flags.
`

// openITP opens the database and the initiator-side service for the CLI.
func openITP(ctx context.Context, cfg config.Config) (*store.DB, *itp.Service, error) {
	db, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		return nil, nil, err
	}
	return db, itp.NewService(db, clock.System{}, nil, "", filepath.Join(cfg.DataDir, "brands"), nil, nil), nil
}

func brandsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if done, err := groupHelp(args, brandsUsage, stdout); done {
		return err
	}
	sub, rest := args[0], args[1:]
	var (
		cfg    config.Config
		fs     *flag.FlagSet
		b      itp.Brand
		id     string
		asJSON bool
	)
	switch sub {
	case "add":
		fs = newFlagSet("ponte brands add --name NAME --issuer URL --api-base-url URL --client-id ID [flags]",
			"Registers a brand. Its issuer must be new.", stderr)
		fs.StringVar(&b.Name, "name", "", "name shown on the journey page (required)")
		fs.StringVar(&b.Issuer, "issuer", "", "the brand's authorization server issuer (required, unique)")
		fs.StringVar(&b.APIBaseURL, "api-base-url", "", "base URL of the brand's Open Finance APIs (required)")
		fs.StringVar(&b.ClientID, "client-id", "", "Ponte's client_id at the brand (required)")
		fs.StringVar(&b.DiscoveryURL, "discovery-url", "", "the brand's OpenID discovery URL")
		fs.StringVar(&b.LogoURL, "logo-url", "", "logo shown on the journey page")
		fs.StringVar(&b.SigningKeyFile, "key-file", "", "PEM signing key file (created, RSA-2048, if absent; default DATA-DIR/brands/brand-ID-signing-key.pem)")
		fs.StringVar(&b.MTLSCertFile, "mtls-cert", "", "client certificate (PEM) for mutual TLS at the brand")
		fs.StringVar(&b.MTLSKeyFile, "mtls-key", "", "its private key (PEM)")
	case "list":
		fs = newFlagSet("ponte brands list [flags]", "Lists brands.", stderr)
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	case "disable":
		fs = newFlagSet("ponte brands disable --id ID [flags]", "Stops offering a brand to new journey sessions.", stderr)
		fs.StringVar(&id, "id", "", "brand id (required)")
	default:
		fmt.Fprintf(stderr, "ponte brands: unknown command %q\n\n%s", sub, brandsUsage)
		return errUsage
	}
	cfg.RegisterStorage(fs)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if fs.NArg() != 0 || (sub == "add" && (b.Name == "" || b.Issuer == "" || b.APIBaseURL == "" || b.ClientID == "")) || (sub == "disable" && id == "") {
		fs.Usage()
		return errUsage
	}
	db, svc, err := openITP(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "add":
		added, err := svc.AddBrand(ctx, b)
		if err != nil {
			return err
		}
		key, err := added.SigningKey()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "id:            %s\nname:          %s\nissuer:        %s\nsigning key:   %s (kid %s)\npublic JWKS to register at the brand:\n",
			added.ID, added.Name, added.Issuer, added.SigningKeyFile, key.KeyID)
		return writeJSON(stdout, key.JWKS())
	case "list":
		list, err := svc.Brands(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, orEmpty(list))
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tISSUER\tCLIENT_ID\tENABLED")
		for _, b := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\n", b.ID, b.Name, b.Issuer, b.ClientID, b.Enabled)
		}
		return tw.Flush()
	case "disable":
		d, err := svc.DisableBrand(ctx, id)
		if err != nil {
			return fmt.Errorf("brand %s: %w", id, err)
		}
		fmt.Fprintf(stdout, "brand %s (%s) disabled\n", d.ID, d.Name)
	}
	return nil
}

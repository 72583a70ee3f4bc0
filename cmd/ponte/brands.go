package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/vault"
)

var brandsGroup = group{
	name:    "brands",
	summary: "manage the account holders Ponte initiates at (ITP side)",
	about: `Manages brands: the account holders Ponte, as initiator (ITP), sends users
to, with Ponte's client registration at each. A brand's signing key is
generated, or read from the PEM file --key-file names, and kept in the
database sealed with the data key, so every instance has it; the private key
never goes into the output.`,
	subs: []subcommand{
		{"add", "register a brand (prints its id and the public key to register at the brand)"},
		{"list", "list brands"},
		{"update", "change a brand's organisation id (the iss its signed answers must carry)"},
		{"disable", "stop offering a brand to new journey sessions"},
	},
}

// openITP opens the database and the initiator-side service for the CLI,
// with the data key that seals brands' signing keys (created in the data
// directory if absent, as 'ponte serve' would; never in a key set).
func openITP(ctx context.Context, cfg config.Config) (*store.DB, *itp.Service, error) {
	load := vault.LoadOrCreate
	if cfg.KeysDir != "" || cfg.DataKeyFile != "" {
		load = vault.Read
	}
	vlt, err := load(cfg.DataKeyPath())
	if err != nil {
		return nil, nil, err
	}
	db, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		return nil, nil, err
	}
	svc := itp.NewService(db, clock.System{}, nil, "", filepath.Join(cfg.DataDir, "brands"), nil, nil)
	svc.Keys = vlt
	return db, svc, nil
}

func brandsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, rest, done, err := brandsGroup.dispatch(args, stdout, stderr)
	if done {
		return err
	}
	var (
		cfg    config.Config
		c      *command
		b      itp.Brand
		id     string
		asJSON bool
	)
	switch sub {
	case "add":
		c = newCommand("ponte brands add --name NAME --issuer URL --api-base-url URL --client-id CLIENT_ID [flags]",
			"Registers a brand. Its issuer must be new.", stdout, stderr)
		c.String(&b.Name, "name", "NAME", "", "name shown on the journey page (required)")
		c.String(&b.Issuer, "issuer", "URL", "", "the brand's authorization server issuer (required, unique)")
		c.String(&b.APIBaseURL, "api-base-url", "URL", "", "base URL of the brand's Open Finance APIs (required)")
		// Not --app: this is the client_id the brand's authorization server
		// issued to Ponte, not a partner application of Ponte's.
		c.String(&b.ClientID, "client-id", "CLIENT_ID", "", "Ponte's own client_id at the brand's authorization server (required;\nnot a partner application)")
		c.String(&b.OrganisationID, "org-id", "UUID", "", "the brand's organisation id at the Open Finance Directory: its signed\nanswers must name it as iss (without it, iss is not checked)")
		c.String(&b.DiscoveryURL, "discovery-url", "URL", "", "the brand's OpenID discovery URL")
		c.String(&b.LogoURL, "logo-url", "URL", "", "logo shown on the journey page")
		c.String(&b.SigningKeyFile, "key-file", "FILE", "", "PEM signing key file to use (created, RSA-2048, if absent); default: a new key;\neither way the key is kept in the database, sealed with the data key")
		c.String(&b.MTLSCertFile, "mtls-cert", "FILE", "", "client certificate (PEM) for mutual TLS at the brand")
		c.String(&b.MTLSKeyFile, "mtls-key", "FILE", "", "its private key (PEM)")
	case "list":
		c = newCommand("ponte brands list [flags]", "Lists brands.", stdout, stderr)
		c.Bool(&asJSON, "json", false, "print JSON")
	case "update":
		c = newCommand("ponte brands update --brand BRAND_ID --org-id UUID [flags]",
			"Records the brand's organisation id at the Open Finance Directory: from then on its signed\n"+
				"answers must name it as iss (and Ponte's organisation id as aud). --org-id '' clears it.", stdout, stderr)
		c.String(&id, "brand", "BRAND_ID", "", "the brand's id, as 'ponte brands list' prints it (required)")
		c.Alias("id", "brand")
		c.String(&b.OrganisationID, "org-id", "UUID", "", "the brand's organisation id (required)")
	case "disable":
		c = newCommand("ponte brands disable --brand BRAND_ID [flags]", "Stops offering a brand to new journey sessions.", stdout, stderr)
		c.String(&id, "brand", "BRAND_ID", "", "the brand's id, as 'ponte brands list' prints it (required)")
		c.Alias("id", "brand")
	}
	c.Storage(&cfg)
	if err := c.Parse(rest); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	required := map[string][]string{"add": {"name", "issuer", "api-base-url", "client-id"}, "update": {"brand"}, "disable": {"brand"}}[sub]
	if err := c.Required(required...); err != nil {
		return err
	}
	if sub == "update" && !c.IsSet("org-id") {
		return c.Fail("--org-id is required")
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
		key, err := svc.BrandSigningKey(ctx, added.ID)
		if err != nil {
			return err
		}
		from := "generated"
		if added.SigningKeyFile != "" {
			from = "from " + added.SigningKeyFile
		}
		fmt.Fprintf(stdout, "id:            %s\nname:          %s\nissuer:        %s\norganisation:  %s\nsigning key:   kid %s (%s; kept in the database, sealed)\npublic JWKS to register at the brand:\n",
			added.ID, added.Name, added.Issuer, orgOrNone(added.OrganisationID), key.KeyID, from)
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
		fmt.Fprintln(tw, "ID\tNAME\tISSUER\tCLIENT_ID\tORGANISATION\tENABLED")
		for _, b := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%t\n", b.ID, b.Name, b.Issuer, b.ClientID, orgOrNone(b.OrganisationID), b.Enabled)
		}
		return tw.Flush()
	case "update":
		u, err := svc.SetBrandOrganisation(ctx, id, b.OrganisationID)
		if err != nil {
			return fmt.Errorf("brand %s: %w", id, err)
		}
		fmt.Fprintf(stdout, "brand %s (%s): organisation %s\n", u.ID, u.Name, orgOrNone(u.OrganisationID))
	case "disable":
		d, err := svc.DisableBrand(ctx, id)
		if err != nil {
			return fmt.Errorf("brand %s: %w", id, err)
		}
		fmt.Fprintf(stdout, "brand %s (%s) disabled\n", d.ID, d.Name)
	}
	return nil
}

// orgOrNone shows an organisation id, or says none is recorded.
func orgOrNone(id string) string {
	if id == "" {
		return "(none)"
	}
	return id
}

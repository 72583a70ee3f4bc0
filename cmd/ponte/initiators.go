package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/store"
)

const initiatorsUsage = `Usage: ponte initiators <command> [flags]

Manages the Open Finance clients (payment initiators) of Ponte's holder-side
authorization server: they push authorization requests to /oauth/par with
signed request objects and authenticate with private_key_jwt. An initiator
is a partner application (ponte apps create): it creates its consents with
that application's credentials and registers here under the same client_id;
only the client that created a consent can take the user through it.

Commands:
  add    register (or replace) an initiator: client_id, name, JWKS, redirect URIs
  list   list registered initiators

Run 'ponte initiators <command> --help' for a command's flags.
`

func initiatorsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if done, err := groupHelp(args, initiatorsUsage, stdout); done {
		return err
	}
	sub, rest := args[0], args[1:]
	var (
		cfg       config.Config
		fs        *flag.FlagSet
		in        oidc.Initiator
		jwksFile  string
		redirects stringList
	)
	switch sub {
	case "add":
		fs = newFlagSet("ponte initiators add --client-id ID --name NAME --jwks FILE --redirect-uri URL [flags]",
			"Registers an initiator with its public keys (a JWKS file: its request objects and client\nassertions are verified with them) and its exact redirect URIs. An existing client_id is replaced.", stderr)
		fs.StringVar(&in.ClientID, "client-id", "", "the initiator's client_id: its partner application's (required)")
		fs.StringVar(&in.Name, "name", "", "display name shown to the user in the WebView (required)")
		fs.StringVar(&jwksFile, "jwks", "", "file with the initiator's public JWKS (required)")
		fs.Var(&redirects, "redirect-uri", "exact redirect URI (repeatable, at least one)")
	case "list":
		fs = newFlagSet("ponte initiators list [flags]", "Lists registered initiators.", stderr)
	default:
		fmt.Fprintf(stderr, "ponte initiators: unknown command %q\n\n%s", sub, initiatorsUsage)
		return errUsage
	}
	cfg.RegisterStorage(fs)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if fs.NArg() != 0 || (sub == "add" && (in.ClientID == "" || in.Name == "" || jwksFile == "")) {
		fs.Usage()
		return errUsage
	}
	db, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		return err
	}
	defer db.Close()
	st := oidc.NewStorage(db, clock.System{})
	switch sub {
	case "add":
		if _, err := auth.NewApplications(db, clock.System{}).Get(ctx, in.ClientID); err != nil {
			return fmt.Errorf("--client-id %s: %w (register the initiator's application first: ponte apps create)", in.ClientID, err)
		}
		b, err := os.ReadFile(jwksFile)
		if err != nil {
			return fmt.Errorf("read --jwks: %w", err)
		}
		in.JWKS, in.RedirectURIs = json.RawMessage(b), redirects
		c, err := st.RegisterInitiator(ctx, in)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "initiator %s (%s) registered with %d key(s) and redirect URIs %s\n",
			c.ID, c.Name, len(c.PublicJWKS.Keys), strings.Join(c.RedirectURIs, " "))
	case "list":
		list, err := st.Initiators(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT_ID\tNAME\tKEYS\tREDIRECT_URIS")
		for _, c := range list {
			keys := 0
			if c.PublicJWKS != nil {
				keys = len(c.PublicJWKS.Keys)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", c.ID, c.Name, keys, strings.Join(c.RedirectURIs, " "))
		}
		return tw.Flush()
	}
	return nil
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/store"
)

var initiatorsGroup = group{
	name:    "initiators",
	summary: "register Open Finance initiators with the authorization server",
	about: `Manages the Open Finance clients (payment initiators) of Ponte's holder-side
authorization server: they push authorization requests to /oauth/par with
signed request objects and authenticate with private_key_jwt. An initiator
is a partner application (ponte apps create): it creates its consents with
that application's credentials and registers here under the same client_id;
only the client that created a consent can take the user through it.
Initiators in the Open Finance Directory register themselves instead (POST
/register with a software statement); "add" is for institutions outside it.`,
	subs: []subcommand{
		{"add", "register (or replace) an initiator: application, name, JWKS, redirect URLs, organisation, webhook URLs"},
		{"list", "list registered initiators with their organisation and origin (dcr or hand)"},
	},
}

func initiatorsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, rest, done, err := initiatorsGroup.dispatch(args, stdout, stderr)
	if done {
		return err
	}
	var (
		cfg       config.Config
		c         *command
		in        oidc.Initiator
		jwksFile  string
		redirects stringList
		webhooks  stringList
	)
	switch sub {
	case "add":
		c = newCommand("ponte initiators add --app CLIENT_ID --name NAME --jwks FILE --redirect-url URL [flags]",
			"Registers an initiator with its public keys (a JWKS file: its request objects and client\nassertions are verified with them) and its exact redirect URLs. An existing initiator is replaced.", stdout, stderr)
		c.String(&in.ClientID, "app", "CLIENT_ID", "", "the partner application that becomes the initiator: its client_id (required)")
		c.String(&in.Name, "name", "NAME", "", "display name shown to the user in the WebView (required)")
		c.String(&jwksFile, "jwks", "FILE", "", "file with the initiator's public JWKS (required)")
		c.List(&redirects, "redirect-url", "URL", "exact redirect URL (repeatable, at least one)")
		c.String(&in.OrganisationID, "org-id", "UUID", "", "the initiator's Open Finance organisation id (also set on its application)")
		c.List(&webhooks, "webhook-url", "URL", "base URL for Open Finance webhooks (repeatable): https, no trailing slash, no query")
		c.Alias("client-id", "app")
		c.Alias("redirect-uri", "redirect-url")
	case "list":
		c = newCommand("ponte initiators list [flags]", "Lists registered initiators.", stdout, stderr)
	}
	c.Storage(&cfg)
	if err := c.Parse(rest); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	if sub == "add" {
		if err := c.Required("app", "name", "jwks"); err != nil {
			return err
		}
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
			return fmt.Errorf("--app %s: %w (register the initiator's application first: ponte apps create)", in.ClientID, err)
		}
		if in.OrganisationID != "" && uuid.Validate(in.OrganisationID) != nil {
			return fmt.Errorf("--org-id %q: must be a UUID", in.OrganisationID)
		}
		for _, u := range webhooks {
			// http is allowed on loopback only, for initiators next to a
			// sandbox; outside it the delivery's SSRF guard refuses loopback.
			if err := oidc.CheckWebhookURI(u, true); err != nil {
				return fmt.Errorf("--webhook-url: %w", err)
			}
		}
		if existing, err := st.Clients().Client(ctx, in.ClientID); err == nil && oidc.SoftwareID(existing) != "" {
			return fmt.Errorf("--app %s registered itself with a software statement: it manages its registration at /register/%s",
				in.ClientID, in.ClientID)
		}
		b, err := os.ReadFile(jwksFile)
		if err != nil {
			return fmt.Errorf("read --jwks: %w", err)
		}
		in.JWKS, in.RedirectURIs, in.WebhookURIs = json.RawMessage(b), redirects, webhooks
		c, err := st.RegisterInitiator(ctx, in)
		if err != nil {
			return err
		}
		if in.OrganisationID != "" {
			if _, err := auth.NewApplications(db, clock.System{}).SetOrganisationID(ctx, in.ClientID, in.OrganisationID); err != nil {
				return fmt.Errorf("set the application's organisation id: %w", err)
			}
		}
		fmt.Fprintf(stdout, "initiator %s (%s) registered with %d key(s) and redirect URLs %s\n",
			c.ID, c.Name, len(c.PublicJWKS.Keys), strings.Join(c.RedirectURIs, " "))
	case "list":
		list, err := st.Initiators(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT_ID\tNAME\tORG_ID\tORIGIN\tKEYS\tREDIRECT_URLS\tWEBHOOK_URLS")
		for _, c := range list {
			keys, origin := "jwks_uri", "dcr"
			if c.PublicJWKS != nil {
				keys = fmt.Sprint(len(c.PublicJWKS.Keys))
			}
			if oidc.SoftwareID(c) == "" {
				origin = "hand"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, dash(oidc.OrganisationID(c)), origin, keys,
				strings.Join(c.RedirectURIs, " "), dash(strings.Join(oidc.WebhookURIs(c), " ")))
		}
		return tw.Flush()
	}
	return nil
}

// dash shows an empty column as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

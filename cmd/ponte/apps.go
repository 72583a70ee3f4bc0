package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/store"
)

const appsUsage = `Usage: ponte apps <command> [flags]

Manages partner applications in the database 'ponte serve' uses.

Commands:
  create          register an application; prints its client_secret once
  list            list applications
  show ID         show one application (client_id or id)
  rotate-secret ID  issue a new client_secret; the old one stops working
  disable ID      disable an application; its tokens stop working at once
  set-keys        register the application's public JWKS (verifies its signed requests)
  set-plain-json  allow or forbid plain JSON bodies where signed JWTs are required

Run 'ponte apps <command> --help' for a command's flags.
`

func apps(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if done, err := groupHelp(args, appsUsage, stdout); done {
		return err
	}
	sub, rest := args[0], args[1:]
	var cfg config.Config
	var (
		fs     *flag.FlagSet
		n      auth.NewApplication
		scp    string
		redi   stringList
		asJSON bool
		jwks   string
		client string
		accept bool
	)
	switch sub {
	case "create":
		fs = newFlagSet("ponte apps create --name NAME --company-key KEY --scopes S1,S2 [flags]",
			"Registers a partner application and prints its client_id and client_secret.\nThe secret is stored only as a hash: copy it now.\nKnown scopes: "+strings.Join(slices.Sorted(maps.Keys(auth.KnownScopes)), ", "), stderr)
		fs.StringVar(&n.Name, "name", "", "application name (required)")
		fs.StringVar(&n.CompanyKey, "company-key", "", "partner key shown in tickets, at most 36 characters (required)")
		fs.StringVar(&scp, "scopes", "", "comma- or space-separated scopes to grant (required)")
		fs.Var(&redi, "redirect-url", "exact redirect URL the application may use (repeatable)")
		fs.StringVar(&n.DeepLinkURL, "deep-link-url", "", "URL that opens the partner's app for the holder journey")
		fs.StringVar(&jwks, "jwks", "", "file with the application's public JSON Web Key Set: signed Payments API\nrequest bodies are verified against it (each key public, with a kid,\nRSA ≥ 2048 bits or EC P-256)")
		fs.BoolVar(&n.AcceptPlainJSON, "accept-plain-json", false, "let the application send plain JSON bodies where the Payments API\nrequires signed JWTs (application/jwt); off by default")
	case "list":
		fs = newFlagSet("ponte apps list [flags]", "Lists partner applications (never their secrets).", stderr)
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	case "show":
		fs = newFlagSet("ponte apps show [flags] ID", "Shows one application by client_id or id (never its secret).", stderr)
	case "rotate-secret":
		fs = newFlagSet("ponte apps rotate-secret [flags] ID", "Issues a new client_secret and prints it once; the old secret stops working.", stderr)
	case "disable":
		fs = newFlagSet("ponte apps disable [flags] ID", "Disables an application: token requests fail and issued tokens are refused.", stderr)
	case "set-keys":
		fs = newFlagSet("ponte apps set-keys --client-id ID --jwks FILE [flags]",
			"Registers the application's public JSON Web Key Set, replacing the previous one.\n"+
				"Ponte verifies the application's signed Payments API request bodies (PS256, by kid)\n"+
				"against it. Every key must be public, have a kid, and be RSA ≥ 2048 bits or EC P-256;\n"+
				"a private key is refused. An empty file removes the keys.", stderr)
		fs.StringVar(&client, "client-id", "", "the application's client_id or id (required)")
		fs.StringVar(&jwks, "jwks", "", "file holding the public JWKS, {\"keys\":[...]} (required)")
	case "set-plain-json":
		fs = newFlagSet("ponte apps set-plain-json --client-id ID --accept=true|false [flags]",
			"Says whether the application may send plain JSON bodies (application/json) where the\n"+
				"Payments API requires signed JWTs (application/jwt). New applications may not; the\n"+
				"sandbox demo application may.", stderr)
		fs.StringVar(&client, "client-id", "", "the application's client_id or id (required)")
		fs.BoolVar(&accept, "accept", false, "true: accept plain JSON bodies; false: require signed JWTs (required)")
	default:
		fmt.Fprintf(stderr, "ponte apps: unknown command %q\n\n%s", sub, appsUsage)
		return errUsage
	}
	cfg.RegisterStorage(fs)
	if err := parse(fs, rest); err != nil {
		return err
	}
	needID := sub == "show" || sub == "rotate-secret" || sub == "disable"
	if needID != (fs.NArg() == 1) || fs.NArg() > 1 {
		fs.Usage()
		return errUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if (sub == "set-keys" || sub == "set-plain-json") && client == "" ||
		sub == "set-keys" && !set["jwks"] || sub == "set-plain-json" && !set["accept"] {
		fs.Usage()
		return errUsage
	}
	var jwksJSON []byte
	if jwks != "" {
		b, err := os.ReadFile(jwks)
		if err != nil {
			return fmt.Errorf("read JWKS: %w", err)
		}
		jwksJSON = b
	}
	db, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		return err
	}
	defer db.Close()
	svc := auth.NewApplications(db, clock.System{})
	switch sub {
	case "create":
		n.Scopes = strings.FieldsFunc(scp, func(r rune) bool { return r == ',' || r == ' ' })
		n.RedirectURLs = redi
		n.JWKS = jwksJSON
		a, secret, err := svc.Create(ctx, n)
		if err != nil {
			return err
		}
		printApp(stdout, a)
		fmt.Fprintf(stdout, "client_secret: %s\n(shown once: store it now)\n", secret)
	case "list":
		list, err := svc.List(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, orEmpty(list))
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT_ID\tNAME\tCOMPANY_KEY\tSTATUS\tSCOPES")
		for _, a := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.ClientID, a.Name, a.CompanyKey, status(a), strings.Join(a.Scopes, " "))
		}
		return tw.Flush()
	case "show":
		a, err := svc.Get(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		printApp(stdout, a)
	case "rotate-secret":
		a, secret, err := svc.RotateSecret(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "client_id:     %s\nclient_secret: %s\n(shown once: store it now; the previous secret no longer works)\n", a.ClientID, secret)
	case "disable":
		a, err := svc.Disable(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "application %s (%s) disabled\n", a.ClientID, a.Name)
	case "set-keys":
		a, err := svc.SetJWKS(ctx, client, jwksJSON)
		if err != nil {
			return err
		}
		printApp(stdout, a)
	case "set-plain-json":
		a, err := svc.SetAcceptPlainJSON(ctx, client, accept)
		if err != nil {
			return err
		}
		printApp(stdout, a)
	}
	return nil
}

func status(a *auth.Application) string {
	if a.Disabled {
		return "disabled"
	}
	return "active"
}

func printApp(w io.Writer, a *auth.Application) {
	fmt.Fprintf(w, "id:            %s\n", a.ID)
	fmt.Fprintf(w, "client_id:     %s\n", a.ClientID)
	fmt.Fprintf(w, "name:          %s\n", a.Name)
	fmt.Fprintf(w, "companyKey:    %s\n", a.CompanyKey)
	fmt.Fprintf(w, "status:        %s\n", status(a))
	fmt.Fprintf(w, "scopes:        %s\n", strings.Join(a.Scopes, " "))
	fmt.Fprintf(w, "redirect URLs: %s\n", strings.Join(a.RedirectURLs, " "))
	fmt.Fprintf(w, "deep link:     %s\n", a.DeepLinkURL)
	fmt.Fprintf(w, "keys:          %d\n", a.KeyCount())
	fmt.Fprintf(w, "plain JSON:    %s\n", map[bool]string{true: "accepted", false: "refused (signed JWT bodies only)"}[a.AcceptPlainJSON])
	fmt.Fprintf(w, "created:       %s\n", a.CreatedAt.Format("2006-01-02T15:04:05Z"))
}

package main

import (
	"context"
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

var appsGroup = group{
	name:    "apps",
	summary: "manage partner applications",
	about:   "Manages partner applications in the database 'ponte serve' uses.",
	subs: []subcommand{
		{"create", "register an application; prints its client_secret once"},
		{"list", "list applications"},
		{"show", "show one application"},
		{"rotate-secret", "issue a new client_secret; the old one stops working"},
		{"disable", "disable an application; its tokens stop working at once"},
		{"rename", "change an application's display name (its slug stays)"},
		{"set-keys", "register the application's public JWKS (verifies its signed requests)"},
		{"set-plain-json", "allow or forbid plain JSON bodies where signed JWTs are required"},
		{"set", "change an application's organisation id or plain-JSON opt-in"},
	},
}

func apps(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, rest, done, err := appsGroup.dispatch(args, stdout, stderr)
	if done {
		return err
	}
	return appsCommands[sub](ctx, rest, stdout, stderr)
}

// appsCommands runs each of appsGroup's subcommands: each declares its
// own flags, checks them, and only then opens the database.
var appsCommands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"create":         appsCreate,
	"list":           appsList,
	"show":           appsShow,
	"rotate-secret":  appsRotateSecret,
	"disable":        appsDisable,
	"rename":         appsRename,
	"set-keys":       appsSetKeys,
	"set-plain-json": appsSetPlainJSON,
	"set":            appsSet,
}

func appsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		cfg       config.Config
		n         auth.NewApplication
		scopes    string
		redirects stringList
		jwks      string
	)
	c := newCommand("ponte apps create --name NAME --company-key KEY --scopes S1,S2 [flags]",
		"Registers a partner application and prints its client_id and client_secret.\nThe secret is stored only as a hash: copy it now.\nKnown scopes: "+strings.Join(slices.Sorted(maps.Keys(auth.KnownScopes)), ", "), stdout, stderr)
	c.String(&n.Name, "name", "NAME", "", "application name (required)")
	c.String(&n.CompanyKey, "company-key", "KEY", "", "partner key shown in tickets, at most 36 characters (required)")
	c.String(&scopes, "scopes", "SCOPES", "", "comma- or space-separated scopes to grant (required)")
	c.List(&redirects, "redirect-url", "URL", "exact redirect URL the application may use (repeatable)")
	c.String(&n.DeepLinkURL, "deep-link-url", "URL", "", "URL that opens the partner's app for the holder journey")
	c.String(&jwks, "jwks", "FILE", "", "file with the application's public JSON Web Key Set: signed Payments API\nrequest bodies are verified against it (each key public, with a kid,\nRSA ≥ 2048 bits or EC P-256)")
	c.Bool(&n.AcceptPlainJSON, "accept-plain-json", false, "Ponte extension: let the application send plain JSON bodies where the\nPayments and Automatic Payments APIs require signed JWTs (application/jwt),\nand read plain JSON answers; off by default (every answer signed)")
	c.String(&n.OrganisationID, "org-id", "UUID", "", "the application's organisation id at the Open Finance Directory: the iss of\nits signed requests and the aud of Ponte's signed answers (default: its client_id)")
	c.Alias("redirect-uri", "redirect-url")
	c.Storage(&cfg)
	if err := c.Parse(args); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	jwksJSON, err := readJWKS(jwks)
	if err != nil {
		return err
	}
	db, svc, err := openApps(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	n.Scopes = strings.FieldsFunc(scopes, func(r rune) bool { return r == ',' || r == ' ' })
	n.RedirectURLs = redirects
	n.JWKS = jwksJSON
	a, secret, err := svc.Create(ctx, n)
	if err != nil {
		return err
	}
	printApp(stdout, a)
	fmt.Fprintf(stdout, "client_secret: %s\n(shown once: store it now)\n", secret)
	return nil
}

func appsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		cfg    config.Config
		asJSON bool
	)
	c := newCommand("ponte apps list [flags]", "Lists partner applications (never their secrets).", stdout, stderr)
	c.Bool(&asJSON, "json", false, "print JSON")
	c.Storage(&cfg)
	if err := c.Parse(args); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	db, svc, err := openApps(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	list, err := svc.List(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(stdout, orEmpty(list))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT_ID\tSLUG\tNAME\tCOMPANY_KEY\tSTATUS\tSCOPES")
	for _, a := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ClientID, a.Slug, a.Name, a.CompanyKey, status(a), strings.Join(a.Scopes, " "))
	}
	return tw.Flush()
}

func appsShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("ponte apps show --app CLIENT_ID [flags]", "Shows one application by client_id or id (never its secret).", stdout, stderr)
	return runOnApp(ctx, c, args, func(svc *auth.Applications, app string) error {
		a, err := svc.Get(ctx, app)
		if err != nil {
			return err
		}
		printApp(stdout, a)
		return nil
	})
}

func appsRotateSecret(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("ponte apps rotate-secret --app CLIENT_ID [flags]", "Issues a new client_secret and prints it once; the old secret stops working.", stdout, stderr)
	return runOnApp(ctx, c, args, func(svc *auth.Applications, app string) error {
		a, secret, err := svc.RotateSecret(ctx, app)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "client_id:     %s\nclient_secret: %s\n(shown once: store it now; the previous secret no longer works)\n", a.ClientID, secret)
		return nil
	})
}

func appsDisable(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("ponte apps disable --app CLIENT_ID [flags]", "Disables an application: token requests fail and issued tokens are refused.", stdout, stderr)
	return runOnApp(ctx, c, args, func(svc *auth.Applications, app string) error {
		a, err := svc.Disable(ctx, app)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "application %s (%s) disabled\n", a.ClientID, a.Name)
		return nil
	})
}

func appsRename(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		cfg  config.Config
		app  string
		name string
	)
	c := newCommand("ponte apps rename --app CLIENT_ID --name NAME [flags]",
		"Changes the application's display name, shown in the WebView and the lists.\n"+
			"Its slug, the {client_name} of the interaction API's path, stays as it is,\n"+
			"so the partner's URLs keep working.", stdout, stderr)
	appFlag(c, &app)
	c.String(&name, "name", "NAME", "", "the new display name (required)")
	c.Storage(&cfg)
	if err := c.Parse(args); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	if err := c.Required("app", "name"); err != nil {
		return err
	}
	db, svc, err := openApps(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	a, err := svc.Rename(ctx, app, name)
	if err != nil {
		return err
	}
	printApp(stdout, a)
	return nil
}

// runOnApp parses a command that acts on one application, named by --app or,
// the old spelling kept, by one positional argument, and runs it.
func runOnApp(ctx context.Context, c *command, args []string, run func(svc *auth.Applications, app string) error) error {
	var (
		cfg config.Config
		app string
	)
	appFlag(c, &app)
	c.Storage(&cfg)
	if err := c.Parse(args); err != nil {
		return err
	}
	if c.NArg() == 1 && app == "" {
		app = c.Arg(0)
	} else if err := c.NoArgs(); err != nil {
		return err
	}
	if err := c.Required("app"); err != nil {
		return err
	}
	db, svc, err := openApps(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	return run(svc, app)
}

func appsSetKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		cfg  config.Config
		app  string
		jwks string
	)
	c := newCommand("ponte apps set-keys --app CLIENT_ID --jwks FILE [flags]",
		"Registers the application's public JSON Web Key Set, replacing the previous one.\n"+
			"Ponte verifies the application's signed Payments API request bodies (PS256, by kid)\n"+
			"against it. Every key must be public, have a kid, and be RSA ≥ 2048 bits or EC P-256;\n"+
			"a private key is refused. An empty file removes the keys.", stdout, stderr)
	appFlag(c, &app, "client-id")
	c.String(&jwks, "jwks", "FILE", "", "file holding the public JWKS, {\"keys\":[...]} (required)")
	c.Storage(&cfg)
	if err := c.Parse(args); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	if err := c.Required("app"); err != nil {
		return err
	}
	if !c.IsSet("jwks") {
		return c.Fail("--jwks is required")
	}
	jwksJSON, err := readJWKS(jwks)
	if err != nil {
		return err
	}
	db, svc, err := openApps(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	a, err := svc.SetJWKS(ctx, app, jwksJSON)
	if err != nil {
		return err
	}
	printApp(stdout, a)
	return nil
}

func appsSetPlainJSON(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		cfg    config.Config
		app    string
		accept bool
	)
	c := newCommand("ponte apps set-plain-json --app CLIENT_ID --accept=true|false [flags]",
		"Says whether the application may send plain JSON bodies (application/json) where the\n"+
			"Payments API requires signed JWTs (application/jwt). New applications may not; the\n"+
			"sandbox demo application may.", stdout, stderr)
	appFlag(c, &app, "client-id")
	c.Bool(&accept, "accept", false, "true: accept plain JSON bodies; false: require signed JWTs (required)")
	c.Storage(&cfg)
	if err := c.Parse(args); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	if err := c.Required("app"); err != nil {
		return err
	}
	if !c.IsSet("accept") {
		return c.Fail("--accept is required")
	}
	db, svc, err := openApps(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	a, err := svc.SetAcceptPlainJSON(ctx, app, accept)
	if err != nil {
		return err
	}
	printApp(stdout, a)
	return nil
}

func appsSet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		cfg    config.Config
		app    string
		orgID  string
		accept bool
	)
	c := newCommand("ponte apps set --app CLIENT_ID [--org-id UUID] [--accept-plain-json=true|false] [flags]",
		"Changes what is given. --org-id records the application's organisation id at the Open\n"+
			"Finance Directory: its signed requests must carry it as iss, and Ponte's signed answers\n"+
			"name it as aud ('' clears it: the client_id stands in). --accept-plain-json (a Ponte\n"+
			"extension) lets it send plain JSON bodies and read plain JSON answers; without it every\n"+
			"Payments and Automatic Payments answer is signed (application/jwt).", stdout, stderr)
	appFlag(c, &app)
	c.String(&orgID, "org-id", "UUID", "", "the application's organisation id")
	c.Bool(&accept, "accept-plain-json", false, "true: plain JSON allowed; false: signed JWTs only")
	c.Storage(&cfg)
	if err := c.Parse(args); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	if err := c.Required("app"); err != nil {
		return err
	}
	if !c.IsSet("org-id") && !c.IsSet("accept-plain-json") {
		return c.Fail("give --org-id, --accept-plain-json or both")
	}
	db, svc, err := openApps(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	var a *auth.Application
	if c.IsSet("org-id") {
		if a, err = svc.SetOrganisationID(ctx, app, orgID); err != nil {
			return err
		}
	}
	if c.IsSet("accept-plain-json") {
		if a, err = svc.SetAcceptPlainJSON(ctx, app, accept); err != nil {
			return err
		}
	}
	printApp(stdout, a)
	return nil
}

// appFlag declares the application's flag: --app, with the old spellings
// kept as hidden aliases (--client-id of set-keys and set-plain-json).
func appFlag(c *command, app *string, aliases ...string) {
	c.String(app, "app", "CLIENT_ID", "", "the application's client_id or id (required)")
	for _, a := range aliases {
		c.Alias(a, "app")
	}
}

// readJWKS reads the JWKS file named (nothing when name is empty).
func readJWKS(name string) ([]byte, error) {
	if name == "" {
		return nil, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read JWKS: %w", err)
	}
	return b, nil
}

// openApps opens the database and the partner applications in it.
func openApps(ctx context.Context, cfg config.Config) (*store.DB, *auth.Applications, error) {
	db, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		return nil, nil, err
	}
	apps := auth.NewApplications(db, clock.System{})
	// A database older than slugs gets them before the commands show any,
	// as 'ponte serve' does at start.
	if _, err := apps.BackfillSlugs(ctx); err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, apps, nil
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
	fmt.Fprintf(w, "slug:          %s\n", a.Slug)
	fmt.Fprintf(w, "companyKey:    %s\n", a.CompanyKey)
	fmt.Fprintf(w, "status:        %s\n", status(a))
	fmt.Fprintf(w, "scopes:        %s\n", strings.Join(a.Scopes, " "))
	fmt.Fprintf(w, "redirect URLs: %s\n", strings.Join(a.RedirectURLs, " "))
	fmt.Fprintf(w, "deep link:     %s\n", a.DeepLinkURL)
	fmt.Fprintf(w, "keys:          %d\n", a.KeyCount())
	fmt.Fprintf(w, "organisation:  %s\n", orgOrNone(a.OrganisationID))
	fmt.Fprintf(w, "plain JSON:    %s\n", map[bool]string{true: "accepted", false: "refused (signed JWT bodies only)"}[a.AcceptPlainJSON])
	fmt.Fprintf(w, "created:       %s\n", a.CreatedAt.Format("2006-01-02T15:04:05Z"))
}

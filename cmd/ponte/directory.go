package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/directory"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/validation"
)

var directoryGroup = group{
	name:    "directory",
	summary: "the sandbox's Open Finance Directory: issue software statements",
	about: `The sandbox ships its own Open Finance Directory: it signs software
statements (SSAs) with its key in DATA-DIR/sandbox-directory-key.pem, keeps
the public keys each software uploaded in its keystore
(PUBLIC-URL/sandbox/directory/keystore/{org_id}/{software_id}/application.jwks)
and lists the participants. An initiator presents the statement at POST
/register within 5 minutes of its issue. The same is served to admins at
POST /admin/v1/directory/software-statements.`,
	subs: []subcommand{
		{"issue-ssa", "record a software and print a software statement signed now"},
		{"list", "list the software the sandbox Directory issued statements for"},
	},
}

func directoryCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, rest, done, err := directoryGroup.dispatch(args, stdout, stderr)
	if done {
		return err
	}
	var (
		cfg                        config.Config
		c                          *command
		req                        directory.IssueRequest
		roles, redirects, webhooks stringList
		jwksFile, publicURL        string
		asJSON                     bool
	)
	switch sub {
	case "issue-ssa":
		c = newCommand("ponte directory issue-ssa --org-id UUID --role ROLE --redirect-url URL --jwks FILE [flags]",
			"Records the software (replacing an earlier record of the same organisation and software)\n"+
				"and prints, on standard output, a software statement signed now by the sandbox Directory.", stdout, stderr)
		c.String(&req.OrgID, "org-id", "UUID", "", "the organisation's id at the Directory (required)")
		c.String(&req.SoftwareID, "software-id", "UUID", "", "the software's id; absent: a new software, its id printed on standard error")
		c.List(&roles, "role", "ROLE", "a regulatory role: DADOS, PAGTO, CONTA or CCORR (repeatable, at least one)")
		c.List(&redirects, "redirect-url", "URL", "a redirect URL the software may register (repeatable, at least one)")
		c.List(&webhooks, "webhook-url", "URL", "a webhook base URL the software may register (repeatable)")
		c.String(&jwksFile, "jwks", "FILE", "", "file with the software's public JWKS, served by the keystore (required)")
		c.String(&req.OrgName, "org-name", "NAME", "", "the organisation's name (default: made from its id)")
		c.String(&req.OrgNumber, "org-number", "CNPJ", "", "the organisation's CNPJ, 14 digits")
		c.String(&req.ClientName, "client-name", "NAME", "", "the software's name (default: made from its id)")
		c.String(&publicURL, "public-url", "URL", envOr("PONTE_PUBLIC_URL", "http://127.0.0.1:8080"),
			"the public URL of the ponte serve the statement is for: its keystore is under it (env PONTE_PUBLIC_URL)")
		c.Alias("redirect-uri", "redirect-url")
		c.Alias("webhook-uri", "webhook-url")
	case "list":
		c = newCommand("ponte directory list [flags]", "Lists the software the sandbox Directory issued statements for.", stdout, stderr)
		c.Bool(&asJSON, "json", false, "print JSON instead of a table")
		c.String(&publicURL, "public-url", "URL", envOr("PONTE_PUBLIC_URL", "http://127.0.0.1:8080"),
			"the public URL of the ponte serve whose keystore the software_jwks_uri is under (env PONTE_PUBLIC_URL)")
	}
	c.Storage(&cfg)
	if err := c.Parse(rest); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	publicURL = strings.TrimRight(publicURL, "/")
	if u, err := url.Parse(publicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c.Fail("--public-url %q must be an absolute http(s) URL", publicURL)
	}
	if sub == "issue-ssa" {
		if err := c.Required("org-id", "jwks"); err != nil {
			return err
		}
		if len(roles) == 0 {
			return c.Fail("--role is required")
		}
		if len(redirects) == 0 {
			return c.Fail("--redirect-url is required")
		}
		b, err := os.ReadFile(jwksFile)
		if err != nil {
			return fmt.Errorf("read --jwks: %w", err)
		}
		req.JWKS, req.Roles, req.RedirectURIs, req.WebhookURIs = json.RawMessage(b), roles, redirects, webhooks
	}
	db, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		return err
	}
	defer db.Close()
	// The key ponte serve signs with in the sandbox; created here when the
	// CLI runs first, and then used by serve. A key set's is never created.
	keyPath := filepath.Join(cfg.KeyDir(), app.SandboxDirectoryKeyFile)
	if cfg.KeysDir != "" {
		if _, err := os.Stat(keyPath); err != nil {
			return fmt.Errorf("the sandbox Directory key: %w (a sandbox key set holds it: ponte keys init --sandbox)", err)
		}
	}
	key, err := auth.LoadOrCreateKey(keyPath)
	if err != nil {
		return err
	}
	sb, err := directory.NewSandbox(db, clock.System{}, key.Private, key.KeyID, publicURL+directory.PathKeystore)
	if err != nil {
		return err
	}
	switch sub {
	case "issue-ssa":
		sw, ssa, err := sb.Issue(ctx, req)
		var verr *validation.Error
		if errors.As(err, &verr) {
			return c.Fail("%s", verr.Error())
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, ssa)
		fmt.Fprintf(stderr, "software %s of organisation %s: roles %s, keystore %s\n(the statement is valid at POST /register for 5 minutes)\n",
			sw.SoftwareID, sw.OrgID, strings.Join(sw.Roles, " "), directory.KeystoreJWKSURI(sb.Keystore(), sw.OrgID, sw.SoftwareID))
	case "list":
		list, err := sb.List(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			out := make([]directory.SoftwareJSON, 0, len(list))
			for i := range list {
				out = append(out, sb.JSON(&list[i]))
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ORG_ID\tSOFTWARE_ID\tNAME\tROLES\tKEYS\tREDIRECT_URLS")
		for _, sw := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", sw.OrgID, sw.SoftwareID, sw.ClientName, strings.Join(sw.Roles, ","),
				len(sw.JWKS.Keys), strings.Join(sw.RedirectURIs, " "))
		}
		return tw.Flush()
	}
	return nil
}

// envOr is the environment variable name's value, or def when unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

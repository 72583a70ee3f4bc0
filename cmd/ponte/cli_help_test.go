package main

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// storageFlags are the database flags every command but version has.
var storageFlags = []string{"data-dir", "data-key", "database-url", "keys-dir"}

// leafCommands is every command that runs, with the flags its help must list
// (besides the storage flags) and the hidden aliases it must not list. The
// list is written out here, not taken from the code, so a command or flag
// that disappears from the help fails the test.
var leafCommands = []struct {
	args    []string
	flags   []string
	hidden  []string
	storage bool
}{
	{[]string{"serve"}, []string{"addr", "mode", "public-url", "signing-key", "token-ttl", "log-format", "shutdown-timeout",
		"apple-root-ca", "mastercard-tav-key", "mastercard-pepk", "network-secret", "tls-cert", "tls-key", "client-ca",
		"transport-cert", "transport-key", "transport-ca", "admin-token", "pcm-floor", "pcm-url", "pcm-token-url", "pcm-client-id", "pcm-client-secret", "pcm-cert", "pcm-key",
		"pcm-org-id", "pcm-spec", "org-id", "settlement", "settlement-deadline", "ledger-pix-limit", "itp-cnpj", "itp-ispb",
		"itp-encryption-key", "directory-jwks", "directory-issuer", "directory-keystore", "drain-delay", "instance", "job-lease", "pcm-lease"}, nil, true},
	{[]string{"migrate"}, nil, nil, true},
	{[]string{"version"}, nil, nil, false},
	{[]string{"apps", "create"}, []string{"name", "company-key", "scopes", "redirect-url", "deep-link-url", "jwks", "accept-plain-json", "org-id"}, []string{"redirect-uri"}, true},
	{[]string{"apps", "list"}, []string{"json"}, nil, true},
	{[]string{"apps", "show"}, []string{"app"}, nil, true},
	{[]string{"apps", "rotate-secret"}, []string{"app"}, nil, true},
	{[]string{"apps", "disable"}, []string{"app"}, nil, true},
	{[]string{"apps", "rename"}, []string{"app", "name"}, nil, true},
	{[]string{"apps", "set-keys"}, []string{"app", "jwks"}, []string{"client-id"}, true},
	{[]string{"apps", "set-plain-json"}, []string{"app", "accept"}, []string{"client-id"}, true},
	{[]string{"apps", "set"}, []string{"app", "org-id", "accept-plain-json"}, nil, true},
	{[]string{"initiators", "add"}, []string{"app", "name", "jwks", "redirect-url", "org-id", "webhook-url"}, []string{"client-id", "redirect-uri"}, true},
	{[]string{"initiators", "list"}, nil, nil, true},
	{[]string{"directory", "issue-ssa"}, []string{"org-id", "software-id", "role", "redirect-url", "webhook-url", "jwks", "org-name",
		"org-number", "client-name", "public-url"}, []string{"redirect-uri", "webhook-uri"}, true},
	{[]string{"directory", "list"}, []string{"json", "public-url"}, nil, true},
	{[]string{"customers", "add"}, []string{"app", "document", "name"}, nil, true},
	{[]string{"customers", "list"}, []string{"app", "json"}, nil, true},
	{[]string{"accounts", "add"}, []string{"app", "document", "ispb", "issuer", "number", "type", "status"}, nil, true},
	{[]string{"accounts", "list"}, []string{"app", "document", "json"}, nil, true},
	{[]string{"accounts", "import"}, []string{"app", "document", "account", "file"}, []string{"client-id"}, true},
	{[]string{"cards", "create"}, []string{"app", "proxy", "expiry-month", "expiry-year", "name", "phone", "zip-code", "street",
		"number", "neighborhood", "complement", "city", "state", "country", "brand", "status"}, nil, true},
	{[]string{"cards", "list"}, []string{"app", "json"}, nil, true},
	{[]string{"cards", "set-status"}, []string{"app"}, nil, true},
	{[]string{"cards", "apple-test-device"}, []string{"out"}, nil, true},
	// brands add --client-id is Ponte's client_id at the brand, not a partner application: it stays.
	{[]string{"brands", "add"}, []string{"name", "issuer", "api-base-url", "client-id", "org-id", "discovery-url", "logo-url", "key-file", "mtls-cert", "mtls-key"}, nil, true},
	{[]string{"brands", "list"}, []string{"json"}, nil, true},
	{[]string{"brands", "update"}, []string{"brand", "org-id"}, []string{"id"}, true},
	{[]string{"brands", "disable"}, []string{"brand"}, []string{"id"}, true},
	{[]string{"journeys", "create"}, []string{"alias", "name", "brand", "app", "setting"}, []string{"client-id"}, true},
	{[]string{"journeys", "list"}, []string{"json"}, nil, true},
	{[]string{"journeys", "set-default"}, []string{"app", "alias"}, []string{"client-id"}, true},
	{[]string{"pcm", "status"}, []string{"json"}, nil, true},
	{[]string{"pcm", "replay"}, []string{"from", "to", "endpoint"}, nil, true},
	{[]string{"keys", "init"}, []string{"dir", "org-id", "sandbox"}, nil, false},
	{[]string{"keys", "show"}, []string{"dir", "database-url"}, nil, false},
}

// flagRow is one row of a help's flag table: "  --name META  description".
var flagRow = regexp.MustCompile(`^  --([a-z0-9-]+)(?: ([A-Z][A-Z0-9_:=.|-]*))?( +)\S`)

// helpFlags checks that the "Flags:" table of a help is aligned (every
// description starts in one column, continuation lines too) and that
// every value placeholder is written in capitals, and returns the flags in
// the order listed.
func helpFlags(t *testing.T, help string) []string {
	t.Helper()
	_, table, ok := strings.Cut(help, "\nFlags:\n")
	if !ok {
		return nil
	}
	var names []string
	column := -1
	for _, line := range strings.Split(strings.TrimRight(table, "\n"), "\n") {
		if m := flagRow.FindStringSubmatchIndex(line); m != nil {
			names = append(names, line[m[2]:m[3]])
			col := m[7] // where the padding ends: the description column
			if column == -1 {
				column = col
			} else if col != column {
				t.Errorf("flag --%s: description in column %d, the others in %d\n%s", line[m[2]:m[3]], col, column, help)
			}
			continue
		}
		if column == -1 || len(line) <= column || strings.TrimSpace(line[:column]) != "" || line[column] == ' ' {
			t.Errorf("flag table line %q is neither a flag nor a continuation aligned at column %d\n%s", line, column, help)
		}
	}
	return names
}

// TestCLIEveryCommandHelp asks every command for its help in each way a
// user can: it goes to standard output, exits 0, names the command, lists
// exactly the command's flags in an aligned table (hidden aliases left out)
// and leaves the data directory alone.
func TestCLIEveryCommandHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range leafCommands {
		want := slices.Clone(tc.flags)
		if tc.storage {
			want = append(want, storageFlags...)
		}
		slices.Sort(want)
		forms := [][]string{
			append(slices.Clone(tc.args), "--help"),
			append(slices.Clone(tc.args), "-h"),
			append([]string{"help"}, tc.args...),
		}
		for _, args := range forms {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				r := ponteCLI(t, args...)
				if r.code != 0 || r.stderr != "" {
					t.Fatalf("want exit 0 and nothing on standard error\n%s", r)
				}
				if !strings.HasPrefix(r.stdout, "Usage: ponte "+strings.Join(tc.args, " ")) {
					t.Errorf("help does not start with the command's usage line\n%s", r)
				}
				got := helpFlags(t, r.stdout)
				if got == nil && len(want) > 0 {
					t.Fatalf("help has no flag table\n%s", r)
				}
				if !slices.Equal(slices.Sorted(slices.Values(got)), want) {
					t.Errorf("help lists flags %v, want %v\n%s", got, want, r)
				}
				for _, h := range tc.hidden {
					if strings.Contains(r.stdout, "--"+h+" ") || strings.Contains(r.stdout, "--"+h+"\n") {
						t.Errorf("hidden alias --%s is listed\n%s", h, r)
					}
				}
			})
		}
	}
}

// TestCLIHelpIsNotABanner: serve's help describes the command and its
// flags; it does not print what a running server prints.
func TestCLIHelpIsNotABanner(t *testing.T) {
	t.Parallel()
	r := mustCLI(t, 0, "serve", "--help")
	for _, phrase := range []string{"Ponte is running", "printed below", "client_secret:", "Sandbox demo", "admin token:", "OpenAPI:"} {
		if strings.Contains(r.output(), phrase) {
			t.Errorf("serve --help contains the banner phrase %q\n%s", phrase, r)
		}
	}
	for _, w := range []string{"Runs the HTTP server", "--addr HOST:PORT", "--database-url URL"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("serve --help does not say %q\n%s", w, r)
		}
	}
}

// TestCLICommandList checks that ponte's command list names every command
// and subcommand, and that each group's help lists its subcommands.
func TestCLICommandList(t *testing.T) {
	t.Parallel()
	top := mustCLI(t, 0, "--help")
	subs := map[string][]string{}
	for _, tc := range leafCommands {
		if len(tc.args) == 2 {
			subs[tc.args[0]] = append(subs[tc.args[0]], tc.args[1])
		}
		if !regexp.MustCompile(`(?m)^  ` + tc.args[0] + ` `).MatchString(top.stdout) {
			t.Errorf("ponte --help does not list %q\n%s", tc.args[0], top)
		}
	}
	if !strings.Contains(top.stdout, "\n  help ") {
		t.Errorf("ponte --help does not list help\n%s", top)
	}
	for g, names := range subs {
		line := regexp.MustCompile(`(?m)^  ` + g + ` .*$`).FindString(top.stdout)
		for _, n := range names {
			if !strings.Contains(line, n) {
				t.Errorf("ponte --help line of %s does not name %s: %q", g, n, line)
			}
		}
		for _, args := range [][]string{{g, "--help"}, {g, "-h"}, {g, "help"}, {"help", g}} {
			r := ponteCLI(t, args...)
			if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "Usage: ponte "+g+" <command>") {
				t.Errorf("want the group's help on standard output, exit 0\n%s", r)
				continue
			}
			for _, n := range names {
				if !regexp.MustCompile(`(?m)^  ` + n + ` +\S`).MatchString(r.stdout) {
					t.Errorf("%v does not list %s\n%s", args, n, r)
				}
			}
		}
		// No subcommand or an unknown one: a usage error on standard error.
		for _, args := range [][]string{{g}, {g, "frobnicate"}} {
			r := ponteCLI(t, args...)
			if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "Usage: ponte "+g+" <command>") {
				t.Errorf("want exit 2 and the group's help on standard error\n%s", r)
			}
		}
	}
	if r := ponteCLI(t); r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "Commands:") {
		t.Errorf("ponte alone: want exit 2 and the command list on standard error\n%s", r)
	}
}

// TestCLIUnknownFlag gives every command a flag it does not have.
func TestCLIUnknownFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range leafCommands {
		args := append(slices.Clone(tc.args), "--frobnicate", "x")
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := ponteCLI(t, args...)
			if r.code != 2 || r.stdout != "" {
				t.Fatalf("want exit 2 and nothing on standard output\n%s", r)
			}
			name := "ponte " + strings.Join(tc.args, " ")
			if !strings.HasPrefix(r.stderr, name+": unknown flag --frobnicate\n") || !strings.Contains(r.stderr, "Usage: "+name) {
				t.Errorf("stderr does not start with %q and show the usage\n%s", name+": unknown flag --frobnicate", r)
			}
		})
	}
}

// TestCommandAlias checks the alias mechanism itself: an alias sets the
// canonical flag's value, counts as setting it, and stays out of the help.
func TestCommandAlias(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--app", "a1"}, []string{"a1"}},
		{[]string{"--client-id", "a1"}, []string{"a1"}},
		{[]string{"-client-id=a1"}, []string{"a1"}},
		{[]string{"--client-id", "a1", "--app", "a2"}, []string{"a1", "a2"}},
	} {
		var stdout, stderr bytes.Buffer
		var apps stringList
		c := newCommand("ponte test --app CLIENT_ID", "Tests.", &stdout, &stderr)
		c.List(&apps, "app", "CLIENT_ID", "the application")
		c.Alias("client-id", "app")
		if err := c.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, stderr.String())
		}
		if !slices.Equal(apps, tc.want) || !c.IsSet("app") {
			t.Errorf("%v: --app is %v (set %t), want %v", tc.args, apps, c.IsSet("app"), tc.want)
		}
		c.PrintHelp(&stdout)
		if strings.Contains(stdout.String(), "client-id") {
			t.Errorf("the alias shows in the help:\n%s", stdout.String())
		}
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Helpers shared by every command: the help printer, the flag sets with
// hidden aliases, and the command groups (apps, cards, initiators, ...).
//
// Help asked for (--help, -h, help) goes to standard output and exits 0; a
// usage mistake goes to standard error with the help and exits 2.

// errUsage marks a command-line mistake already explained to the user.
var errUsage = errors.New("usage error")

// command is one leaf command ("ponte apps create"): its flag set, help text
// and the presentation the standard flag package lacks (declaration order,
// value placeholders, hidden aliases).
type command struct {
	name    string // "ponte apps create"
	usage   string // the synopsis after "Usage: "
	summary string
	fs      *flag.FlagSet
	stdout  io.Writer
	stderr  io.Writer
	order   []string          // flag names in declaration order
	meta    map[string]string // flag name → value placeholder, "" for a switch
	aliases map[string]string // hidden alias → canonical flag name
}

// newCommand starts a command whose synopsis is usage; its name is the
// synopsis up to the first flag or argument.
func newCommand(usage, summary string, stdout, stderr io.Writer) *command {
	var name []string
	for _, w := range strings.Fields(usage) {
		if strings.HasPrefix(w, "-") || strings.HasPrefix(w, "[") || strings.ToUpper(w) == w {
			break
		}
		name = append(name, w)
	}
	fs := flag.NewFlagSet(strings.Join(name, " "), flag.ContinueOnError)
	// Parse reports errors itself, to the right stream, in the help's format.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &command{name: fs.Name(), usage: usage, summary: summary, fs: fs, stdout: stdout, stderr: stderr,
		meta: map[string]string{}, aliases: map[string]string{}}
}

func (c *command) define(name, meta string) {
	c.order = append(c.order, name)
	c.meta[name] = meta
}

// String defines a string flag whose value is shown as meta (e.g. CLIENT_ID).
func (c *command) String(p *string, name, meta, value, usage string) {
	c.fs.StringVar(p, name, value, usage)
	c.define(name, meta)
}

// Bool defines a switch.
func (c *command) Bool(p *bool, name string, value bool, usage string) {
	c.fs.BoolVar(p, name, value, usage)
	c.define(name, "")
}

// Int defines an integer flag.
func (c *command) Int(p *int, name, meta string, value int, usage string) {
	c.fs.IntVar(p, name, value, usage)
	c.define(name, meta)
}

// List defines a repeatable string flag.
func (c *command) List(p *stringList, name, meta, usage string) {
	c.fs.Var(p, name, usage)
	c.define(name, meta)
}

// Alias makes --alias a hidden second name of --canonical: it sets the same
// value and is left out of the help. Old spellings stay working this way.
func (c *command) Alias(alias, canonical string) {
	f := c.fs.Lookup(canonical)
	if f == nil {
		panic("alias of undefined flag --" + canonical) // a programming error, found by the tests
	}
	c.fs.Var(f.Value, alias, "same as --"+canonical)
	c.aliases[alias] = canonical
}

// storageMeta and serveMeta name the values of the flags internal/config
// defines; a config flag missing here is shown with its Go type.
var storageMeta = map[string]string{"database-url": "URL", "data-dir": "DIR", "data-key": "FILE", "keys-dir": "DIR"}

var serveMeta = map[string]string{
	"addr": "HOST:PORT", "mode": "MODE", "public-url": "URL", "signing-key": "FILE", "token-ttl": "DURATION",
	"log-format": "FORMAT", "shutdown-timeout": "DURATION", "apple-root-ca": "FILE", "mastercard-tav-key": "FILE",
	"mastercard-pepk": "FILE", "network-secret": "FILE", "tls-cert": "FILE", "tls-key": "FILE", "client-ca": "FILE",
	"transport-cert": "FILE", "transport-key": "FILE", "transport-ca": "FILE",
	"admin-token": "TOKEN", "pcm-floor": "FRACTION", "pcm-url": "URL", "pcm-token-url": "URL", "pcm-client-id": "ID",
	"pcm-client-secret": "SECRET", "pcm-cert": "FILE", "pcm-key": "FILE", "pcm-org-id": "UUID", "org-id": "UUID", "pcm-spec": "FILE",
	"settlement": "MODE", "settlement-deadline": "DURATION", "ledger-pix-limit": "AMOUNT", "itp-cnpj": "CNPJ", "itp-ispb": "ISPB",
	"itp-encryption-key": "FILES", "directory-jwks": "URL|FILE", "directory-issuer": "ISSUER", "directory-keystore": "URL",
}

// Storage adds the database flags every database-using command shares.
func (c *command) Storage(cfg *config.Config) { c.external(cfg.RegisterStorage, storageMeta) }

// Serve adds the flags of `ponte serve`.
func (c *command) Serve(cfg *config.Config) { c.external(cfg.RegisterServe, serveMeta) }

// external runs a registration that writes to the flag set directly and
// records its flags, in name order, with their placeholders.
func (c *command) external(register func(*flag.FlagSet), meta map[string]string) {
	known := map[string]bool{}
	c.fs.VisitAll(func(f *flag.Flag) { known[f.Name] = true })
	register(c.fs)
	c.fs.VisitAll(func(f *flag.Flag) {
		if known[f.Name] {
			return
		}
		m, ok := meta[f.Name]
		if !ok {
			m, ok = storageMeta[f.Name] // RegisterServe includes the storage flags
		}
		if !ok {
			m, _ = flag.UnquoteUsage(f)
			m = strings.ToUpper(m)
		}
		if isSwitch(f) {
			m = ""
		}
		c.define(f.Name, m)
	})
}

func isSwitch(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// Parse parses args. Help asked for is printed to standard output and
// returns flag.ErrHelp; a mistake is explained on standard error and returns
// errUsage.
func (c *command) Parse(args []string) error {
	err := c.fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		c.PrintHelp(c.stdout)
		return flag.ErrHelp
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		msg = "unknown flag --" + strings.TrimLeft(name, "-")
	}
	return c.Fail("%s", msg)
}

// Fail explains a usage mistake, then the command's help, on standard error.
func (c *command) Fail(format string, args ...any) error {
	fmt.Fprintf(c.stderr, "%s: %s\n\n", c.name, fmt.Sprintf(format, args...))
	c.PrintHelp(c.stderr)
	return errUsage
}

// Required fails unless each named flag has a non-empty value.
func (c *command) Required(names ...string) error {
	for _, n := range names {
		if c.fs.Lookup(n).Value.String() == "" {
			return c.Fail("--%s is required", n)
		}
	}
	return nil
}

// NoArgs fails if positional arguments follow the flags.
func (c *command) NoArgs() error {
	if c.fs.NArg() != 0 {
		return c.Fail("unexpected argument %q", c.fs.Arg(0))
	}
	return nil
}

// IsSet reports whether the flag (or one of its aliases) was given.
func (c *command) IsSet(name string) bool {
	set := false
	c.fs.Visit(func(f *flag.Flag) { set = set || f.Name == name || c.aliases[f.Name] == name })
	return set
}

func (c *command) NArg() int        { return c.fs.NArg() }
func (c *command) Arg(i int) string { return c.fs.Arg(i) }

// PrintHelp writes the synopsis, the summary and an aligned flag table:
//
//	--name VALUE   description
//	               continued
func (c *command) PrintHelp(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", c.usage, strings.Join(wrap(c.summary, helpWidth), "\n"))
	if len(c.order) == 0 {
		return
	}
	rows := make([][2]string, 0, len(c.order))
	width := 0
	for _, name := range c.order {
		left := "--" + name
		if m := c.meta[name]; m != "" {
			left += " " + m
		}
		width = max(width, len(left))
		rows = append(rows, [2]string{left, c.describe(c.fs.Lookup(name))})
	}
	fmt.Fprintln(w, "\nFlags:")
	for _, r := range rows {
		for i, l := range wrap(r[1], max(40, helpWidth-width-4)) {
			if i == 0 {
				fmt.Fprintf(w, "  %-*s  %s\n", width, r[0], l)
			} else {
				fmt.Fprintf(w, "  %*s  %s\n", width, "", l)
			}
		}
	}
}

// helpWidth is the line length help text is wrapped to.
const helpWidth = 100

// wrap splits text into lines of at most width characters at spaces,
// keeping its own line breaks; a longer word gets a line of its own.
func wrap(text string, width int) []string {
	var lines []string
	for _, para := range strings.Split(text, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			switch {
			case line == "":
				line = word
			case len([]rune(line))+1+len([]rune(word)) > width:
				lines = append(lines, line)
				line = word
			default:
				line += " " + word
			}
		}
		lines = append(lines, line)
	}
	return lines
}

// describe is a flag's usage text with its default, when it has one worth saying.
func (c *command) describe(f *flag.Flag) string {
	_, usage := flag.UnquoteUsage(f)
	if f.DefValue == "" || isSwitch(f) && f.DefValue == "false" || f.DefValue == "0" {
		return usage
	}
	return fmt.Sprintf("%s (default %q)", usage, f.DefValue)
}

// group is a command with subcommands ("ponte apps").
type group struct {
	name    string // "apps"
	summary string // one line, for ponte's command list
	about   string // what the group manages, a paragraph
	subs    []subcommand
	after   string // extra lines after the "Run ... --help" line
}

type subcommand struct {
	name    string // "rotate-secret"
	summary string
}

// subcommands lists the names, for the top-level command list.
func (g group) subcommands() string {
	names := make([]string, len(g.subs))
	for i, s := range g.subs {
		names[i] = s.name
	}
	return strings.Join(names, ", ")
}

func (g group) printHelp(w io.Writer) {
	fmt.Fprintf(w, "Usage: ponte %s <command> [flags]\n\n%s\n\nCommands:\n", g.name, g.about)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range g.subs {
		fmt.Fprintf(tw, "  %s\t%s\n", s.name, s.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun 'ponte %s <command> --help' for a command's flags.\n%s", g.name, g.after)
}

// dispatch handles what every group does before its subcommand runs: help
// (standard output, exit 0), no subcommand or an unknown one (standard
// error, exit 2). It returns the subcommand and its arguments when one of
// the group's subcommands was named; done reports that nothing is left to do.
func (g group) dispatch(args []string, stdout, stderr io.Writer) (sub string, rest []string, done bool, err error) {
	switch {
	case len(args) == 0:
		fmt.Fprintf(stderr, "ponte %s: missing command\n\n", g.name)
		g.printHelp(stderr)
		return "", nil, true, errUsage
	case args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help":
		if len(args) > 1 && args[0] == "help" { // ponte apps help create
			return g.dispatch([]string{args[1], "--help"}, stdout, stderr)
		}
		g.printHelp(stdout)
		return "", nil, true, nil
	case !slices.ContainsFunc(g.subs, func(s subcommand) bool { return s.name == args[0] }):
		fmt.Fprintf(stderr, "ponte %s: unknown command %q\n\n", g.name, args[0])
		g.printHelp(stderr)
		return "", nil, true, errUsage
	}
	return args[0], args[1:], false, nil
}

// applicationID resolves a partner application's client_id (or id) to its id.
func applicationID(ctx context.Context, db *store.DB, clientID string) (string, error) {
	a, err := auth.NewApplications(db, clock.System{}).Get(ctx, clientID)
	if err != nil {
		return "", fmt.Errorf("application %s: %w", clientID, err)
	}
	return a.ID, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func orEmpty[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

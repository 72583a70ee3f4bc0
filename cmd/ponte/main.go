// Command ponte is the Ponte Open Finance Brasil platform: one binary that
// serves every role and manages its partner applications.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `ponte — a self-hosted Open Finance Brasil platform.

Usage:
  ponte <command> [flags]

Commands:
  serve     run the HTTP server (SQLite in ./data by default, sandbox mode)
  migrate   apply database migrations and exit
  apps      manage partner applications: create, list, show, rotate-secret, disable, set-keys, set-plain-json
  cards     manage the card vault: create, list, set-status, apple-test-device
  initiators  register Open Finance initiators with the authorization server: add, list
  customers   manage a holder partner's customers (end users): add, list
  accounts    manage customers' bank accounts: add, list, import (balances, limits, transactions)
  brands      manage the account holders Ponte initiates at (ITP side): add, list, disable
  journeys    manage journeys of Open Keys journey sessions: create, list, set-default
  pcm         PCM forwarding: status (pending/accepted/rejected), replay rejected items
  version   print the version

Run 'ponte <command> --help' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal starts a graceful shutdown, restore the default
	// handling so a second Ctrl-C ends a stuck shutdown at once.
	go func() { <-ctx.Done(); stop() }()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = serve(ctx, rest, stdout, stderr)
	case "migrate":
		err = migrate(ctx, rest, stdout, stderr)
	case "apps":
		err = apps(ctx, rest, stdout, stderr)
	case "cards":
		err = cardsCmd(ctx, rest, stdin, stdout, stderr)
	case "initiators":
		err = initiatorsCmd(ctx, rest, stdout, stderr)
	case "customers":
		err = customersCmd(ctx, rest, stdout, stderr)
	case "accounts":
		err = accountsCmd(ctx, rest, stdout, stderr)
	case "brands":
		err = brandsCmd(ctx, rest, stdout, stderr)
	case "journeys":
		err = journeysCmd(ctx, rest, stdout, stderr)
	case "pcm":
		err = pcmCmd(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "ponte", version)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "ponte: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintln(stderr, "ponte:", err)
		return 1
	}
}

// errUsage marks a command-line mistake already explained to the user.
var errUsage = errors.New("usage error")

// newFlagSet returns a flag set that prints the command's help to stderr.
func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

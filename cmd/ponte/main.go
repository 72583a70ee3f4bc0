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
	"text/tabwriter"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// topCommand is one line of ponte's command list.
type topCommand struct{ name, summary string }

// commands is ponte's command list; groups add their subcommands to it.
func commands() []topCommand {
	list := []topCommand{
		{"serve", "run the HTTP server (SQLite in ./data by default, sandbox mode)"},
		{"migrate", "apply database migrations and exit"},
	}
	for _, g := range groups {
		list = append(list, topCommand{g.name, g.summary + ": " + g.subcommands()})
	}
	return append(list,
		topCommand{"version", "print the version"},
		topCommand{"help", "print this list, or a command's help (ponte help COMMAND)"})
}

// groups are the commands with subcommands, in the order ponte lists them.
var groups = []group{appsGroup, initiatorsGroup, directoryGroup, customersGroup, accountsGroup, cardsGroup, brandsGroup, journeysGroup, pcmGroup, keysGroup}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "ponte — a self-hosted Open Finance Brasil platform.\n\nUsage:\n  ponte <command> [flags]\n\nCommands:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, "\nRun 'ponte <command> --help' for a command's flags.\n")
}

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
		printUsage(stderr)
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
	case "directory":
		err = directoryCmd(ctx, rest, stdout, stderr)
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
	case "keys":
		err = keysCmd(ctx, rest, stdout, stderr)
	case "version":
		err = versionCmd(rest, stdout, stderr)
	case "help", "-h", "--help", "-help":
		if cmd == "help" && len(rest) > 0 { // ponte help apps create: that command's help
			return run(ctx, append(rest, "--help"), stdin, stdout, stderr)
		}
		printUsage(stdout)
	default:
		fmt.Fprintf(stderr, "ponte: unknown command %q\n\n", cmd)
		printUsage(stderr)
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

func versionCmd(args []string, stdout, stderr io.Writer) error {
	c := newCommand("ponte version", "Prints the version of this ponte binary.", stdout, stderr)
	if err := c.Parse(args); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "ponte", version)
	return nil
}

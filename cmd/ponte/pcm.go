package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/pcm"
	"github.com/ponte-ofb/ponte/internal/store"
)

const pcmUsage = `Usage: ponte pcm <command> [flags]

Inspects forwarding of journey steps to the PCM (hybrid flow v1.0.4). Each
recorded step is an outbox item: pending until the PCM accepts it, or
rejected with the PCM's reason (kept, never resent until replayed).

Commands:
  status   print pending, accepted and rejected counts and the deadline risk
  replay   re-queue rejected items of a period after the cause is fixed

Run 'ponte pcm <command> --help' for a command's flags.
`

func pcmCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if done, err := groupHelp(args, pcmUsage, stdout); done {
		return err
	}
	sub, rest := args[0], args[1:]
	var (
		cfg              config.Config
		fs               *flag.FlagSet
		asJSON           bool
		from, to, endpnt string
	)
	switch sub {
	case "status":
		fs = newFlagSet("ponte pcm status [flags]", "Prints the PCM outbox counts: pending, accepted, rejected, and items at risk\n"+
			"(pending within 2 h of their deadline, 08:00 America/Sao_Paulo of the day after the step).", stderr)
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	case "replay":
		fs = newFlagSet("ponte pcm replay --from DATE --to DATE [flags]",
			"Puts the rejected items of steps that happened in [from, to) back in the queue, due now.\n"+
				"Dates are YYYY-MM-DD (UTC; --to includes its day) or RFC 3339 instants (--to exclusive).", stderr)
		fs.StringVar(&from, "from", "", "start of the period (required)")
		fs.StringVar(&to, "to", "", "end of the period (required)")
		fs.StringVar(&endpnt, "endpoint", "", "only this PCM endpoint, e.g. server/redirect-to-client (default: all six)")
	default:
		fmt.Fprintf(stderr, "ponte pcm: unknown command %q\n\n%s", sub, pcmUsage)
		return errUsage
	}
	cfg.RegisterStorage(fs)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	var fromT, toT time.Time
	if sub == "replay" {
		var err error
		if fromT, err = parseDay(from, false); err != nil {
			fmt.Fprintln(stderr, "ponte pcm replay: --from:", err)
			return errUsage
		}
		if toT, err = parseDay(to, true); err != nil {
			fmt.Fprintln(stderr, "ponte pcm replay: --to:", err)
			return errUsage
		}
		if !fromT.Before(toT) {
			fmt.Fprintln(stderr, "ponte pcm replay: --from must be before --to")
			return errUsage
		}
		if endpnt != "" && !slices.Contains(pcm.Endpoints, endpnt) {
			fmt.Fprintf(stderr, "ponte pcm replay: --endpoint must be one of %s\n", strings.Join(pcm.Endpoints, ", "))
			return errUsage
		}
	}
	db, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		return err
	}
	defer db.Close()
	now := clock.System{}.Now()
	if sub == "status" {
		st, err := pcm.Status(ctx, db.Read(), now)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, st)
		}
		fmt.Fprintf(stdout, "pending   %d\naccepted  %d\nrejected  %d\nat risk   %d\n", st.Pending, st.Accepted, st.Rejected, st.AtRisk)
		if !st.OldestPending.IsZero() {
			fmt.Fprintf(stdout, "oldest pending step  %s\nnext deadline        %s\n",
				st.OldestPending.Format(time.RFC3339), st.NextDeadline.Format(time.RFC3339))
		}
		return nil
	}
	var n int64
	err = db.Write(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = pcm.Replay(ctx, tx, now, fromT, toT, endpnt)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d rejected items re-queued (steps from %s to %s)\n", n, fromT.Format(time.RFC3339), toT.Format(time.RFC3339))
	return nil
}

// parseDay reads YYYY-MM-DD (UTC; as an end, the day after) or RFC 3339.
func parseDay(v string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, fmt.Errorf("required")
	}
	if d, err := time.Parse("2006-01-02", v); err == nil {
		if end {
			d = d.AddDate(0, 0, 1)
		}
		return d.UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither YYYY-MM-DD nor RFC 3339", v)
	}
	return t.UTC(), nil
}

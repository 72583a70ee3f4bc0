package main

import (
	"context"
	"database/sql"
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

var pcmGroup = group{
	name:    "pcm",
	summary: "inspect and replay PCM forwarding",
	about: `Inspects forwarding of journey steps to the PCM (hybrid flow v1.0.4). Each
recorded step is an outbox item: pending until the PCM accepts it, or
rejected with the PCM's reason (kept, never resent until replayed).`,
	subs: []subcommand{
		{"status", "print pending, accepted and rejected counts and the deadline risk"},
		{"replay", "re-queue rejected items of a period after the cause is fixed"},
	},
}

func pcmCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, rest, done, err := pcmGroup.dispatch(args, stdout, stderr)
	if done {
		return err
	}
	var (
		cfg              config.Config
		c                *command
		asJSON           bool
		from, to, endpnt string
	)
	switch sub {
	case "status":
		c = newCommand("ponte pcm status [flags]", "Prints the PCM outbox counts: pending, accepted, rejected, and items at risk\n"+
			"(pending within 2 h of their deadline, 08:00 America/Sao_Paulo of the day after the step).", stdout, stderr)
		c.Bool(&asJSON, "json", false, "print JSON")
	case "replay":
		c = newCommand("ponte pcm replay --from DATE --to DATE [flags]",
			"Puts the rejected items of steps that happened in [from, to) back in the queue, due now.\n"+
				"Dates are YYYY-MM-DD (UTC; --to includes its day) or RFC 3339 instants (--to exclusive).", stdout, stderr)
		c.String(&from, "from", "DATE", "", "start of the period (required)")
		c.String(&to, "to", "DATE", "", "end of the period (required)")
		c.String(&endpnt, "endpoint", "ENDPOINT", "", "only this PCM endpoint, e.g. server/redirect-to-client (default: all six)")
	}
	c.Storage(&cfg)
	if err := c.Parse(rest); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	var fromT, toT time.Time
	if sub == "replay" {
		var err error
		if fromT, err = parseDay(from, false); err != nil {
			return c.Fail("--from: %v", err)
		}
		if toT, err = parseDay(to, true); err != nil {
			return c.Fail("--to: %v", err)
		}
		if !fromT.Before(toT) {
			return c.Fail("--from must be before --to")
		}
		if endpnt != "" && !slices.Contains(pcm.Endpoints, endpnt) {
			return c.Fail("--endpoint must be one of %s", strings.Join(pcm.Endpoints, ", "))
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

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/itp"
)

const journeysUsage = `Usage: ponte journeys <command> [flags]

Manages the journeys of Open Keys journey sessions (seed 003): which brands
the user may pick and the settings (PRIORITIES_BRANDS, JOURNEY_RULES,
JOURNEY_SESSION_TTL) the sessions inherit. A session with journeyId
"default" uses the application's JOURNEY_DEFAULT_ALIAS (set-default), else
the JOURNEY_DEFAULT_ALIAS environment variable of 'ponte serve'.

Commands:
  create       create a journey
  list         list journeys
  set-default  set an application's JOURNEY_DEFAULT_ALIAS

Run 'ponte journeys <command> --help' for a command's flags.
`

func journeysCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if done, err := groupHelp(args, journeysUsage, stdout); done {
		return err
	}
	sub, rest := args[0], args[1:]
	var (
		cfg                config.Config
		fs                 *flag.FlagSet
		j                  itp.Journey
		brands, apps, sets stringList
		clientID, alias    string
		asJSON             bool
	)
	switch sub {
	case "create":
		fs = newFlagSet("ponte journeys create --alias ALIAS --name NAME [flags]", "Creates a journey.", stderr)
		fs.StringVar(&j.Alias, "alias", "", "unique alias, 1–36 of letters, digits, '.', '_', '-' (required)")
		fs.StringVar(&j.Name, "name", "", "display name (required)")
		fs.Var(&brands, "brand", "brand id offered (repeatable; none: every enabled brand)")
		fs.Var(&apps, "client-id", "application allowed to use it (repeatable; none: every application)")
		fs.Var(&sets, "setting", `KEY=JSON setting, e.g. 'PRIORITIES_BRANDS=["6894f1db86d49fedbec6cd13"]' or JOURNEY_SESSION_TTL=900 (repeatable)`)
	case "list":
		fs = newFlagSet("ponte journeys list [flags]", "Lists journeys.", stderr)
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	case "set-default":
		fs = newFlagSet("ponte journeys set-default --client-id ID --alias ALIAS [flags]",
			"Sets the application's JOURNEY_DEFAULT_ALIAS: the journey of sessions created with journeyId \"default\".", stderr)
		fs.StringVar(&clientID, "client-id", "", "the application's client_id (required)")
		fs.StringVar(&alias, "alias", "", "alias of an existing journey (required)")
	default:
		fmt.Fprintf(stderr, "ponte journeys: unknown command %q\n\n%s", sub, journeysUsage)
		return errUsage
	}
	cfg.RegisterStorage(fs)
	if err := parse(fs, rest); err != nil {
		return err
	}
	if fs.NArg() != 0 || (sub == "create" && (j.Alias == "" || j.Name == "")) || (sub == "set-default" && (clientID == "" || alias == "")) {
		fs.Usage()
		return errUsage
	}
	db, svc, err := openITP(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "create":
		for _, s := range sets {
			k, v, ok := strings.Cut(s, "=")
			if !ok || !json.Valid([]byte(v)) {
				return fmt.Errorf("--setting %q: want KEY=JSON", s)
			}
			j.Settings = append(j.Settings, itp.Setting{Key: k, Value: json.RawMessage(v)})
		}
		for _, c := range apps {
			id, err := applicationID(ctx, db, c)
			if err != nil {
				return err
			}
			j.ApplicationIDs = append(j.ApplicationIDs, id)
		}
		j.BrandIDs = brands
		created, err := svc.CreateJourney(ctx, j)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "journey %s created with alias %s\n", created.ID, created.Alias)
	case "list":
		list, err := svc.Journeys(ctx, "")
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, list)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tALIAS\tNAME\tBRANDS\tSETTINGS")
		for _, j := range list {
			keys := make([]string, len(j.Settings))
			for i, s := range j.Settings {
				keys[i] = s.Key
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", j.ID, j.Alias, j.Name, strings.Join(j.BrandIDs, ","), strings.Join(keys, ","))
		}
		return tw.Flush()
	case "set-default":
		id, err := applicationID(ctx, db, clientID)
		if err != nil {
			return err
		}
		if err := svc.SetDefaultJourney(ctx, id, alias); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "application %s: %s=%s\n", clientID, itp.SettingJourneyDefaultAlias, alias)
	}
	return nil
}

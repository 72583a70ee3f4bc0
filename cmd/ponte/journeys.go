package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/itp"
)

var journeysGroup = group{
	name:    "journeys",
	summary: "manage journeys of Open Keys journey sessions",
	about: `Manages the journeys of Open Keys journey sessions (seed 003): which brands
the user may pick and the settings (PRIORITIES_BRANDS, JOURNEY_RULES,
JOURNEY_SESSION_TTL) the sessions inherit. A session with journeyId
"default" uses the application's JOURNEY_DEFAULT_ALIAS (set-default), else
the JOURNEY_DEFAULT_ALIAS environment variable of 'ponte serve'.`,
	subs: []subcommand{
		{"create", "create a journey"},
		{"list", "list journeys"},
		{"set-default", "set an application's JOURNEY_DEFAULT_ALIAS"},
	},
}

func journeysCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, rest, done, err := journeysGroup.dispatch(args, stdout, stderr)
	if done {
		return err
	}
	var (
		cfg                config.Config
		c                  *command
		j                  itp.Journey
		brands, apps, sets stringList
		clientID, alias    string
		asJSON             bool
	)
	switch sub {
	case "create":
		c = newCommand("ponte journeys create --alias ALIAS --name NAME [flags]", "Creates a journey.", stdout, stderr)
		c.String(&j.Alias, "alias", "ALIAS", "", "unique alias, 1–36 of letters, digits, '.', '_', '-' (required)")
		c.String(&j.Name, "name", "NAME", "", "display name (required)")
		c.List(&brands, "brand", "BRAND_ID", "brand offered (repeatable; none: every enabled brand)")
		c.List(&apps, "app", "CLIENT_ID", "partner application allowed to use it (repeatable; none: every application)")
		c.List(&sets, "setting", "KEY=JSON", `setting, e.g. 'PRIORITIES_BRANDS=["6894f1db86d49fedbec6cd13"]' or JOURNEY_SESSION_TTL=900 (repeatable)`)
		c.Alias("client-id", "app")
	case "list":
		c = newCommand("ponte journeys list [flags]", "Lists journeys.", stdout, stderr)
		c.Bool(&asJSON, "json", false, "print JSON")
	case "set-default":
		c = newCommand("ponte journeys set-default --app CLIENT_ID --alias ALIAS [flags]",
			"Sets the application's JOURNEY_DEFAULT_ALIAS: the journey of sessions created with journeyId \"default\".", stdout, stderr)
		c.String(&clientID, "app", "CLIENT_ID", "", "the partner application's client_id (required)")
		c.String(&alias, "alias", "ALIAS", "", "alias of an existing journey (required)")
		c.Alias("client-id", "app")
	}
	c.Storage(&cfg)
	if err := c.Parse(rest); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	required := map[string][]string{"create": {"alias", "name"}, "set-default": {"app", "alias"}}[sub]
	if err := c.Required(required...); err != nil {
		return err
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

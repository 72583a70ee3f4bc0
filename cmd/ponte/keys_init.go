package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/ponte-ofb/ponte/internal/keyset"
	"github.com/ponte-ofb/ponte/internal/store"
)

// keysInit is `ponte keys init`: a complete key set, generated once.
func keysInit(_ context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		dir, orgID string
		sandbox    bool
	)
	c := newCommand("ponte keys init --dir DIR [flags]",
		"Generates a complete key set into DIR, a new (or empty) directory: the token signing key, the data key, "+
			"the admin token, the organisation id, the initiator's encryption key and, with --sandbox, the sandbox's keys. "+
			"The directory is made 0700 and every file 0600. Start every instance of one database with --keys-dir DIR "+
			"(the same files on every host); the database records the keys' fingerprints on first start and refuses "+
			"an instance with other keys. See docs/keys.md.", stdout, stderr)
	c.String(&dir, "dir", "DIR", "", "the directory to create (required; refused if it holds files)")
	c.String(&orgID, "org-id", "UUID", "", "the institution's organisation id at the Open Finance Directory (default: a new UUID, for a sandbox)")
	c.Bool(&sandbox, "sandbox", false, "add the sandbox's keys (partner app, initiator, Directory, card wallets, demo client)")
	if err := c.Parse(args); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	if err := c.Required("dir"); err != nil {
		return err
	}
	entries, err := keyset.Init(dir, keyset.InitOptions{OrgID: orgID, Sandbox: sandbox})
	if err != nil {
		return err
	}
	kind := "production"
	if sandbox {
		kind = "sandbox"
	}
	fmt.Fprintf(stdout, "Generated a %s key set in %s (directory 0700, files 0600):\n\n", kind, dir)
	printEntries(stdout, entries, nil)
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	fmt.Fprintf(stdout, `
Hand the same directory to every instance of one database: copy it to each host
(it holds secrets: keep it 0700, readable by Ponte's user only), back it up, and start
each instance with it:

  ponte serve --keys-dir %s --database-url postgres://... --public-url https://...

(or PONTE_KEYS_DIR=%s). With --keys-dir Ponte creates no key: a missing file is a
start-up error. The database records these fingerprints on the first start and
refuses an instance whose keys differ. Compare later with:

  ponte keys show --dir %s --database-url postgres://...
`, abs, abs, abs)
	return nil
}

// keysShow is `ponte keys show`: a key set's keys, and what a database recorded.
func keysShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var dir, dbURL string
	c := newCommand("ponte keys show --dir DIR [--database-url URL]",
		"Lists the key set in DIR: each key, its file and its fingerprint (a one-way digest; no key material is printed). "+
			"With --database-url, also what that database recorded for each key (current, retired) and whether the set "+
			"matches; exits 1 when a key differs.", stdout, stderr)
	c.String(&dir, "dir", "DIR", os.Getenv("PONTE_KEYS_DIR"), "the key set (env PONTE_KEYS_DIR)")
	c.String(&dbURL, "database-url", "URL", os.Getenv("PONTE_DATABASE_URL"),
		"the database to compare with: postgres://... or sqlite:PATH (env PONTE_DATABASE_URL); empty: no comparison")
	if err := c.Parse(args); err != nil {
		return err
	}
	if err := c.NoArgs(); err != nil {
		return err
	}
	if err := c.Required("dir"); err != nil {
		return err
	}
	entries, err := keyset.Load(dir)
	if err != nil {
		return err
	}
	if dbURL == "" {
		fmt.Fprintf(stdout, "Key set %s:\n\n", dir)
		printEntries(stdout, entries, nil)
		return nil
	}
	db, err := store.Open(ctx, store.Options{URL: dbURL})
	if err != nil {
		return err
	}
	defer db.Close()
	recs, err := keyset.Recorded(ctx, db)
	if err != nil {
		return err
	}
	byID := map[string][]keyset.Record{}
	for _, r := range recs {
		byID[r.ID] = append(byID[r.ID], r)
	}
	fmt.Fprintf(stdout, "Key set %s against the database (%s):\n\n", dir, db.Engine())
	differ := printEntries(stdout, entries, byID)
	// Retired keys the database still accepts (rotation), for the record.
	var retired []keyset.Record
	for _, r := range recs {
		if !r.Current {
			retired = append(retired, r)
		}
	}
	if len(retired) > 0 {
		fmt.Fprintln(stdout, "\nRetired keys the database still accepts:")
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		for _, r := range retired {
			fmt.Fprintf(tw, "  %s\t%s\tretired %s\n", r.ID, r.Fingerprint, r.RetiredAt.Format(time.RFC3339))
		}
		tw.Flush()
	}
	if differ > 0 {
		return fmt.Errorf("%d key(s) of %s differ from the ones the database was used with: an instance with this key set refuses to start (docs/keys.md)", differ, dir)
	}
	return nil
}

// printEntries prints one line per key; with recorded (by key id), also
// the database's view of it. It returns how many keys the database would
// refuse.
func printEntries(w io.Writer, entries []keyset.Entry, recorded map[string][]keyset.Record) (differ int) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	if recorded == nil {
		fmt.Fprintln(tw, "  KEY\tFILE\tFINGERPRINT")
	} else {
		fmt.Fprintln(tw, "  KEY\tFILE\tFINGERPRINT\tDATABASE")
	}
	for _, e := range entries {
		line := fmt.Sprintf("  %s\t%s\t%s", e.Name, e.File, e.Fingerprint)
		if recorded != nil {
			line += "\t" + databaseView(e, recorded[e.ID], &differ)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	return differ
}

// databaseView says how the database sees entry e.
func databaseView(e keyset.Entry, recs []keyset.Record, differ *int) string {
	if !e.Recorded {
		return "(not recorded: derived from a key above)"
	}
	current := ""
	for _, r := range recs {
		if r.Fingerprint == e.Fingerprint {
			if r.Current {
				return "matches (current)"
			}
			if e.Rotatable {
				return "matches a retired key (accepted; rotate the set's file to the current key)"
			}
		}
		if r.Current {
			current = r.Fingerprint
		}
	}
	if current == "" {
		return "not recorded yet (recorded on the first start)"
	}
	*differ++
	return "DIFFERS: the database's is " + current
}

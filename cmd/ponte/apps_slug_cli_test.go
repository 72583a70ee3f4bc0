package main

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/store"
)

// TestCLIAppsRenameKeepsSlug: `apps show` prints the slug the interaction
// path names the application by; a second application of the same name
// gets the next free one; `apps rename` changes the display name and keeps
// the slug; bad input changes nothing.
func TestCLIAppsRenameKeepsSlug(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := createApp(t, dir)
	b := createApp(t, dir) // the same name
	for _, tc := range []struct{ app, slug string }{{a.clientID, "fintech-exemplo"}, {b.clientID, "fintech-exemplo-2"}} {
		if got := fields(mustCLI(t, 0, appsCmd("show", dir, "--app", tc.app)...).stdout)["slug"]; got != tc.slug {
			t.Errorf("apps show %s: slug %q, want %q", tc.app, got, tc.slug)
		}
	}

	r := mustCLI(t, 0, appsCmd("rename", dir, "--app", a.clientID, "--name", "Banco Novo Nome")...)
	if f := fields(r.stdout); f["name"] != "Banco Novo Nome" || f["slug"] != "fintech-exemplo" {
		t.Errorf("apps rename printed name %q slug %q, want the new name and the old slug\n%s", f["name"], f["slug"], r)
	}
	if f := fields(mustCLI(t, 0, appsCmd("show", dir, "--app", a.id)...).stdout); f["name"] != "Banco Novo Nome" || f["slug"] != "fintech-exemplo" {
		t.Errorf("after rename, apps show: name %q slug %q", f["name"], f["slug"])
	}

	refusals := []struct {
		name string
		code int
		args []string
		want string
	}{
		{"no name", 2, []string{"--app", a.clientID}, "--name is required"},
		{"blank name", 1, []string{"--app", a.clientID, "--name", "   "}, "name is required"},
		{"unknown application", 1, []string{"--app", "unknown", "--name", "X"}, "application not found"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			r := mustCLI(t, tc.code, appsCmd("rename", dir, tc.args...)...)
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr lacks %q\n%s", tc.want, r)
			}
		})
	}
	if f := fields(mustCLI(t, 0, appsCmd("show", dir, "--app", a.id)...).stdout); f["name"] != "Banco Novo Nome" {
		t.Errorf("a refused rename changed the name to %q", f["name"])
	}
}

// TestCLIAppsBackfillSlugs: in a database whose applications predate slugs
// (an empty slug), the apps commands assign them, oldest first, before printing.
func TestCLIAppsBackfillSlugs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := createApp(t, dir)
	b := createApp(t, dir)
	db, err := store.Open(context.Background(), store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.ExecContext(context.Background(), `UPDATE applications SET slug = ''`)
		return err
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Which of the two is older is the auth tests' business (on a fake
	// clock); here both get one, and they differ.
	list, r := listJSON(t, dir)
	slugs := map[string]string{}
	for _, app := range list {
		slugs[app.ClientID] = app.Slug
	}
	got := []string{slugs[a.clientID], slugs[b.clientID]}
	if !(got[0] == "fintech-exemplo" && got[1] == "fintech-exemplo-2") && !(got[0] == "fintech-exemplo-2" && got[1] == "fintech-exemplo") {
		t.Errorf("slugs after the backfill %v, want fintech-exemplo and fintech-exemplo-2\n%s", slugs, r)
	}
}

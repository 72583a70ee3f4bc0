package auth_test

import (
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// slugShape is every slug Ponte makes: lowercase ASCII letters and digits in
// '-'-separated runs, no '-' at either end.
var slugShape = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

func TestSlug(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, want string }{
		{"Banco App", "banco-app"},
		{"Ponte sandbox demo", "ponte-sandbox-demo"},
		{"São João Pagamentos", "sao-joao-pagamentos"},
		{"AÇÚCAR & CIA. LTDA.", "acucar-cia-ltda"},
		{"Crédito Fácil — Ñandú Über", "credito-facil-nandu-uber"},
		{"Straße Øre Æther Łódź", "strasse-ore-aether-lodz"},
		{"  --Fintech__2024!!  ", "fintech-2024"},
		{"a/b?c#d%20e", "a-b-c-d-20e"},
		{"ＡＢＣ", "app"}, // full-width letters are not ASCII letters
		{"日本銀行", "app"},
		{"!!!", "app"},
		{"", "app"},
		{"\u0301e", "e"}, // a stray combining mark alone is dropped
		{strings.Repeat("Pagamento ", 20), "pagamento-pagamento-pagamento-pagamento"},
		{strings.Repeat("x", 100), strings.Repeat("x", 40)},
		{"Kelvin \u212A", "kelvin-k"}, // the Kelvin sign is canonically the letter K
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := auth.Slug(tt.name)
			if got != tt.want {
				t.Errorf("Slug(%q) = %q, want %q", tt.name, got, tt.want)
			}
			if !slugShape.MatchString(got) || len(got) > 40 {
				t.Errorf("Slug(%q) = %q: not a slug of at most 40 characters", tt.name, got)
			}
		})
	}
}

func FuzzSlug(f *testing.F) {
	for _, s := range []string{"Banco App", "São João", "日本", "", "--", "a\u0301", strings.Repeat("é", 60), "\xff\xfe", "x-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := auth.Slug(name)
		if !slugShape.MatchString(got) || len(got) > 40 {
			t.Fatalf("Slug(%q) = %q: not a slug of at most 40 characters", name, got)
		}
		if again := auth.Slug(name); again != got {
			t.Fatalf("Slug(%q) is not deterministic: %q then %q", name, got, again)
		}
		// A slug is its own slug: slugging is idempotent.
		if got != "app" || name == "app" {
			if back := auth.Slug(got); back != got {
				t.Fatalf("Slug(Slug(%q)) = %q, want %q", name, back, got)
			}
		}
	})
}

// TestSlugAssignment: creation gives each application a unique slug (suffix
// -2, -3 ... on collision, also against a name that ends in a number),
// renaming keeps it, and an application created after a rename does not
// take it.
func TestSlugAssignment(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		apps := auth.NewApplications(db, clock.NewFake(time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)))
		create := func(name string) *auth.Application {
			t.Helper()
			a, _, err := apps.Create(ctx, auth.NewApplication{Name: name, CompanyKey: "K", Scopes: []string{"app"}})
			if err != nil {
				t.Fatalf("create %q: %v", name, err)
			}
			return a
		}
		steps := []struct{ name, want string }{
			{"Banco App", "banco-app"},
			{"banco app", "banco-app-2"},
			{"BANCO-APP", "banco-app-3"},
			{"Banco App 5", "banco-app-5"},
			{"Banco App!", "banco-app-4"},
			{"Banco App", "banco-app-6"},
			{"Bânco Ápp", "banco-app-7"},
			{"日本", "app"},
			{"Outro", "outro"},
		}
		byName := map[string]*auth.Application{}
		for _, s := range steps {
			a := create(s.name)
			if a.Slug != s.want {
				t.Errorf("create %q: slug %q, want %q", s.name, a.Slug, s.want)
			}
			got, err := apps.Get(ctx, a.ClientID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Slug != s.want {
				t.Errorf("create %q: stored slug %q, want %q", s.name, got.Slug, s.want)
			}
			byName[s.want] = a
		}

		renamed, err := apps.Rename(ctx, byName["outro"].ID, "Completely New Name")
		if err != nil {
			t.Fatal(err)
		}
		if renamed.Name != "Completely New Name" || renamed.Slug != "outro" {
			t.Errorf("renamed: name %q slug %q, want the new name and slug %q", renamed.Name, renamed.Slug, "outro")
		}
		if got, _ := apps.Get(ctx, renamed.ID); got.Slug != "outro" || got.Name != "Completely New Name" {
			t.Errorf("renamed, as stored: name %q slug %q", got.Name, got.Slug)
		}
		if a := create("Outro"); a.Slug != "outro-2" {
			t.Errorf("a new %q after the rename took slug %q, want outro-2 (outro stays the renamed one's)", "Outro", a.Slug)
		}
		if a := create("Completely New Name"); a.Slug != "completely-new-name" {
			t.Errorf("slug %q, want completely-new-name (a display name reserves no slug)", a.Slug)
		}
		for _, bad := range []string{"", "   ", strings.Repeat("n", 201)} {
			if _, err := apps.Rename(ctx, renamed.ID, bad); err == nil {
				t.Errorf("Rename(%q) accepted", bad)
			}
		}
		if _, err := apps.Rename(ctx, "no-such-app", "X"); err == nil {
			t.Error("Rename of an unknown application accepted")
		}
	})
}

// TestSlugConcurrentInstances: several instances on one database (two
// store.DB, as two 'ponte serve' processes) create applications of the same
// name at once: every slug is different and all are the base or base-N.
func TestSlugConcurrentInstances(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			url := e.URL(t)
			c := clock.NewFake(time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC))
			instances := []*auth.Applications{
				auth.NewApplications(storetest.Open(t, url), c),
				auth.NewApplications(storetest.Open(t, url), c),
			}
			const perInstance = 6
			var (
				wg    sync.WaitGroup
				mu    sync.Mutex
				slugs = map[string]bool{}
			)
			for i, apps := range instances {
				for j := 0; j < perInstance; j++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						a, _, err := apps.Create(t.Context(), auth.NewApplication{Name: "Mesmo Nome", CompanyKey: "K", Scopes: []string{"app"}})
						if err != nil {
							t.Errorf("instance %d: %v", i, err)
							return
						}
						mu.Lock()
						defer mu.Unlock()
						if slugs[a.Slug] {
							t.Errorf("slug %q given twice", a.Slug)
						}
						slugs[a.Slug] = true
					}()
				}
			}
			wg.Wait()
			want := map[string]bool{"mesmo-nome": true}
			for n := 2; n <= len(instances)*perInstance; n++ {
				want[fmt.Sprintf("mesmo-nome-%d", n)] = true
			}
			if fmt.Sprint(slugs) != fmt.Sprint(want) {
				t.Errorf("slugs %v, want %v", slugs, want)
			}
		})
	}
}

// TestBackfillSlugs: applications from before slugs get theirs, oldest
// first, by the rule new ones follow; two instances starting together agree;
// a second run assigns nothing.
func TestBackfillSlugs(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			ctx := t.Context()
			url := e.URL(t)
			c := clock.NewFake(time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC))
			db := storetest.Open(t, url)
			apps := auth.NewApplications(db, c)
			names := []string{"Banco São Paulo", "banco sao paulo", "Pagamentos", "Banco Sao Paulo 2", "Pagamentos"}
			var ids []string
			for _, n := range names {
				a, _, err := apps.Create(ctx, auth.NewApplication{Name: n, CompanyKey: "K", Scopes: []string{"app"}})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, a.ID)
				c.Advance(time.Second) // creation order is the backfill's order
			}
			// A database migrated from before slugs: every slug empty.
			if err := db.Write(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `UPDATE applications SET slug = ''`)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			other := auth.NewApplications(storetest.Open(t, url), c)
			var (
				wg     sync.WaitGroup
				counts [2]int
			)
			for i, svc := range []*auth.Applications{apps, other} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n, err := svc.BackfillSlugs(ctx)
					if err != nil {
						t.Errorf("instance %d: %v", i, err)
					}
					counts[i] = n
				}()
			}
			wg.Wait()
			if counts[0]+counts[1] != len(names) {
				t.Errorf("assigned %d + %d slugs, want %d in all", counts[0], counts[1], len(names))
			}
			want := []string{"banco-sao-paulo", "banco-sao-paulo-2", "pagamentos", "banco-sao-paulo-2-2", "pagamentos-2"}
			for i, id := range ids {
				a, err := apps.Get(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if a.Slug != want[i] {
					t.Errorf("%q: slug %q, want %q", a.Name, a.Slug, want[i])
				}
			}
			if n, err := apps.BackfillSlugs(ctx); err != nil || n != 0 {
				t.Errorf("second backfill: %d, %v; want 0, nil", n, err)
			}
		})
	}
}

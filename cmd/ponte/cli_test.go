package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
)

// cliResult is what one in-process `ponte ...` invocation produced.
type cliResult struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r cliResult) String() string {
	return "ponte " + strings.Join(r.args, " ") + "\n--- exit code ---\n" + strconv.Itoa(r.code) +
		"\n--- stdout ---\n" + r.stdout + "--- stderr ---\n" + r.stderr
}

// output is stdout and stderr together, for assertions that do not care where
// a message went (a subcommand's help goes to stderr, ponte's to stdout).
func (r cliResult) output() string { return r.stdout + r.stderr }

// ponteCLI runs `ponte args...` in process through run.
func ponteCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	return ponteCLIInput(t, "", args...)
}

// ponteCLIInput runs `ponte args...` with stdin as standard input.
func ponteCLIInput(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	return cliResult{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustCLI runs `ponte args...` and fails the test unless it exits with want.
func mustCLI(t *testing.T, want int, args ...string) cliResult {
	t.Helper()
	r := ponteCLI(t, args...)
	if r.code != want {
		t.Fatalf("exit code %d, want %d\n%s", r.code, want, r)
	}
	return r
}

// storage names the test's own SQLite database. --database-url= overrides a
// PONTE_DATABASE_URL the developer may have set, so the tests always run on
// the temporary directory.
func storage(dir string) []string { return []string{"--data-dir", dir, "--database-url="} }

// appsCmd builds `apps SUB --data-dir DIR --database-url= ARGS...`: flags
// must come before the positional ID.
func appsCmd(sub, dir string, args ...string) []string {
	return append(append([]string{"apps", sub}, storage(dir)...), args...)
}

// fields parses "key: value" lines (printApp and the secret lines).
func fields(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.HasPrefix(k, "(") {
			continue
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m
}

// secretHash is how the database stores a client secret.
func secretHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// assertNoSecret fails if out contains the secret or its stored hash.
func assertNoSecret(t *testing.T, r cliResult, secret string) {
	t.Helper()
	if strings.Contains(r.output(), secret) {
		t.Errorf("output reveals the client secret %q\n%s", secret, r)
	}
	if strings.Contains(r.output(), secretHash(secret)) {
		t.Errorf("output reveals the hash of the client secret\n%s", r)
	}
}

// listJSON runs `apps list --json` and decodes it.
func listJSON(t *testing.T, dir string) ([]auth.Application, cliResult) {
	t.Helper()
	r := mustCLI(t, 0, appsCmd("list", dir, "--json")...)
	var list []auth.Application
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("apps list --json: %v\n%s", err, r)
	}
	if list == nil {
		t.Fatalf("apps list --json printed %q, want a JSON array (at least [])", r.stdout)
	}
	return list, r
}

// authenticate checks credentials against the database in dir the way the
// token endpoint does, closing the database before it returns so the next CLI
// call finds it free.
func authenticate(t *testing.T, dir, clientID, secret string) (*auth.Application, error) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{DataDir: dir})
	if err != nil {
		t.Fatalf("open the CLI's database in %s: %v", dir, err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Errorf("close database: %v", err)
		}
	}()
	return auth.NewApplications(db, clock.System{}).Authenticate(ctx, clientID, secret)
}

// createdApp is an application made through `apps create`.
type createdApp struct {
	id, clientID, secret string
}

// Valid `apps create` input.
var (
	testAppName    = "Fintech Exemplo"
	testCompanyKey = "EXEMPLO_01"
	testScopes     = "openfinance.ticket.write,openfinance.ticket.read"
	testRedirects  = []string{"https://app.exemplo.com.br/callback", "exemplo://consent/done"}
	testDeepLink   = "https://app.exemplo.com.br/openfinance"
)

func createApp(t *testing.T, dir string) createdApp {
	t.Helper()
	r := mustCLI(t, 0, appsCmd("create", dir,
		"--name", testAppName, "--company-key", testCompanyKey, "--scopes", testScopes,
		"--redirect-url", testRedirects[0], "--redirect-url", testRedirects[1],
		"--deep-link-url", testDeepLink)...)
	f := fields(r.stdout)
	a := createdApp{id: f["id"], clientID: f["client_id"], secret: f["client_secret"]}
	if a.id == "" || a.clientID == "" || a.secret == "" {
		t.Fatalf("apps create did not print id, client_id and client_secret\n%s", r)
	}
	if !strings.Contains(r.stdout, "shown once") {
		t.Errorf("apps create does not warn that the secret is shown once\n%s", r)
	}
	if len(a.secret) < 32 {
		t.Errorf("client_secret %q is too short to be a random secret", a.secret)
	}
	return a
}

func TestCLIHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want []string // meaningful words of the description
	}{
		{[]string{"--help"}, []string{"Open Finance Brasil", "serve", "migrate", "apps", "version"}},
		{[]string{"-h"}, []string{"Open Finance Brasil", "Commands:"}},
		{[]string{"help"}, []string{"Open Finance Brasil", "Commands:"}},
		{[]string{"serve", "--help"}, []string{"Runs the HTTP server", "shut down", "gracefully", "-addr", "-data-dir", "-shutdown-timeout"}},
		{[]string{"migrate", "--help"}, []string{"database migration", "-data-dir", "-database-url"}},
		{[]string{"apps", "--help"}, []string{"partner applications", "create", "rotate-secret", "disable"}},
		{[]string{"apps", "help"}, []string{"partner applications"}},
		{[]string{"apps", "create", "--help"}, []string{"partner application", "client_secret", "-name", "-company-key", "-scopes", "-redirect-url", "-deep-link-url", "openfinance.ticket.write"}},
		{[]string{"apps", "list", "--help"}, []string{"Lists partner applications", "never their secrets", "-json"}},
		{[]string{"apps", "show", "--help"}, []string{"Shows one application", "client_id"}},
		{[]string{"apps", "rotate-secret", "--help"}, []string{"new client_secret", "old secret stops working"}},
		{[]string{"apps", "disable", "--help"}, []string{"Disables an application", "token"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			// Help must not touch the data directory: pass one that does not
			// exist yet and check it is still absent afterwards.
			dir := filepath.Join(t.TempDir(), "data")
			args := tc.args
			if args[0] == "serve" || args[0] == "migrate" || (args[0] == "apps" && len(args) > 2) {
				args = append(append(append([]string{}, args[:len(args)-1]...), storage(dir)...), args[len(args)-1])
			}
			r := ponteCLI(t, args...)
			if r.code != 0 {
				t.Errorf("exit code %d, want 0\n%s", r.code, r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.output(), w) {
					t.Errorf("help does not mention %q\n%s", w, r)
				}
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("--help touched the data directory %s (stat: %v)", dir, err)
			}
		})
	}
}

func TestCLIUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // expected in standard error
	}{
		{"no command", nil, 2, "Usage:"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"apps without subcommand", []string{"apps"}, 2, ""},
		{"unknown apps subcommand", []string{"apps", "frobnicate"}, 2, `unknown command "frobnicate"`},
		{"unknown flag", appsCmd("list", dir, "--frobnicate"), 2, "frobnicate"},
		{"show without ID", appsCmd("show", dir), 2, "Usage: ponte apps show"},
		{"show with two IDs", appsCmd("show", dir, "--app", "a", "b"), 2, "Usage: ponte apps show"},
		{"rotate-secret without ID", appsCmd("rotate-secret", dir), 2, "Usage: ponte apps rotate-secret"},
		{"disable without ID", appsCmd("disable", dir), 2, "Usage: ponte apps disable"},
		{"list with an argument", appsCmd("list", dir, "extra"), 2, "Usage: ponte apps list"},
		{"set-keys without --app", appsCmd("set-keys", dir, "--jwks", "x.json"), 2, "--app is required"},
		{"set-keys without --jwks", appsCmd("set-keys", dir, "--app", "x"), 2, "--jwks is required"},
		{"set-plain-json without --accept", appsCmd("set-plain-json", dir, "--app", "x"), 2, "--accept is required"},
		{"serve with a bad mode", []string{"serve", "--data-dir", dir, "--addr", "127.0.0.1:0", "--mode", "chaos"}, 1, "--mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ponteCLI(t, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit code %d, want %d\n%s", r.code, tc.code, r)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr does not contain %q\n%s", tc.stderr, r)
			}
		})
	}
	// `ponte apps` alone explains the subcommands.
	if r := ponteCLI(t, "apps"); !strings.Contains(r.output(), "rotate-secret") {
		t.Errorf("`ponte apps` does not list its subcommands\n%s", r)
	}
}

func TestCLIVersion(t *testing.T) {
	t.Parallel()
	r := mustCLI(t, 0, "version")
	if !strings.HasPrefix(r.stdout, "ponte ") || strings.TrimSpace(strings.TrimPrefix(r.stdout, "ponte ")) == "" {
		t.Errorf("version printed %q, want \"ponte VERSION\"", r.stdout)
	}
}

func TestCLIAppsCreate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := createApp(t, dir)

	list, r := listJSON(t, dir)
	assertNoSecret(t, r, a.secret)
	if len(list) != 1 {
		t.Fatalf("apps list --json after one create: %d applications, want 1\n%s", len(list), r)
	}
	got := list[0]
	want := auth.Application{
		ID: a.id, ClientID: a.clientID, Name: testAppName, Slug: "fintech-exemplo", CompanyKey: testCompanyKey,
		Scopes:       []string{"openfinance.ticket.read", "openfinance.ticket.write"},
		RedirectURLs: testRedirects, DeepLinkURL: testDeepLink,
		CreatedAt: got.CreatedAt, UpdatedAt: got.UpdatedAt,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("created application (-want +got):\n%s", diff)
	}
	if got.CreatedAt.IsZero() {
		t.Errorf("created application has no created_at")
	}

	// The secret works at once, and only for this client.
	if app, err := authenticate(t, dir, a.clientID, a.secret); err != nil {
		t.Errorf("Authenticate with the printed secret: %v", err)
	} else if app.ID != a.id {
		t.Errorf("Authenticate returned application %s, want %s", app.ID, a.id)
	}
	if _, err := authenticate(t, dir, a.clientID, a.secret+"x"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("Authenticate with a wrong secret: %v, want auth.ErrNotFound", err)
	}

	// A second application gets its own credentials.
	b := createApp(t, dir)
	if b.clientID == a.clientID || b.secret == a.secret || b.id == a.id {
		t.Errorf("two applications share credentials: %+v and %+v", a, b)
	}
	if list, _ := listJSON(t, dir); len(list) != 2 {
		t.Errorf("apps list --json after two creates: %d applications, want 2", len(list))
	}

	// 36 characters is the longest companyKey.
	mustCLI(t, 0, appsCmd("create", dir, "--name", "Max key", "--company-key", strings.Repeat("k", 36), "--scopes", "openfinance.ticket.read")...)
}

func TestCLIAppsCreateInvalid(t *testing.T) {
	t.Parallel()
	valid := map[string]string{"--name": testAppName, "--company-key": testCompanyKey, "--scopes": testScopes}
	tests := []struct {
		name     string
		override map[string]string // flag → value; "" drops the flag
		extra    []string
		want     []string // each problem, named in the error
	}{
		{"missing name", map[string]string{"--name": ""}, nil,
			[]string{"name is required"}},
		{"blank name", map[string]string{"--name": "   "}, nil,
			[]string{"name is required"}},
		{"companyKey of 37 characters", map[string]string{"--company-key": strings.Repeat("k", 37)}, nil,
			[]string{"companyKey must be 1–36 characters"}},
		{"missing companyKey", map[string]string{"--company-key": ""}, nil,
			[]string{"companyKey"}},
		{"unknown scope", map[string]string{"--scopes": "openfinance.ticket.write,payments.write"}, nil,
			[]string{`unknown scope "payments.write"`}},
		{"no scope", map[string]string{"--scopes": ""}, nil,
			[]string{"at least one scope is required"}},
		{"relative redirect URL", nil, []string{"--redirect-url", "https://ok.example/cb", "--redirect-url", "/callback"},
			[]string{`redirect URL "/callback"`, "must be absolute"}},
		{"relative deep link", nil, []string{"--deep-link-url", "open/app"},
			[]string{`deep-link URL "open/app"`, "must be absolute"}},
		{"every problem at once",
			map[string]string{"--name": "", "--company-key": strings.Repeat("k", 37), "--scopes": "openfinance.ticket.read,payments.write"},
			[]string{"--redirect-url", "/callback"},
			[]string{"name is required", "companyKey must be 1–36 characters", `unknown scope "payments.write"`, `redirect URL "/callback"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// An application that exists before: the failed create must leave it alone.
			before := createApp(t, dir)

			args := appsCmd("create", dir)
			for _, flag := range []string{"--name", "--company-key", "--scopes"} {
				v := valid[flag]
				if o, ok := tc.override[flag]; ok {
					v = o
				}
				if v != "" {
					args = append(args, flag, v)
				}
			}
			args = append(args, tc.extra...)
			r := ponteCLI(t, args...)
			if r.code != 1 {
				t.Errorf("exit code %d, want 1\n%s", r.code, r)
			}
			if !strings.HasPrefix(r.stderr, "ponte: ") || !strings.Contains(r.stderr, "invalid application") {
				t.Errorf("stderr is not a \"ponte: invalid application\" error\n%s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("error does not name the problem %q\n%s", w, r)
				}
			}
			if strings.Contains(r.stdout, "client_secret") || strings.Contains(r.stdout, "client_id") {
				t.Errorf("a refused create printed credentials\n%s", r)
			}
			list, lr := listJSON(t, dir)
			if len(list) != 1 || list[0].ClientID != before.clientID {
				t.Errorf("a refused create changed the applications: want only %s\n%s", before.clientID, lr)
			}
		})
	}
}

func TestCLIAppsListAndShow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	// An empty database lists nothing, in both formats.
	if list, r := listJSON(t, dir); len(list) != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("apps list --json on an empty database printed %q, want []", r.stdout)
	}
	r := mustCLI(t, 0, appsCmd("list", dir)...)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "CLIENT_ID") {
		t.Errorf("apps list on an empty database: want only the header\n%s", r)
	}

	a := createApp(t, dir)

	t.Run("table", func(t *testing.T) {
		r := mustCLI(t, 0, appsCmd("list", dir)...)
		assertNoSecret(t, r, a.secret)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 2 {
			t.Fatalf("apps list: %d lines, want a header and one application\n%s", len(lines), r)
		}
		if got, want := strings.Fields(lines[0]), []string{"CLIENT_ID", "SLUG", "NAME", "COMPANY_KEY", "STATUS", "SCOPES"}; !cmp.Equal(got, want) {
			t.Errorf("apps list header %q, want %q", got, want)
		}
		for _, w := range []string{a.clientID, "fintech-exemplo", testAppName, testCompanyKey, "active", "openfinance.ticket.read openfinance.ticket.write"} {
			if !strings.Contains(lines[1], w) {
				t.Errorf("apps list row does not show %q\n%s", w, r)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		list, r := listJSON(t, dir)
		assertNoSecret(t, r, a.secret)
		if len(list) != 1 || list[0].ClientID != a.clientID {
			t.Fatalf("apps list --json does not hold exactly the created application\n%s", r)
		}
		var raw []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
			t.Fatal(err)
		}
		for k := range raw[0] {
			if strings.Contains(strings.ToLower(k), "secret") {
				t.Errorf("apps list --json has a field %q", k)
			}
		}
	})

	t.Run("show", func(t *testing.T) {
		// By client_id and by internal id.
		for _, id := range []string{a.clientID, a.id} {
			r := mustCLI(t, 0, appsCmd("show", dir, "--app", id)...)
			assertNoSecret(t, r, a.secret)
			f := fields(r.stdout)
			want := map[string]string{
				"id": a.id, "client_id": a.clientID, "name": testAppName, "slug": "fintech-exemplo", "companyKey": testCompanyKey,
				"status": "active", "scopes": "openfinance.ticket.read openfinance.ticket.write",
				"redirect URLs": strings.Join(testRedirects, " "), "deep link": testDeepLink,
			}
			for k, v := range want {
				if f[k] != v {
					t.Errorf("apps show %s: %s = %q, want %q\n%s", id, k, f[k], v, r)
				}
			}
			if _, ok := f["client_secret"]; ok {
				t.Errorf("apps show prints a client_secret line\n%s", r)
			}
		}
	})

	t.Run("show unknown", func(t *testing.T) {
		r := mustCLI(t, 1, appsCmd("show", dir, "--app", "unknown")...)
		if !strings.Contains(r.stderr, "application not found") {
			t.Errorf("stderr does not say \"application not found\"\n%s", r)
		}
		if r.stdout != "" {
			t.Errorf("apps show unknown printed to stdout\n%s", r)
		}
	})
}

func TestCLIAppsRotateSecret(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := createApp(t, dir)
	other := createApp(t, dir)

	r := mustCLI(t, 0, appsCmd("rotate-secret", dir, "--app", a.clientID)...)
	f := fields(r.stdout)
	newSecret := f["client_secret"]
	if f["client_id"] != a.clientID {
		t.Errorf("rotate-secret printed client_id %q, want %q\n%s", f["client_id"], a.clientID, r)
	}
	if newSecret == "" || newSecret == a.secret {
		t.Fatalf("rotate-secret printed client_secret %q, want a new one (old %q)\n%s", newSecret, a.secret, r)
	}
	if !strings.Contains(r.stdout, "shown once") || !strings.Contains(r.stdout, "previous secret no longer works") {
		t.Errorf("rotate-secret does not warn about the secret\n%s", r)
	}

	if _, err := authenticate(t, dir, a.clientID, a.secret); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("Authenticate with the old secret after rotation: %v, want auth.ErrNotFound", err)
	}
	if app, err := authenticate(t, dir, a.clientID, newSecret); err != nil {
		t.Errorf("Authenticate with the new secret: %v", err)
	} else if app.ClientID != a.clientID {
		t.Errorf("Authenticate with the new secret returned %s, want %s", app.ClientID, a.clientID)
	}
	// Another application is not affected, and cannot use the new secret.
	if _, err := authenticate(t, dir, other.clientID, other.secret); err != nil {
		t.Errorf("rotation of %s broke %s: %v", a.clientID, other.clientID, err)
	}
	if _, err := authenticate(t, dir, other.clientID, newSecret); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("Authenticate %s with %s's new secret: %v, want auth.ErrNotFound", other.clientID, a.clientID, err)
	}

	// Listing and showing after rotation reveal neither secret.
	for _, args := range [][]string{appsCmd("list", dir), appsCmd("list", dir, "--json"), appsCmd("show", dir, "--app", a.clientID)} {
		r := mustCLI(t, 0, args...)
		assertNoSecret(t, r, a.secret)
		assertNoSecret(t, r, newSecret)
	}

	// Rotating again (by internal id) invalidates the second secret too.
	r = mustCLI(t, 0, appsCmd("rotate-secret", dir, "--app", a.id)...)
	third := fields(r.stdout)["client_secret"]
	if third == "" || third == newSecret || third == a.secret {
		t.Fatalf("second rotation printed client_secret %q\n%s", third, r)
	}
	if _, err := authenticate(t, dir, a.clientID, newSecret); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("Authenticate with the second secret after another rotation: %v, want auth.ErrNotFound", err)
	}
	if _, err := authenticate(t, dir, a.clientID, third); err != nil {
		t.Errorf("Authenticate with the third secret: %v", err)
	}

	r = mustCLI(t, 1, appsCmd("rotate-secret", dir, "--app", "unknown")...)
	if !strings.Contains(r.stderr, "application not found") || strings.Contains(r.stdout, "client_secret") {
		t.Errorf("rotate-secret unknown: want \"application not found\" and no secret\n%s", r)
	}
}

func TestCLIAppsDisable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := createApp(t, dir)
	other := createApp(t, dir)
	if _, err := authenticate(t, dir, a.clientID, a.secret); err != nil {
		t.Fatalf("Authenticate before disable: %v", err)
	}

	r := mustCLI(t, 0, appsCmd("disable", dir, "--app", a.clientID)...)
	if !strings.Contains(r.stdout, a.clientID) || !strings.Contains(r.stdout, "disabled") {
		t.Errorf("disable does not confirm which application it disabled\n%s", r)
	}
	if _, err := authenticate(t, dir, a.clientID, a.secret); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("Authenticate a disabled application: %v, want auth.ErrNotFound", err)
	}
	if _, err := authenticate(t, dir, other.clientID, other.secret); err != nil {
		t.Errorf("disabling %s broke %s: %v", a.clientID, other.clientID, err)
	}

	if f := fields(mustCLI(t, 0, appsCmd("show", dir, "--app", a.clientID)...).stdout); f["status"] != "disabled" {
		t.Errorf("apps show after disable: status %q, want disabled", f["status"])
	}
	list, _ := listJSON(t, dir)
	for _, app := range list {
		if want := app.ClientID == a.clientID; app.Disabled != want {
			t.Errorf("apps list --json: %s disabled=%v, want %v", app.ClientID, app.Disabled, want)
		}
	}

	// A new secret does not bring a disabled application back.
	r = mustCLI(t, 0, appsCmd("rotate-secret", dir, "--app", a.clientID)...)
	if _, err := authenticate(t, dir, a.clientID, fields(r.stdout)["client_secret"]); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("Authenticate a disabled application with a rotated secret: %v, want auth.ErrNotFound", err)
	}

	r = mustCLI(t, 1, appsCmd("disable", dir, "--app", "unknown")...)
	if !strings.Contains(r.stderr, "application not found") {
		t.Errorf("disable unknown: want \"application not found\"\n%s", r)
	}
}

func TestCLIMigrate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "fresh") // does not exist yet
	for i := 1; i <= 2; i++ {
		r := mustCLI(t, 0, append([]string{"migrate"}, storage(dir)...)...)
		if !strings.Contains(r.stdout, "is up to date") || !strings.Contains(r.stdout, "sqlite") {
			t.Errorf("migrate #%d does not say the SQLite database is up to date\n%s", i, r)
		}
		if !strings.Contains(r.stdout, filepath.Join(dir, "ponte.db")) {
			t.Errorf("migrate #%d does not name the database file\n%s", i, r)
		}
		if _, err := os.Stat(filepath.Join(dir, "ponte.db")); err != nil {
			t.Fatalf("after migrate #%d: %v", i, err)
		}
	}
	// The migrated database is usable by the other commands, and a later
	// migrate keeps what they wrote.
	a := createApp(t, dir)
	mustCLI(t, 0, append([]string{"migrate"}, storage(dir)...)...)
	list, _ := listJSON(t, dir)
	if len(list) != 1 || list[0].ClientID != a.clientID {
		t.Errorf("after another migrate: applications %+v, want only %s", list, a.clientID)
	}
	if _, err := authenticate(t, dir, a.clientID, a.secret); err != nil {
		t.Errorf("Authenticate after migrate: %v", err)
	}

	// An unusable database URL is an error, not "up to date".
	r := mustCLI(t, 1, "migrate", "--data-dir", dir, "--database-url", "mysql://nowhere/db")
	if strings.Contains(r.stdout, "up to date") || !strings.Contains(r.stderr, "unsupported database URL") {
		t.Errorf("migrate with a mysql:// URL\n%s", r)
	}
}

// writeJWKS writes a JWKS with key under kid to a file in dir.
func writeJWKS(t *testing.T, dir, name string, key any, kid string) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key, KeyID: kid, Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCLIAppsKeysAndPlainJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	public := writeJWKS(t, dir, "public.json", &key.PublicKey, "k1")
	private := writeJWKS(t, dir, "private.json", key, "k1")

	r := mustCLI(t, 0, appsCmd("create", dir, "--name", "ITP", "--company-key", "ITP", "--scopes", "payments",
		"--jwks", public, "--accept-plain-json")...)
	f := fields(r.stdout)
	clientID := f["client_id"]
	if f["keys"] != "1" || f["plain JSON"] != "accepted" {
		t.Errorf("apps create --jwks --accept-plain-json:\n%s", r)
	}
	if strings.Contains(r.stdout, key.PublicKey.N.String()) {
		t.Errorf("apps create prints the key material\n%s", r)
	}

	cases := []struct {
		name      string
		args      []string
		code      int
		keys      string
		plainJSON string
		stderr    string
	}{
		{"refuse plain JSON", appsCmd("set-plain-json", dir, "--app", clientID, "--accept=false"), 0, "1", "refused (signed JWT bodies only)", ""},
		{"a private key is refused", appsCmd("set-keys", dir, "--app", clientID, "--jwks", private), 1, "1", "refused (signed JWT bodies only)", "private"},
		{"a missing file", appsCmd("set-keys", dir, "--app", clientID, "--jwks", filepath.Join(dir, "none.json")), 1, "1", "refused (signed JWT bodies only)", "read JWKS"},
		{"an unknown application", appsCmd("set-keys", dir, "--app", "nobody", "--jwks", public), 1, "1", "refused (signed JWT bodies only)", "application not found"},
		{"remove the keys", appsCmd("set-keys", dir, "--app", clientID, "--jwks", writeEmpty(t, dir)), 0, "0", "refused (signed JWT bodies only)", ""},
		{"register them again", appsCmd("set-keys", dir, "--app", clientID, "--jwks", public), 0, "1", "refused (signed JWT bodies only)", ""},
		{"accept plain JSON", appsCmd("set-plain-json", dir, "--app", clientID, "--accept=true"), 0, "1", "accepted", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustCLI(t, tc.code, tc.args...)
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr does not say %q\n%s", tc.stderr, r)
			}
			show := fields(mustCLI(t, 0, appsCmd("show", dir, "--app", clientID)...).stdout)
			if show["keys"] != tc.keys || show["plain JSON"] != tc.plainJSON {
				t.Errorf("after %s: keys %q, plain JSON %q; want %q, %q", tc.name, show["keys"], show["plain JSON"], tc.keys, tc.plainJSON)
			}
		})
	}
}

func writeEmpty(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

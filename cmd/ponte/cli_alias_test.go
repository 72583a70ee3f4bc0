package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCLIHiddenAliases runs each old spelling the CLI keeps and checks it
// does what the canonical spelling does, on a real database.
func TestCLIHiddenAliases(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	app := createApp(t, dir)
	cmd := func(args ...string) []string { // group, sub, storage flags, args
		return append(append(slices.Clone(args[:2]), storage(dir)...), args[2:]...)
	}
	show := func(clientID string) map[string]string {
		return fields(mustCLI(t, 0, appsCmd("show", dir, "--app", clientID)...).stdout)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks := writeJWKS(t, dir, "public.json", &key.PublicKey, "k1")

	t.Run("apps show ID", func(t *testing.T) {
		canonical := mustCLI(t, 0, appsCmd("show", dir, "--app", app.clientID)...)
		alias := mustCLI(t, 0, appsCmd("show", dir, app.clientID)...)
		if alias.stdout != canonical.stdout {
			t.Errorf("positional ID shows\n%s\nwant\n%s", alias.stdout, canonical.stdout)
		}
		if r := ponteCLI(t, appsCmd("show", dir, "--app", app.clientID, app.clientID)...); r.code != 2 || !strings.Contains(r.stderr, "unexpected argument") {
			t.Errorf("--app and a positional ID together: %s", r)
		}
	})
	t.Run("apps rotate-secret ID", func(t *testing.T) {
		f := fields(mustCLI(t, 0, appsCmd("rotate-secret", dir, app.clientID)...).stdout)
		if f["client_id"] != app.clientID {
			t.Fatalf("rotated %q, want %q", f["client_id"], app.clientID)
		}
		if _, err := authenticate(t, dir, app.clientID, f["client_secret"]); err != nil {
			t.Errorf("the new secret does not authenticate: %v", err)
		}
	})
	t.Run("apps disable ID", func(t *testing.T) {
		other := createApp(t, dir)
		mustCLI(t, 0, appsCmd("disable", dir, other.clientID)...)
		if s := show(other.clientID)["status"]; s != "disabled" {
			t.Errorf("status %q after disable by positional ID", s)
		}
	})
	t.Run("apps set-keys --client-id", func(t *testing.T) {
		mustCLI(t, 0, appsCmd("set-keys", dir, "--client-id", app.clientID, "--jwks", jwks)...)
		if k := show(app.clientID)["keys"]; k != "1" {
			t.Errorf("keys %q after set-keys --client-id, want 1", k)
		}
	})
	t.Run("apps set-plain-json --client-id", func(t *testing.T) {
		for _, accept := range []string{"true", "false"} {
			mustCLI(t, 0, appsCmd("set-plain-json", dir, "--client-id", app.clientID, "--accept="+accept)...)
			want := map[string]string{"true": "accepted", "false": "refused (signed JWT bodies only)"}[accept]
			if got := show(app.clientID)["plain JSON"]; got != want {
				t.Errorf("--accept=%s through --client-id: plain JSON %q, want %q", accept, got, want)
			}
		}
	})
	t.Run("apps create --redirect-uri", func(t *testing.T) {
		f := fields(mustCLI(t, 0, appsCmd("create", dir, "--name", "Alias", "--company-key", "ALIAS", "--scopes", testScopes,
			"--redirect-uri", "https://alias.example/cb", "--redirect-url", "https://alias.example/cb2")...).stdout)
		if f["redirect URLs"] != "https://alias.example/cb https://alias.example/cb2" {
			t.Errorf("redirect URLs %q", f["redirect URLs"])
		}
	})
	t.Run("initiators add --client-id --redirect-uri", func(t *testing.T) {
		add := func(appFlag, redirectFlag string) cliResult {
			return mustCLI(t, 0, cmd("initiators", "add", appFlag, app.clientID, "--name", "Iniciadora", "--jwks", jwks,
				redirectFlag, "https://itp.example/cb")...)
		}
		canonical := add("--app", "--redirect-url")
		list := mustCLI(t, 0, cmd("initiators", "list")...).stdout
		alias := add("--client-id", "--redirect-uri")
		if alias.stdout != canonical.stdout {
			t.Errorf("alias registered\n%s\nwant\n%s", alias.stdout, canonical.stdout)
		}
		if got := mustCLI(t, 0, cmd("initiators", "list")...).stdout; got != list || !strings.Contains(got, "https://itp.example/cb") {
			t.Errorf("initiators after the alias\n%s\nwant\n%s", got, list)
		}
	})
	t.Run("accounts import --client-id", func(t *testing.T) {
		mustCLI(t, 0, cmd("customers", "add", "--app", app.clientID, "--document", "47742663023", "--name", "Maria")...)
		mustCLI(t, 0, cmd("accounts", "add", "--app", app.clientID, "--document", "47742663023", "--ispb", "37241230", "--issuer", "1", "--number", "1234567")...)
		file := filepath.Join(dir, "statement.csv")
		csv := "transactionId,completedAuthorisedPaymentType,creditDebitType,transactionName,type,amount,transactionDateTime\n" +
			"T-1,TRANSACAO_EFETIVADA,DEBITO,PIX ENVIADO,PIX,13.50,2026-03-09T10:00:00Z\n"
		if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
			t.Fatal(err)
		}
		imp := func(appFlag string) cliResult {
			return mustCLI(t, 0, cmd("accounts", "import", appFlag, app.clientID, "--document", "47742663023", "--account", "1234567", "--file", file)...)
		}
		canonical, alias := imp("--app"), imp("--client-id") // re-importing the same file is harmless
		if alias.stdout != canonical.stdout || !strings.Contains(alias.stdout, "1 transactions imported") {
			t.Errorf("alias imported\n%s\nwant\n%s", alias.stdout, canonical.stdout)
		}
	})
	t.Run("brands disable --id, journeys --client-id", func(t *testing.T) {
		f := fields(mustCLI(t, 0, cmd("brands", "add", "--name", "Banco", "--issuer", "https://auth.banco.example",
			"--api-base-url", "https://api.banco.example", "--client-id", "ponte-at-banco")...).stdout)
		brandID := f["id"]
		mustCLI(t, 0, cmd("journeys", "create", "--alias", "canonical", "--name", "C", "--app", app.clientID)...)
		mustCLI(t, 0, cmd("journeys", "create", "--alias", "alias", "--name", "A", "--client-id", app.clientID)...)
		var journeys []struct {
			Alias          string
			ApplicationIDs []string `json:"applicationIds"`
		}
		if err := json.Unmarshal([]byte(mustCLI(t, 0, cmd("journeys", "list", "--json")...).stdout), &journeys); err != nil || len(journeys) != 2 {
			t.Fatalf("journeys list: %v %+v", err, journeys)
		}
		if len(journeys[0].ApplicationIDs) != 1 || !slices.Equal(journeys[0].ApplicationIDs, journeys[1].ApplicationIDs) {
			t.Errorf("journeys create --client-id: applications %+v", journeys)
		}
		canonical := mustCLI(t, 0, cmd("journeys", "set-default", "--app", app.clientID, "--alias", "alias")...)
		alias := mustCLI(t, 0, cmd("journeys", "set-default", "--client-id", app.clientID, "--alias", "alias")...)
		if alias.stdout != canonical.stdout {
			t.Errorf("set-default --client-id printed %q, want %q", alias.stdout, canonical.stdout)
		}

		mustCLI(t, 0, cmd("brands", "disable", "--id", brandID)...)
		var brands []struct{ Enabled bool }
		if err := json.Unmarshal([]byte(mustCLI(t, 0, cmd("brands", "list", "--json")...).stdout), &brands); err != nil || len(brands) != 1 || brands[0].Enabled {
			t.Errorf("brand after disable --id: %v %+v", err, brands)
		}
	})
}

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var hex24 = regexp.MustCompile(`[0-9a-f]{24}`)

func TestCLIBrandsAndJourneys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	brands := func(sub string, args ...string) []string {
		return append(append([]string{"brands", sub}, storage(dir)...), args...)
	}
	journeys := func(sub string, args ...string) []string {
		return append(append([]string{"journeys", sub}, storage(dir)...), args...)
	}
	add := mustCLI(t, 0, brands("add", "--name", "Banco Exemplo", "--issuer", "https://auth.banco.example",
		"--api-base-url", "https://api.banco.example", "--client-id", "ponte-at-banco")...)
	f := fields(add.stdout)
	brandID := f["id"]
	if !hex24.MatchString(brandID) || len(brandID) != 24 {
		t.Fatalf("brand id: %s", add)
	}
	// The key is generated into the database (no file), and its private
	// part is never printed.
	if key := f["signing key"]; !strings.HasPrefix(key, "kid ") || !strings.Contains(key, "kept in the database") {
		t.Errorf("signing key line: %q", key)
	}
	if _, err := os.Stat(filepath.Join(dir, "brands")); err == nil {
		t.Errorf("a brand key directory was created in the data directory")
	}
	if strings.Contains(add.stdout, "PRIVATE KEY") || strings.Contains(add.stdout, `"d"`) {
		t.Errorf("private key printed: %s", add)
	}
	if r := ponteCLI(t, brands("add", "--name", "Dup", "--issuer", "https://auth.banco.example",
		"--api-base-url", "https://api.banco.example", "--client-id", "x")...); r.code != 1 || !strings.Contains(r.output(), "already registered") {
		t.Errorf("duplicate issuer: %s", r)
	}
	if r := ponteCLI(t, brands("add", "--name", "Bad", "--issuer", "not-a-url", "--api-base-url", "https://a.example", "--client-id", "x")...); r.code != 1 {
		t.Errorf("bad issuer accepted: %s", r)
	}
	var list []map[string]any
	out := mustCLI(t, 0, brands("list", "--json")...)
	if err := json.Unmarshal([]byte(out.stdout), &list); err != nil || len(list) != 1 || list[0]["enabled"] != true {
		t.Fatalf("brands list: %s", out)
	}
	if strings.Contains(out.stdout, "PRIVATE KEY") {
		t.Error("list prints the key")
	}
	mustCLI(t, 0, brands("disable", "--brand", brandID)...)
	if out := mustCLI(t, 0, brands("list")...); !strings.Contains(out.stdout, "false") {
		t.Errorf("disabled brand listed as enabled: %s", out)
	}
	if r := ponteCLI(t, brands("disable", "--brand", "000000000000000000000000")...); r.code != 1 {
		t.Errorf("unknown brand disabled: %s", r)
	}

	app := createApp(t, dir)
	created := mustCLI(t, 0, journeys("create", "--alias", "sweeping", "--name", "Sweeping", "--brand", brandID,
		"--setting", `PRIORITIES_BRANDS=["`+brandID+`"]`, "--setting", "JOURNEY_SESSION_TTL=900", "--app", app.clientID)...)
	if !hex24.MatchString(created.stdout) {
		t.Errorf("journeys create: %s", created)
	}
	for _, bad := range [][]string{
		{"--alias", "sweeping", "--name", "Again"},
		{"--alias", "default", "--name", "Default"},
		{"--alias", "x", "--name", "X", "--setting", "JOURNEY_SESSION_TTL=5"},
		{"--alias", "y", "--name", "Y", "--setting", "PRIORITIES_BRANDS=nope"},
		{"--alias", "z", "--name", "Z", "--brand", "000000000000000000000000"},
	} {
		if r := ponteCLI(t, journeys("create", bad...)...); r.code != 1 {
			t.Errorf("%v accepted: %s", bad, r)
		}
	}
	if out := mustCLI(t, 0, journeys("list")...); !strings.Contains(out.stdout, "sweeping") || !strings.Contains(out.stdout, "JOURNEY_SESSION_TTL") {
		t.Errorf("journeys list: %s", out)
	}
	mustCLI(t, 0, journeys("set-default", "--app", app.clientID, "--alias", "sweeping")...)
	if r := ponteCLI(t, journeys("set-default", "--app", app.clientID, "--alias", "missing")...); r.code != 1 {
		t.Errorf("unknown alias set as default: %s", r)
	}
	if r := ponteCLI(t, journeys("set-default", "--alias", "sweeping")...); r.code != 2 {
		t.Errorf("missing --app: %s", r)
	}
}

package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCLIOrganisationIDs: brands and applications carry organisation ids
// (brands add/update --org-id, apps create/set --org-id), and apps set
// exposes --accept-plain-json; a value that is not a UUID changes nothing.
func TestCLIOrganisationIDs(t *testing.T) {
	t.Parallel()
	const (
		brandOrg = "5b1e2a8c-3f4d-4e6a-9b7c-1d2e3f4a5b6c"
		appOrg   = "8d3f6c1a-2b4e-4f5a-9c7d-0e1f2a3b4c5d"
	)
	dir := t.TempDir()
	brands := func(sub string, args ...string) []string {
		return append(append([]string{"brands", sub}, storage(dir)...), args...)
	}
	add := mustCLI(t, 0, brands("add", "--name", "Banco", "--issuer", "https://auth.banco.example",
		"--api-base-url", "https://api.banco.example", "--client-id", "ponte-at-banco")...)
	id := fields(add.stdout)["id"]
	if got := fields(add.stdout)["organisation"]; got != "(none)" {
		t.Errorf("organisation of a brand added without one: %q", got)
	}
	if r := ponteCLI(t, brands("update", "--brand", id, "--org-id", "banco")...); r.code != 1 || !strings.Contains(r.output(), "UUID") {
		t.Errorf("update with a non-UUID: %s", r)
	}
	if r := ponteCLI(t, brands("update", "--brand", id)...); r.code != 2 || !strings.Contains(r.output(), "--org-id") {
		t.Errorf("update without --org-id: %s", r)
	}
	mustCLI(t, 0, brands("update", "--brand", id, "--org-id", brandOrg)...)
	var list []map[string]any
	out := mustCLI(t, 0, brands("list", "--json")...)
	if err := json.Unmarshal([]byte(out.stdout), &list); err != nil || len(list) != 1 || list[0]["organisationId"] != brandOrg {
		t.Fatalf("brands list: %s", out)
	}
	if r := ponteCLI(t, brands("add", "--name", "Outro", "--issuer", "https://auth.outro.example",
		"--api-base-url", "https://api.outro.example", "--client-id", "x", "--org-id", "outro")...); r.code != 1 {
		t.Errorf("brand added with a non-UUID organisation id: %s", r)
	}

	created := mustCLI(t, 0, appsCmd("create", dir, "--name", "Iniciadora", "--company-key", "ITP", "--scopes", "payments",
		"--org-id", appOrg)...)
	f := fields(created.stdout)
	if f["organisation"] != appOrg || !strings.HasPrefix(f["plain JSON"], "refused") {
		t.Fatalf("apps create: %s", created)
	}
	clientID := f["client_id"]
	set := mustCLI(t, 0, appsCmd("set", dir, "--app", clientID, "--accept-plain-json", "--org-id", "")...)
	if f := fields(set.stdout); f["organisation"] != "(none)" || f["plain JSON"] != "accepted" {
		t.Errorf("apps set: %s", set)
	}
	if r := ponteCLI(t, appsCmd("set", dir, "--app", clientID)...); r.code != 2 {
		t.Errorf("apps set without a change: %s", r)
	}
	if r := ponteCLI(t, appsCmd("set", dir, "--app", clientID, "--org-id", "itp")...); r.code != 1 {
		t.Errorf("apps set with a non-UUID: %s", r)
	}
	shown := mustCLI(t, 0, appsCmd("show", dir, "--app", clientID)...)
	if f := fields(shown.stdout); f["organisation"] != "(none)" || f["plain JSON"] != "accepted" {
		t.Errorf("after a refused set: %s", shown)
	}
}

package docs

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const modulePath = "github.com/ponte-ofb/ponte/"

// TestArchitectureImports holds the import list of architecture.md to the
// code: each package's imports of Ponte's own packages, as go list sees
// them. A new import or package fails here until the page says so.
func TestArchitectureImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("architecture.md's import list not checked: go is not on PATH")
	}
	doc, err := os.ReadFile("architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	documented, err := importBlock(string(doc))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goTool, "list", "-f", `{{.ImportPath}}: {{join .Imports " "}}`, "./cmd/...", "./internal/...", "./web", "./api")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	actual := map[string][]string{}
	var order []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		pkg = shortName(pkg)
		var own []string
		for _, imp := range strings.Fields(imports) {
			if strings.HasPrefix(imp, modulePath) {
				own = append(own, shortName(imp))
			}
		}
		slices.Sort(own)
		actual[pkg] = own
		order = append(order, pkg)
	}
	var want strings.Builder
	for _, pkg := range order {
		want.WriteString(strings.TrimRight(pkg+" → "+strings.Join(actual[pkg], " "), " ") + "\n")
	}
	for pkg, deps := range actual {
		got, ok := documented[pkg]
		switch {
		case !ok:
			t.Errorf("architecture.md does not list %s (it imports %v)", pkg, deps)
		case !slices.Equal(got, deps):
			t.Errorf("architecture.md: %s imports %v, the page says %v", pkg, deps, got)
		}
	}
	for pkg := range documented {
		if _, ok := actual[pkg]; !ok {
			t.Errorf("architecture.md lists %s, which does not exist", pkg)
		}
	}
	if t.Failed() {
		t.Logf("the list as the code has it (column alignment is free):\n%s", want.String())
	}
}

func shortName(importPath string) string {
	return strings.TrimPrefix(strings.TrimPrefix(importPath, modulePath), "internal/")
}

// importBlock reads the fenced block after <!-- imports -->: lines of
// "package → imports...".
func importBlock(doc string) (map[string][]string, error) {
	_, rest, ok := strings.Cut(doc, "<!-- imports -->\n```\n")
	if !ok {
		return nil, errNoImportBlock
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		return nil, errNoImportBlock
	}
	out := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		pkg, deps, ok := strings.Cut(line, "→")
		if !ok {
			return nil, errNoImportBlock
		}
		list := strings.Fields(deps)
		slices.Sort(list)
		out[strings.TrimSpace(pkg)] = list
	}
	return out, nil
}

type docError string

func (e docError) Error() string { return string(e) }

const errNoImportBlock = docError("architecture.md: no <!-- imports --> block of \"package → imports\" lines")

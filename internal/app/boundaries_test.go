package app_test

import (
	"errors"
	"fmt"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The two sides of the house (docs/architecture.md, "One binary, two
// sides"): the initiator side starts journeys at a brand, the holder side is
// the brand. Each must build without the other, so a side imports only its
// own packages and the shared ones, and a shared package imports neither
// side. Only the composition root (app, and app/apptest which starts it)
// joins them. A package is named by its first path element under internal/
// (oidc/oidctest is on oidc's side); anything not listed is shared.
//
// Only a package's own code counts (not its tests): the end-to-end tests of
// either side run the whole loop through app/apptest on purpose.
const (
	initiatorSide = "initiator"
	holderSide    = "holder"
	sharedSide    = "shared"
	rootSide      = "composition root"
)

var sides = map[string]string{
	"itp":        initiatorSide,
	"itpflow":    initiatorSide,
	"fapiclient": initiatorSide,

	"oidc":         holderSide,
	"consentflow":  holderSide,
	"payments":     holderSide,
	"recurring":    holderSide,
	"dataconsents": holderSide,
	"dataapi":      holderSide,
	"customers":    holderSide,
	"sandboxapp":   holderSide,
	"settlement":   holderSide,
	"ofwebhook":    holderSide,

	"app": rootSide,
}

// forbidden says which sides a package of each side may not import.
var forbidden = map[string][]string{
	initiatorSide: {holderSide},
	holderSide:    {initiatorSide},
	sharedSide:    {initiatorSide, holderSide},
}

func sideOf(internalPath string) string {
	first, _, _ := strings.Cut(internalPath, "/")
	if s, ok := sides[first]; ok {
		return s
	}
	return sharedSide
}

// crossing is one import that breaks the rules.
type crossing struct {
	from, to string // paths under internal/
}

func (c crossing) String() string {
	return fmt.Sprintf("%s (%s side) imports %s (%s side)", c.from, sideOf(c.from), c.to, sideOf(c.to))
}

// crossings reads the imports of every package under root/internal, as
// go/build sees them for this platform, and returns those that cross
// sides, and the packages it read.
func crossings(root, module string) ([]crossing, []string, error) {
	prefix := module + "/internal/"
	var found []crossing
	var pkgs []string
	err := filepath.WalkDir(filepath.Join(root, "internal"), func(dir string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			return filepath.SkipDir
		}
		p, err := build.ImportDir(dir, 0)
		if err != nil {
			var noGo *build.NoGoError
			if errors.As(err, &noGo) {
				return nil
			}
			return fmt.Errorf("%s: %w", dir, err)
		}
		rel, err := filepath.Rel(filepath.Join(root, "internal"), dir)
		if err != nil {
			return err
		}
		from := filepath.ToSlash(rel)
		pkgs = append(pkgs, from)
		for _, imp := range p.Imports {
			to, ok := strings.CutPrefix(imp, prefix)
			if !ok {
				continue
			}
			if slices.Contains(forbidden[sideOf(from)], sideOf(to)) {
				found = append(found, crossing{from, to})
			}
		}
		return nil
	})
	return found, pkgs, err
}

// modulePath reads the module line of root/go.mod.
func modulePath(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if m, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(m), `"`)
		}
	}
	t.Fatal("go.mod has no module line")
	return ""
}

// TestSidesStaySeparable: no initiator-side package imports a holder-side
// one, nor the reverse, and shared packages import neither.
func TestSidesStaySeparable(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	found, pkgs, err := crossings(root, modulePath(t, root))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range found {
		t.Errorf("%s: the sides must stay separable (only app joins them)", c)
	}
	// A renamed or moved package would make its rule check nothing.
	for name := range sides {
		if !slices.ContainsFunc(pkgs, func(p string) bool { return p == name || strings.HasPrefix(p, name+"/") }) {
			t.Errorf("internal/%s is in the table of sides but not in the tree: update the table", name)
		}
	}
}

// TestSidesCrossingsFound runs the check on a small tree in testdata whose
// packages cross sides in every forbidden way, and in the allowed ones.
func TestSidesCrossingsFound(t *testing.T) {
	t.Parallel()
	found, pkgs, err := crossings(filepath.Join("testdata", "sides"), "example.com/sides")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 6 {
		t.Fatalf("read only %v", pkgs)
	}
	var got []string
	for _, c := range found {
		got = append(got, c.from+" → "+c.to)
	}
	slices.Sort(got)
	want := []string{
		"consentflow → itpflow", // holder side → initiator side
		"itp → oidc/oidctest",   // initiator side → a holder side subpackage
		"ofb → customers",       // shared → holder side
		"pcm → fapiclient",      // shared → initiator side
		"recurring/sub → itp",   // a holder side subpackage → initiator side
	}
	if !slices.Equal(got, want) {
		t.Errorf("crossings found:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Named in the message with both sides.
	if len(found) > 0 && !strings.Contains(fmt.Sprint(found[0]), "side) imports ") {
		t.Errorf("message %q", found[0])
	}
}

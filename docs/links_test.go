package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	mdLink  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
)

// TestLinks: every relative link in README.md and docs/*.md names a file of
// the repository and, with a #fragment, a heading of that file; none leaves
// the repository (a clone has nothing beside it).
func TestLinks(t *testing.T) {
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join("..", "README.md"))
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(link, "#")
			target := f
			if path != "" {
				target = filepath.Join(filepath.Dir(f), path)
			}
			abs, err := filepath.Abs(target)
			if err != nil {
				t.Fatal(err)
			}
			if rel, err := filepath.Rel(root, abs); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: link %s leaves the repository", f, link)
				continue
			}
			body, err := os.ReadFile(target)
			if err != nil {
				t.Errorf("%s: link %s: %v", f, link, err)
				continue
			}
			if frag != "" && !hasAnchor(string(body), frag) {
				t.Errorf("%s: link %s: %s has no heading with that anchor", f, link, target)
			}
		}
	}
}

// hasAnchor reports whether a Markdown heading of doc gets the anchor frag
// the way GitHub makes them: lower case, punctuation dropped, spaces to '-'.
func hasAnchor(doc, frag string) bool {
	for _, m := range heading.FindAllStringSubmatch(doc, -1) {
		if anchor(m[1]) == frag {
			return true
		}
	}
	return false
}

func anchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestAnchor(t *testing.T) {
	for h, want := range map[string]string{
		"Try it":                 "try-it",
		"Meus compartilhamentos": "meus-compartilhamentos",
		"Sweeping consents (Automatic Payments v2)": "sweeping-consents-automatic-payments-v2",
		"Cards and mobile wallets":                  "cards-and-mobile-wallets",
		"Health, metrics and logs":                  "health-metrics-and-logs",
	} {
		if got := anchor(h); got != want {
			t.Errorf("anchor(%q) = %q, want %q", h, got, want)
		}
	}
}

package consentflow_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestJourneyImportsNoConsentKind holds the consent flow to knowing no kind
// of consent: payments, recurring and data-sharing consents plug into it
// (consentflow.ConsentKind) from their own packages, so none of them may be
// among its dependencies, direct or not.
func TestJourneyImportsNoConsentKind(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("consentflow's imports not checked: go is not on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	if !deps["github.com/ponte-ofb/ponte/internal/consentflow"] {
		t.Fatalf("go list -deps does not list consentflow itself: %s", out)
	}
	for _, kind := range []string{"payments", "recurring", "dataconsents"} {
		if p := "github.com/ponte-ofb/ponte/internal/" + kind; deps[p] {
			t.Errorf("consentflow depends on %s: consent kinds implement consentflow.ConsentKind in their own package", p)
		}
	}
}

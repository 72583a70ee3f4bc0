package consentflow_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
)

// The hand-off page polls its status as JSON; an unknown journey is a JSON
// answer too, labelled as such (it once went out as text/plain).
func TestHandoffStatusUnknownJourneyIsJSON(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	r := s.Do(t, "GET", "/openfinance/consent-flow/handoff/no-such-callback", map[string]string{"Accept": "application/json"}, "")
	if r.Status != http.StatusNotFound {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	var out map[string]string
	r.JSON(t, &out)
	if len(out) != 1 || out["status"] != "NOT_FOUND" {
		t.Errorf("body = %s, want {\"status\":\"NOT_FOUND\"}", r.Body)
	}
}

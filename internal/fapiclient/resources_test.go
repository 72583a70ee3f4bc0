package fapiclient_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/fapiclient"
)

// TestNewEndToEndID: "E", the generating agent's ISPB, the UTC minute and 11
// alphanumerics, matching the official pattern, unique across many draws;
// an ISPB that is not 8 digits is refused.
func TestNewEndToEndID(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 10, 15, 15, 55, 59, 0, time.FixedZone("BRT", -3*3600)) // 18:55 UTC
	tests := []struct {
		name, ispb, prefix string
		ok                 bool
	}{
		{"the initiator's ISPB", "11222333", "E11222333202410151855", true},
		{"leading zeros kept", "00038166", "E00038166202410151855", true},
		{"seven digits", "1122233", "", false},
		{"letters", "1122233A", "", false},
		{"empty", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := fapiclient.NewEndToEndID(tt.ispb, at)
			if !tt.ok {
				if err == nil {
					t.Fatalf("NewEndToEndID(%q) = %q, want an error", tt.ispb, id)
				}
				return
			}
			if err != nil || len(id) != 32 || !strings.HasPrefix(id, tt.prefix) || !fapiclient.EndToEndIDPattern.MatchString(id) {
				t.Fatalf("NewEndToEndID(%q) = %q, %v; want 32 characters starting %s", tt.ispb, id, err, tt.prefix)
			}
		})
	}
	if id, err := fapiclient.NewEndToEndID("11222333", time.Date(10000, 1, 2, 15, 0, 0, 0, time.UTC)); err == nil {
		t.Errorf("year 10000: %q, want an error", id)
	}
	seen := map[string]bool{}
	for range 20000 {
		id, _ := fapiclient.NewEndToEndID("11222333", at)
		if seen[id] {
			t.Fatalf("endToEndId %s drawn twice in one minute", id)
		}
		seen[id] = true
	}
}

// TestScheduledEndToEndInstant: a scheduled Pix's endToEndId carries its
// date at 15:00 UTC, whatever the zone of the date given.
func TestScheduledEndToEndInstant(t *testing.T) {
	t.Parallel()
	got := fapiclient.ScheduledEndToEndInstant(time.Date(2024, 10, 20, 0, 0, 0, 0, time.UTC))
	if want := time.Date(2024, 10, 20, 15, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	id, _ := fapiclient.NewEndToEndID("11222333", got)
	if !strings.HasPrefix(id, "E11222333202410201500") {
		t.Errorf("endToEndId %s", id)
	}
}

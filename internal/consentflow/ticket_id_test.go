package consentflow

import (
	"testing"
	"time"
)

func TestNewTicketID(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	seen := make(map[string]bool)
	prev := ""
	for i := range 2000 {
		// Several ids per millisecond, as under load.
		id := newTicketID(base.Add(time.Duration(i/4) * time.Millisecond))
		if !validTicketID(id) {
			t.Fatalf("newTicketID = %q: want 32 lowercase hex characters", id)
		}
		if seen[id] {
			t.Fatalf("newTicketID repeated %q", id)
		}
		seen[id] = true
		// Ids of a later millisecond sort after every earlier one, which is
		// what keeps new tickets at the end of the ticket_id index.
		if i%4 == 0 && prev != "" && id[:12] <= prev[:12] {
			t.Fatalf("id %q of a later millisecond does not sort after %q", id, prev)
		}
		prev = id
	}
	if got, want := newTicketID(base)[:12], "01a21c729100"; got != want {
		t.Errorf("time prefix = %s, want %s (milliseconds since the epoch, big-endian)", got, want)
	}
}

package pcm

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestNewEventIDIsTimeOrdered(t *testing.T) {
	prev := newEventID()
	for range 50 {
		time.Sleep(2 * time.Millisecond)
		id := newEventID()
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 7 {
			t.Fatalf("newEventID = %q (version %d, %v): want a UUIDv7", id, u.Version(), err)
		}
		// A later millisecond sorts after: new rows go at the end of the keys.
		if id <= prev {
			t.Fatalf("id %s of a later millisecond sorts before %s", id, prev)
		}
		prev = id
	}
}

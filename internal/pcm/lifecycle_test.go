package pcm_test

import (
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/lifecycle"
	"github.com/ponte-ofb/ponte/internal/lifecycle/lifecycletest"
	"github.com/ponte-ofb/ponte/internal/pcm"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

var _ lifecycle.Worker = (*pcm.Forwarder)(nil)

// TestForwarderStartStopStress starts and stops a sending Forwarder with
// items to send from many goroutines at once: no race, no goroutine or
// connection left behind, and whatever it sent was accepted once.
func TestForwarderStartStopStress(t *testing.T) {
	// Not parallel: Stress checks every goroutine of the process for leaks.
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := clock.NewFake(time.Now())
		s := newPCMServer(t, nil)
		recordEvents(t, db, c, 0, 50)
		f := newForwarder(db, c, s.URL, func(o *pcm.ForwarderOptions) { o.PollInterval = time.Millisecond })
		lifecycletest.Stress(t, f)
		st := settle(t, f, db, c)
		if st.Pending != 0 {
			t.Errorf("%d items still pending after the stress and a final drain", st.Pending)
		}
		assertExactlyOnce(t, s, 50, nil)
	})
}

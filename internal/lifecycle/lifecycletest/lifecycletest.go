// Package lifecycletest checks that a lifecycle.Worker keeps the package's
// contract under concurrent use.
package lifecycletest

import (
	"errors"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/ponte-ofb/ponte/internal/lifecycle"
)

// Stress starts and stops w from several goroutines at once, many times
// each (run it with -race). Then, with w quiet, it checks that w is stopped,
// that Stop is idempotent, that a second Start fails with
// lifecycle.ErrRunning, that a stopped worker starts again, and that no
// goroutine w started outlives its last Stop. It looks at every goroutine
// of the process, so the calling test must not run in parallel (t.Parallel)
// with others.
func Stress(t *testing.T, w lifecycle.Worker) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	ctx := t.Context()
	const goroutines, rounds = 8, 40
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range rounds {
				if err := w.Start(ctx); err != nil && !errors.Is(err, lifecycle.ErrRunning) {
					t.Errorf("Start: %v", err)
					return
				}
				stops := 1 + (g+i)%2 // every other round stops twice
				for range stops {
					if err := w.Stop(ctx); err != nil {
						t.Errorf("Stop: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Each goroutine ended with a Stop after its last Start: w is stopped.
	for range 2 {
		if err := w.Stop(ctx); err != nil {
			t.Fatalf("Stop on a stopped worker: %v", err)
		}
	}
	if err := w.Start(ctx); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	if err := w.Start(ctx); !errors.Is(err, lifecycle.ErrRunning) {
		t.Fatalf("second Start = %v, want lifecycle.ErrRunning", err)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	goleak.VerifyNone(t, before,
		// pgx closes a connection whose query Stop cancelled in a goroutine
		// of its own (a cancel request, then a bounded wait for the server):
		// the driver's cleanup, not the worker's.
		goleak.IgnoreAnyFunction("github.com/jackc/pgx/v5/pgconn.(*PgConn).asyncClose.func1"))
}

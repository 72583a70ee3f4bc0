// Package lifecycle is the one shape of Ponte's background work: a Worker
// starts with Start, runs in goroutines of its own, and is joined by Stop.
// app.Serve starts its workers in order with Start and stops them in reverse
// order with Group.Stop once HTTP has drained.
//
// The contract every Worker keeps:
//
//   - Start launches the work and returns at once. The worker runs until
//     Stop: Start's ctx gives it values (loggers, traces), not its lifetime,
//     so the caller decides the order of shutdown.
//   - Start on a running (or still stopping) worker returns ErrRunning.
//   - Stop asks the work to end and waits until every goroutine the worker
//     started has returned. It is idempotent, and returns nil on a worker
//     never started. If ctx ends first, Stop says so with an error; what
//     that means for work in flight is the worker's to document.
//   - After Stop returns nil, Start runs the worker again.
//   - Start and Stop are safe to call concurrently from any goroutine.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Worker is background work with a start and a joined stop (see the package doc).
type Worker interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// ErrRunning is returned by Start when the worker is running or still stopping.
var ErrRunning = errors.New("lifecycle: worker already running")

// Runner runs one function in a goroutine between Start and Stop: the
// building block of loop workers. Its zero value is ready to use.
type Runner struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{} // nil: not running; closed: run has returned
}

// Start runs run in a new goroutine with a context that ends when Stop is
// called. Start's ctx gives that context its values only.
func (r *Runner) Start(ctx context.Context, run func(ctx context.Context)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done != nil {
		select {
		case <-r.done: // run returned on its own; nobody stopped it yet
		default:
			return ErrRunning
		}
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	r.cancel, r.done = cancel, done
	go func() {
		defer close(done)
		run(runCtx)
	}()
	return nil
}

// Stop cancels run's context and waits for run to return, or for ctx to end
// (then the Runner stays stopping: a later Stop waits again, Start fails).
func (r *Runner) Stop(ctx context.Context) error {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
	default:
		select { // an ended ctx loses to a run that has already returned
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("lifecycle: stop: worker still running: %w", ctx.Err())
		}
	}
	r.mu.Lock()
	if r.done == done { // not restarted by a concurrent Start in between
		r.cancel, r.done = nil, nil
	}
	r.mu.Unlock()
	return nil
}

// Running reports whether run has been started and not yet returned.
func (r *Runner) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// Group is a set of started workers, stopped in reverse order of start.
type Group struct {
	started []Worker
}

// Start starts workers in order. If one fails, those already started are
// stopped in reverse order (with ctx) and the error says which one failed.
func Start(ctx context.Context, workers ...Worker) (*Group, error) {
	g := &Group{}
	for i, w := range workers {
		if err := w.Start(ctx); err != nil {
			return nil, errors.Join(fmt.Errorf("lifecycle: start worker %d (%T): %w", i, w, err), g.Stop(ctx))
		}
		g.started = append(g.started, w)
	}
	return g, nil
}

// Stop stops the group's workers in reverse order of start, each one joined
// before the next is asked, and returns their errors joined. Every worker is
// asked to stop even when ctx has ended; then each says so in its error.
func (g *Group) Stop(ctx context.Context) error {
	var errs []error
	for i := len(g.started) - 1; i >= 0; i-- {
		if err := g.started[i].Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %T: %w", g.started[i], err))
		}
	}
	return errors.Join(errs...)
}

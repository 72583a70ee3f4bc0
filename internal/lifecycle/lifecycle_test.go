package lifecycle_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/ponte-ofb/ponte/internal/lifecycle"
	"github.com/ponte-ofb/ponte/internal/lifecycle/lifecycletest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// loop is the smallest Runner-based worker: it waits for its context.
type loop struct{ r lifecycle.Runner }

func (l *loop) Start(ctx context.Context) error {
	return l.r.Start(ctx, func(ctx context.Context) { <-ctx.Done() })
}
func (l *loop) Stop(ctx context.Context) error { return l.r.Stop(ctx) }

func TestRunnerStress(t *testing.T) { lifecycletest.Stress(t, &loop{}) }

func TestRunnerStartCtxGivesValuesNotLifetime(t *testing.T) {
	type key struct{}
	var r lifecycle.Runner
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	got := make(chan any, 1)
	ended := make(chan struct{})
	if err := r.Start(ctx, func(ctx context.Context) {
		got <- ctx.Value(key{})
		<-ctx.Done()
		close(ended)
	}); err != nil {
		t.Fatal(err)
	}
	if v := <-got; v != "v" {
		t.Errorf("run's context value = %v, want v", v)
	}
	cancel()
	if !r.Running() {
		t.Error("cancelling Start's ctx stopped the worker; only Stop may")
	}
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
	default:
		t.Error("Stop returned before run did")
	}
	if r.Running() {
		t.Error("Running after Stop")
	}
}

func TestRunnerStopWithEndedContext(t *testing.T) {
	var r lifecycle.Runner
	release := make(chan struct{})
	if err := r.Start(t.Context(), func(context.Context) { <-release }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop of a run that ignores its context = %v, want context.Canceled", err)
	}
	if err := r.Start(t.Context(), func(context.Context) {}); !errors.Is(err, lifecycle.ErrRunning) {
		t.Errorf("Start while still stopping = %v, want ErrRunning", err)
	}
	close(release)
	if err := r.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	// A run that has returned wins over an ended context.
	if err := r.Start(t.Context(), func(context.Context) {}); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// recorder is a worker that logs its starts and stops.
type recorder struct {
	name     string
	log      *[]string
	startErr error
}

func (w *recorder) Start(context.Context) error {
	if w.startErr != nil {
		return w.startErr
	}
	*w.log = append(*w.log, "start "+w.name)
	return nil
}

func (w *recorder) Stop(context.Context) error {
	*w.log = append(*w.log, "stop "+w.name)
	return nil
}

func TestGroupStopsInReverseOrder(t *testing.T) {
	var log []string
	g, err := lifecycle.Start(t.Context(), &recorder{name: "a", log: &log}, &recorder{name: "b", log: &log}, &recorder{name: "c", log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{"start a", "start b", "start c", "stop c", "stop b", "stop a"}
	if !slices.Equal(log, want) {
		t.Errorf("got %v, want %v", log, want)
	}
}

func TestGroupStartFailureStopsTheStarted(t *testing.T) {
	var log []string
	boom := errors.New("boom")
	_, err := lifecycle.Start(t.Context(), &recorder{name: "a", log: &log}, &recorder{name: "b", log: &log},
		&recorder{name: "c", log: &log, startErr: boom}, &recorder{name: "d", log: &log})
	if !errors.Is(err, boom) {
		t.Fatalf("Start = %v, want boom", err)
	}
	want := []string{"start a", "start b", "stop b", "stop a"}
	if !slices.Equal(log, want) {
		t.Errorf("got %v, want %v", log, want)
	}
}

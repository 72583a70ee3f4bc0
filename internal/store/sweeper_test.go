package store_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/lifecycle"
	"github.com/ponte-ofb/ponte/internal/lifecycle/lifecycletest"
	"github.com/ponte-ofb/ponte/internal/store"
)

var _ lifecycle.Worker = (*store.Sweeper)(nil)

func TestSweeperStartStopStress(t *testing.T) {
	// Not parallel: Stress checks every goroutine of the process for leaks.
	s := store.NewSweeper(time.Microsecond, nil, func(ctx context.Context) error { return nil })
	lifecycletest.Stress(t, s)
}

// syncBuffer is a log destination safe for the sweeper's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestSweeperRoundsAndStop(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	rounds := make(chan struct{})
	inRound := make(chan struct{})
	var n int
	s := store.NewSweeper(time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)), func(ctx context.Context) error {
		n++
		switch n {
		case 1:
			rounds <- struct{}{}
			return errors.New("disk on fire")
		case 2:
			rounds <- struct{}{}
			return nil
		default: // a long round: Stop must cancel it and wait
			close(inRound)
			<-ctx.Done()
			return ctx.Err()
		}
	})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-rounds
	<-rounds // the failed round did not end the sweeper
	<-inRound
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("%d rounds, want 3", n)
	}
	if got := logs.String(); !strings.Contains(got, "periodic sweep failed") || !strings.Contains(got, "disk on fire") ||
		strings.Count(got, "periodic sweep failed") != 1 {
		t.Errorf("want the failed round logged once (and the cancelled one not at all); logs:\n%s", got)
	}
}

func TestSweeperRefusesNonPositiveInterval(t *testing.T) {
	t.Parallel()
	s := store.NewSweeper(0, nil, func(context.Context) error { return nil })
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "interval") {
		t.Errorf("Start with interval 0 = %v, want an error naming the interval", err)
	}
}

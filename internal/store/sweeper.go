package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ponte-ofb/ponte/internal/lifecycle"
)

// Sweeper is the periodic housekeeping worker (a lifecycle.Worker): once
// every interval it calls sweep, which deletes what has expired (each
// sweep in steps of its own, see DB.Sweep). A failed round is logged and
// the next one tries again.
type Sweeper struct {
	interval time.Duration
	sweep    func(ctx context.Context) error
	logger   *slog.Logger
	runner   lifecycle.Runner
}

// NewSweeper returns a stopped Sweeper that calls sweep every interval.
func NewSweeper(interval time.Duration, logger *slog.Logger, sweep func(ctx context.Context) error) *Sweeper {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Sweeper{interval: interval, sweep: sweep, logger: logger}
}

// Start sweeps every interval, the first time one interval from now, until
// Stop. Start's ctx gives values, not the lifetime.
func (s *Sweeper) Start(ctx context.Context) error {
	if s.interval <= 0 {
		return fmt.Errorf("store: sweeper: interval %s is not positive", s.interval)
	}
	return s.runner.Start(ctx, s.run)
}

// Stop cancels a round in progress (each step already committed stays) and
// waits for it. Safe to call more than once, concurrently, or unstarted.
func (s *Sweeper) Stop(ctx context.Context) error { return s.runner.Stop(ctx) }

func (s *Sweeper) run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("periodic sweep failed", "err", err)
			}
		}
	}
}

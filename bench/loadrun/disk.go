package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ponte-ofb/ponte/bench/internal/loadgen"
)

// FsyncResult is how long fsync takes on the file system holding Ponte's
// database: the floor under any durable commit, measured in the same run.
type FsyncResult struct {
	Samples int     `json:"samples"`
	P50ms   float64 `json:"p50Ms"`
	P99ms   float64 `json:"p99Ms"`
	Maxms   float64 `json:"maxMs"`
}

// probeFsync appends 4 KiB and fsyncs, n times, in a scratch file in dir, as
// SQLite's WAL commit does. It stops early after 10 s or when ctx ends.
func probeFsync(ctx context.Context, dir string, n int) (FsyncResult, error) {
	var r FsyncResult
	if n <= 0 {
		return r, nil
	}
	f, err := os.Create(filepath.Join(dir, "fsync-probe"))
	if err != nil {
		return r, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	lats := make([]time.Duration, 0, n)
	stop := time.Now().Add(10 * time.Second)
	for i := 0; i < n && ctx.Err() == nil && time.Now().Before(stop); i++ {
		if _, err := f.Write(buf); err != nil {
			return r, err
		}
		t0 := time.Now()
		if err := f.Sync(); err != nil {
			return r, err
		}
		lats = append(lats, time.Since(t0))
	}
	slices.Sort(lats)
	r.Samples = len(lats)
	r.P50ms, r.P99ms = ms(loadgen.Percentile(lats, 0.50)), ms(loadgen.Percentile(lats, 0.99))
	if len(lats) > 0 {
		r.Maxms = ms(lats[len(lats)-1])
	}
	return r, nil
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/bench/internal/benchproc"
)

// TestRunSmoke runs every path briefly through the real pieces (ponte
// serve, setup, prepared requests, two rounds of slices, results) and checks
// each answered only as it should: on SQLite always, on PostgreSQL too when
// PONTE_TEST_DATABASE_URL is set. All paths share one server per engine
// (-reuse), to keep the test short; one path then runs the default way, on
// servers of its own. The figures themselves are not judged.
func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts ponte serve")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := benchproc.ModuleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "ponte")
	if err := benchproc.Build(ctx, root, "./cmd/ponte", bin); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		paths  []string
		rounds int
		reuse  bool
	}{
		{"every path, shared servers", pathNames(), 2, true},
		{"one path, fresh servers", []string{"ticket"}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := options{paths: tc.paths, workers: 4, dur: 200 * time.Millisecond * time.Duration(tc.rounds), warmup: 50 * time.Millisecond,
				rounds: tc.rounds, reuse: tc.reuse, pg: os.Getenv("PONTE_TEST_DATABASE_URL"), tmpParent: t.TempDir(), bin: bin}
			if err := o.validate(); err != nil {
				t.Fatal(err)
			}
			var progress bytes.Buffer
			res, err := run(ctx, o, &progress)
			if err != nil {
				t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
			}
			check(t, o, res)
		})
	}
}

func check(t *testing.T, o options, res *Result) {
	t.Helper()
	if len(res.Paths) != len(o.paths) || res.Reused != o.reuse {
		t.Fatalf("%d paths measured (want %d), reused %v", len(res.Paths), len(o.paths), res.Reused)
	}
	for _, p := range res.Paths {
		engines := []*EngineResult{p.SQLite}
		if o.pg != "" {
			if p.PostgreSQL == nil || len(p.RoundRatios) != o.rounds || p.Ratio <= 0 {
				t.Errorf("%s: no PostgreSQL figures or ratio: %+v", p.Path, p)
				continue
			}
			engines = append(engines, p.PostgreSQL)
		} else if p.PostgreSQL != nil {
			t.Errorf("%s: PostgreSQL measured without a database URL", p.Path)
		}
		for _, e := range engines {
			if e.OK == 0 || e.Rate <= 0 || e.NonOK != 0 || e.Errors != 0 {
				t.Errorf("%s on %s: %d × %d, %d other statuses (%s), %d errors, %.0f/s", p.Path, e.Engine, e.OK, p.Status,
					e.NonOK, e.NonOKSample, e.Errors, e.Rate)
			}
			if _, err := os.Stat("/proc/self/stat"); err == nil && e.CPUPerRequestUs <= 0 {
				t.Errorf("%s on %s: no CPU time per request read from /proc", p.Path, e.Engine)
			}
		}
	}
	// Both outputs render every path.
	var table bytes.Buffer
	printResult(&table, res)
	for _, p := range res.Paths {
		if !strings.Contains(table.String(), p.Title) {
			t.Errorf("table lacks %q:\n%s", p.Title, table.String())
		}
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || len(back.Paths) != len(res.Paths) {
		t.Errorf("JSON does not round-trip: %v", err)
	}
}

// TestValidate keeps bad flags from starting a run.
func TestValidate(t *testing.T) {
	good := options{paths: []string{"ticket"}, workers: 4, dur: time.Second, warmup: time.Second, rounds: 2}
	for _, tc := range []struct {
		name string
		edit func(o *options)
	}{
		{"unknown path", func(o *options) { o.paths = []string{"tickets"} }},
		{"no path", func(o *options) { o.paths = nil }},
		{"no workers", func(o *options) { o.workers = 0 }},
		{"no rounds", func(o *options) { o.rounds = 0 }},
		{"rounds too short", func(o *options) { o.dur, o.rounds = 150*time.Millisecond, 2 }},
		{"negative warm-up", func(o *options) { o.warmup = -time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.edit(&o)
			if o.validate() == nil {
				t.Errorf("%+v accepted", o)
			}
		})
	}
	if err := good.validate(); err != nil {
		t.Errorf("good options refused: %v", err)
	}
}

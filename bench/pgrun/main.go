// Command pgrun measures the six hot write paths of issue 17 §2 on
// PostgreSQL against SQLite in the same run, and prints the ratio PG/SQLite
// of each with the server CPU per request beside it:
//
//	go run ./bench/pgrun                         # all six paths, 2–4 minutes
//	go run ./bench/pgrun -paths payment,pcm -rounds 5 -d 10s
//	go run ./bench/pgrun -json
//
// It builds ./cmd/ponte and, for each path, starts `ponte serve` twice in
// sandbox mode: on SQLite (a fresh data directory, WAL, synchronous=FULL)
// and on PostgreSQL (a fresh schema of -database-url, default
// PONTE_TEST_DATABASE_URL; without one, SQLite only). The same closed loop
// (bench/internal/loadgen, -c workers) loads each in turn; -rounds N splits
// each engine's -d into N slices that alternate the engines, so that other
// work on the machine weighs on both alike, and the ratio is the median of
// the rounds' ratios, printed with their spread.
//
// The paths: ticket create, journey-session create, payment consent create
// (Payments v4, PS256-signed JWT body from a partner application registered
// with its JWKS), recurring consent create (Automatic Payments v2, signed),
// PCM report, and WebView redemption (GET of a ticket created before the
// slice). Printed per path and engine: answers/s, p50/p99, non-2xx and
// transport errors, Ponte's CPU per request (from /proc, user + system,
// warm-up included) and, on PostgreSQL, the CPU per request of the
// database backends serving Ponte's connections (found by application_name;
// the database shares the machine). It reports; the exit status is 0
// whatever the figures (target: PG ≥ 0.6 × SQLite on every path).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ponte-ofb/ponte/bench/internal/benchproc"
	"github.com/ponte-ofb/ponte/bench/internal/loadgen"
)

// target is issue 17's: PostgreSQL at least 0.6 of SQLite on every path.
const target = 0.6

type options struct {
	paths          []string
	workers        int
	dur, warmup    time.Duration
	rounds         int
	pg             string
	asJSON         bool
	tmpParent, bin string
	reuse          bool // one server per engine for every path
}

func main() {
	var o options
	var pathList string
	fs := flag.NewFlagSet("pgrun", flag.ContinueOnError)
	fs.StringVar(&pathList, "paths", strings.Join(pathNames(), ","), "comma-separated paths to run")
	fs.IntVar(&o.workers, "c", 16, "concurrent workers of the closed loop")
	fs.DurationVar(&o.dur, "d", 6*time.Second, "measured time of each path on each engine, split into -rounds slices")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before a path's first slice on each engine (later slices: a quarter of it)")
	fs.IntVar(&o.rounds, "rounds", 3, "slices alternating SQLite and PostgreSQL; the ratio is the median of the rounds'")
	fs.StringVar(&o.pg, "database-url", os.Getenv("PONTE_TEST_DATABASE_URL"), "PostgreSQL URL; each server gets a fresh schema, dropped afterwards (default PONTE_TEST_DATABASE_URL; empty: SQLite only)")
	fs.BoolVar(&o.asJSON, "json", false, "print the results as JSON instead of tables")
	fs.StringVar(&o.tmpParent, "tmp", "", "where the temporary directory (binary, SQLite databases) goes; default the system's")
	fs.StringVar(&o.bin, "ponte-bin", "", "use this ponte binary instead of building ./cmd/ponte")
	fs.BoolVar(&o.reuse, "reuse", false, "start one server per engine for every path instead of fresh ones per path (faster; each path then writes into a database the paths before it filled)")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: go run ./bench/pgrun [flags]\n\nPostgreSQL against SQLite on the hot write paths (issue 17 §2), in the same run.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	o.paths = strings.FieldsFunc(pathList, func(r rune) bool { return r == ',' || r == ' ' })
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "pgrun:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	res, err := run(ctx, o, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgrun:", err)
		os.Exit(1)
	}
	if o.asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
		return
	}
	printResult(os.Stdout, res)
}

func (o *options) validate() error {
	for _, p := range o.paths {
		if !slices.Contains(pathNames(), p) {
			return fmt.Errorf("-paths: unknown path %q (known: %s)", p, strings.Join(pathNames(), ", "))
		}
	}
	switch {
	case len(o.paths) == 0:
		return errors.New("-paths names no path")
	case o.workers < 1 || o.workers > 1024:
		return errors.New("-c must be between 1 and 1024")
	case o.rounds < 1 || o.rounds > 50:
		return errors.New("-rounds must be between 1 and 50")
	case o.dur < 100*time.Millisecond*time.Duration(o.rounds) || o.dur > 10*time.Minute:
		return errors.New("-d must be at most 10m and at least 100ms per round")
	case o.warmup < 0 || o.warmup > time.Minute:
		return errors.New("-warmup must be between 0 and 1m")
	}
	return nil
}

// Result is everything one run measured; -json prints it.
type Result struct {
	Command   string `json:"command"`
	Revision  string `json:"revision,omitempty"` // git HEAD of the tree built, "+changes" when it had uncommitted changes
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
	CPUs      int    `json:"cpus"`
	// LoadAvg is the machine's 1-minute load average before and after:
	// other work on the same CPUs skews every figure.
	LoadAvgBefore float64      `json:"loadAvgBefore"`
	LoadAvgAfter  float64      `json:"loadAvgAfter"`
	Workers       int          `json:"workers"`
	Rounds        int          `json:"rounds"`
	SliceSeconds  float64      `json:"sliceSeconds"` // measured per slice
	PostgreSQL    string       `json:"postgresql"`   // "skipped: ..." or the server's version
	TargetRatio   float64      `json:"targetRatio"`  // PG/SQLite at least this on every path
	Paths         []PathResult `json:"paths"`
	AllMet        bool         `json:"allMet"` // every path's ratio met the target (false without PostgreSQL)
	Seconds       float64      `json:"elapsedSeconds"`
	Reused        bool         `json:"reusedServers,omitempty"` // -reuse: one server per engine for every path
}

// PathResult is one path on both engines.
type PathResult struct {
	Path       string        `json:"path"`
	Title      string        `json:"title"`
	Status     int           `json:"status"` // the answer counted
	SQLite     *EngineResult `json:"sqlite"`
	PostgreSQL *EngineResult `json:"postgresql,omitempty"`
	// Ratio is the median of the rounds' PG/SQLite ratios (RoundRatios).
	Ratio       float64   `json:"ratio,omitempty"`
	RoundRatios []float64 `json:"roundRatios,omitempty"`
	// CPURatio is SQLite's Ponte CPU per request over PostgreSQL's Ponte plus
	// backend CPU per request: what the ratio would approach were both
	// CPU-bound alone on the machine.
	CPURatio float64 `json:"cpuRatio,omitempty"`
	Met      bool    `json:"met"`
}

// EngineResult is one path on one engine, its slices together.
type EngineResult struct {
	Engine   string    `json:"engine"`
	Rate     float64   `json:"perSecond"` // answers with the counted status per measured second, all slices
	OK       int       `json:"ok"`
	NonOK    int       `json:"nonOK"`  // other statuses
	Errors   int       `json:"errors"` // transport errors
	Seconds  float64   `json:"seconds"`
	P50ms    float64   `json:"p50Ms"` // medians of the slices'
	P99ms    float64   `json:"p99Ms"`
	Rounds   []float64 `json:"roundRates"`
	Requests int64     `json:"requests"` // sent in all slices, warm-ups included
	// CPUPerRequestUs is Ponte's CPU time (user + system, /proc) over the
	// slices, warm-ups included, per request sent.
	CPUPerRequestUs float64 `json:"ponteCpuPerRequestUs"`
	// DBCPUPerRequestUs (PostgreSQL) is the same for the database backends
	// serving Ponte's connections; 0 when they could not be read.
	DBCPUPerRequestUs float64 `json:"dbCpuPerRequestUs,omitempty"`
	// DBWakeupsPerRequest (PostgreSQL) is how often per request those
	// backends blocked and were woken (voluntary context switches): for a
	// client message not there yet, the WAL flush of a commit, a lock. A
	// coarse sign of the round trips, not a count of them: on the 2-CPU VM
	// at load ~20 an autocommit INSERT cost 3.05, a SELECT 1 0.46.
	DBWakeupsPerRequest float64 `json:"dbWakeupsPerRequest,omitempty"`
	// RanOut counts slices whose prepared requests (signed bodies, tickets,
	// consents) ran out before the slice's end: their rate is taken over
	// the time they ran.
	RanOut int `json:"ranOut,omitempty"`
	// NonOKSample is one answer with another status (status and the start
	// of its body), taken after a slice that had some.
	NonOKSample string `json:"nonOKSample,omitempty"`
}

func run(ctx context.Context, o options, progress io.Writer) (*Result, error) {
	started := time.Now()
	res := &Result{
		Command:   "go run ./bench/pgrun" + strings.TrimSuffix(" "+strings.Join(os.Args[1:], " "), " "),
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(),
		Workers: o.workers, Rounds: o.rounds, SliceSeconds: (o.dur / time.Duration(o.rounds)).Seconds(), TargetRatio: target,
		LoadAvgBefore: benchproc.LoadAvg(), Reused: o.reuse,
	}
	say := func(format string, args ...any) { fmt.Fprintf(progress, "pgrun: "+format+"\n", args...) }
	if res.LoadAvgBefore > float64(res.CPUs)/2 {
		say("warning: load average %.2f on %d CPUs before the run: other work will skew the figures", res.LoadAvgBefore, res.CPUs)
	}
	tmp, err := os.MkdirTemp(o.tmpParent, "ponte-pgrun-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if tmp, err = filepath.Abs(tmp); err != nil {
		return nil, err
	}
	bin := o.bin
	if bin == "" {
		root, err := benchproc.ModuleRoot(ctx)
		if err != nil {
			return nil, err
		}
		res.Revision = revision(ctx, root)
		bin = filepath.Join(tmp, "ponte")
		say("building ./cmd/ponte")
		if err := benchproc.Build(ctx, root, "./cmd/ponte", bin); err != nil {
			return nil, err
		}
	}
	engines := []string{SQLite}
	if o.pg == "" {
		res.PostgreSQL = "skipped: no -database-url and no PONTE_TEST_DATABASE_URL"
	} else {
		engines = append(engines, PostgreSQL)
		res.PostgreSQL = pgVersion(ctx, o.pg)
	}
	res.AllMet = len(engines) == 2
	var shared servers
	if o.reuse {
		var stop func()
		if shared, stop, err = startServers(ctx, o, bin, tmp, "all", engines, say); err != nil {
			return nil, err
		}
		defer stop()
	}
	for _, p := range paths {
		if !slices.Contains(o.paths, p.name) {
			continue
		}
		pr, err := runPath(ctx, o, p, bin, tmp, engines, shared, say)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		res.Paths = append(res.Paths, *pr)
		res.AllMet = res.AllMet && pr.Met
	}
	res.LoadAvgAfter = benchproc.LoadAvg()
	res.Seconds = math.Round(time.Since(started).Seconds())
	return res, nil
}

// slice is one engine's measured share of one round.
type slice struct {
	loadgen.Result
	requests  int64         // sent, warm-up included
	wall      time.Duration // warm-up and measured window
	cpu       time.Duration // Ponte's
	dbCPU     time.Duration // the PostgreSQL backends'
	dbWakeups int64         // the PostgreSQL backends' voluntary context switches
	dbRead    bool          // dbCPU could be read
	ranOut    bool
	sample    string // an answer with another status, when there were some
}

// servers is one `ponte serve` per engine, by engine.
type servers map[string]*server

// startServers starts a server on each engine, side by side (starting is
// most of a short run's time, and nothing is measured then), named name.
// stop stops those that started, side by side too.
func startServers(ctx context.Context, o options, bin, tmp, name string, engines []string, say func(string, ...any)) (_ servers, stop func(), _ error) {
	started := make([]*server, len(engines))
	stop = func() {
		var wg sync.WaitGroup
		for _, s := range started {
			if s != nil {
				wg.Go(s.stop)
			}
		}
		wg.Wait()
	}
	errs := make([]error, len(engines))
	var wg sync.WaitGroup
	for i, e := range engines {
		say("%s: starting ponte serve on %s", name, e)
		wg.Go(func() { started[i], errs[i] = startServer(ctx, bin, tmp, name, e, o.pg) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		stop()
		return nil, nil, err
	}
	byEngine := servers{}
	for i, e := range engines {
		byEngine[e] = started[i]
	}
	return byEngine, stop, nil
}

// runPath sets p up on each engine's server and runs the rounds; with no
// servers given (the default, not -reuse) it starts fresh ones for p.
func runPath(ctx context.Context, o options, p path, bin, tmp string, engines []string, byEngine servers, say func(string, ...any)) (*PathResult, error) {
	if byEngine == nil {
		var stop func()
		var err error
		if byEngine, stop, err = startServers(ctx, o, bin, tmp, p.name, engines, say); err != nil {
			return nil, err
		}
		defer stop()
	}
	if p.setup != nil {
		for _, e := range engines {
			if err := p.setup(ctx, byEngine[e]); err != nil {
				return nil, fmt.Errorf("%s setup: %w", e, err)
			}
		}
	}
	est := map[string]float64{}
	for _, e := range engines {
		est[e] = p.guess
	}
	per := map[string][]slice{}
	sliceDur := o.dur / time.Duration(o.rounds)
	for r := range o.rounds {
		order := slices.Clone(engines)
		if r%2 == 1 {
			slices.Reverse(order) // neither engine always goes first
		}
		warm := o.warmup
		if r > 0 {
			warm /= 4
		}
		for _, e := range order {
			say("%s: round %d of %d on %s: %d workers, %s warm-up + %s", p.name, r+1, o.rounds, e, o.workers, warm, sliceDur)
			sl, err := measure(ctx, byEngine[e], p, o.workers, warm, sliceDur, est[e], progressOut(say))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", e, err)
			}
			if sl.wall > 0 && sl.requests > 0 {
				est[e] = float64(sl.requests) / sl.wall.Seconds()
			}
			per[e] = append(per[e], sl)
		}
	}
	pr := &PathResult{Path: p.name, Title: p.title, Status: p.status, SQLite: combine(SQLite, per[SQLite])}
	if pg := per[PostgreSQL]; len(pg) > 0 {
		pr.PostgreSQL = combine(PostgreSQL, pg)
		for i := range pg {
			if s := per[SQLite][i]; s.Rate > 0 {
				pr.RoundRatios = append(pr.RoundRatios, round3(pg[i].Rate/s.Rate))
			}
		}
		if len(pr.RoundRatios) > 0 {
			pr.Ratio = round3(loadgen.Median(pr.RoundRatios))
		}
		if pgCPU := pr.PostgreSQL.CPUPerRequestUs + pr.PostgreSQL.DBCPUPerRequestUs; pgCPU > 0 {
			pr.CPURatio = round3(pr.SQLite.CPUPerRequestUs / pgCPU)
		}
		pr.Met = pr.Ratio >= target
	}
	return pr, nil
}

// progressOut is where loadgen's per-slice line goes: the progress stream.
func progressOut(say func(string, ...any)) io.Writer {
	return writerFunc(func(b []byte) (int, error) {
		say("%s", strings.TrimSpace(string(b)))
		return len(b), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// measure runs one closed-loop slice of p on s. Requests made beforehand
// are sized from est, the engine's rate so far, with room to spare (×2:
// one slice can run 50 % faster than the one before it on a shared machine).
func measure(ctx context.Context, s *server, p path, workers int, warm, dur time.Duration, est float64, out io.Writer) (slice, error) {
	n := int(est*(warm+dur).Seconds()*2) + 4*workers
	mk, err := p.prepare(ctx, s, n)
	if err != nil {
		return slice{}, err
	}
	var sent atomic.Int64
	var ranOut atomic.Bool
	next := func(ctx context.Context) (*http.Request, func([]byte)) {
		req := mk(ctx)
		if req == nil {
			ranOut.Store(true)
			return nil, nil
		}
		sent.Add(1)
		return req, nil
	}
	pid := s.child.Pid()
	cpu0 := benchproc.ProcCPU(pid)
	db0, ok0 := s.pgBackends(ctx)
	t0 := time.Now()
	r := loadgen.ClosedLoop(ctx, loadgen.Closed{Name: p.name + " on " + s.engine, Workers: workers, Warmup: warm, Dur: dur,
		Status: p.status, Width: 24, Out: out}, next)
	sl := slice{Result: r, requests: sent.Load(), wall: time.Since(t0), cpu: benchproc.ProcCPU(pid) - cpu0, ranOut: ranOut.Load()}
	if db1, ok1 := s.pgBackends(ctx); ok0 && ok1 {
		d := backendsSince(db0, db1)
		sl.dbCPU, sl.dbWakeups, sl.dbRead = d.cpu, d.wakeups, true
	}
	if sl.Elapsed <= 0 { // ran out during the warm-up: nothing measured
		sl.Rate, sl.Elapsed = 0, 0
	}
	if err := ctx.Err(); err != nil {
		return sl, fmt.Errorf("interrupted: %w", err)
	}
	if err := s.alive(); err != nil {
		return sl, err
	}
	if sl.Other > 0 {
		sl.sample = sampleNonOK(ctx, s, p)
	}
	return sl, nil
}

// sampleNonOK sends one more request of p and, if it too is answered with
// another status than p's, returns that status and the start of the body:
// the loop counts other statuses but does not keep them.
func sampleNonOK(ctx context.Context, s *server, p path) string {
	mk, err := p.prepare(ctx, s, 1)
	if err != nil {
		return err.Error()
	}
	req := mk(ctx)
	if req == nil {
		return ""
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	if resp.StatusCode == p.status {
		return ""
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, strings.Join(strings.Fields(string(body)), " "))
}

// combine sums one engine's slices.
func combine(engine string, sl []slice) *EngineResult {
	e := &EngineResult{Engine: engine}
	var secs float64
	var cpu, dbCPU time.Duration
	var wakeups int64
	dbRead := true
	var p50, p99 []float64
	for _, s := range sl {
		e.OK += s.OK
		e.NonOK += s.Other
		e.Errors += s.Errs
		secs += s.Elapsed.Seconds()
		e.Requests += s.requests
		cpu += s.cpu
		dbCPU += s.dbCPU
		wakeups += s.dbWakeups
		dbRead = dbRead && s.dbRead
		e.Rounds = append(e.Rounds, math.Round(s.Rate))
		p50, p99 = append(p50, ms(s.P50)), append(p99, ms(s.P99))
		if s.ranOut {
			e.RanOut++
		}
		if e.NonOKSample == "" {
			e.NonOKSample = s.sample
		}
	}
	e.Seconds = math.Round(secs*1000) / 1000
	if secs > 0 {
		e.Rate = math.Round(float64(e.OK) / secs)
	}
	if len(sl) > 0 {
		e.P50ms, e.P99ms = loadgen.Median(p50), loadgen.Median(p99)
	}
	if e.Requests > 0 {
		e.CPUPerRequestUs = math.Round(float64(cpu) / float64(e.Requests) / 1e3)
		if dbRead {
			e.DBCPUPerRequestUs = math.Round(float64(dbCPU) / float64(e.Requests) / 1e3)
			e.DBWakeupsPerRequest = math.Round(float64(wakeups)/float64(e.Requests)*100) / 100
		}
	}
	return e
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 1e2 }

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// revision names the tree built: HEAD, and "+changes" when the working tree
// had uncommitted changes (others' work in progress, in a shared tree).
func revision(ctx context.Context, root string) string {
	head, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(head))
	if st, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		rev += "+changes"
	}
	return rev
}

// pgVersion is the PostgreSQL server's version, for the report.
func pgVersion(ctx context.Context, base string) string {
	db, err := openPG(base)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(ctx, `SHOW server_version`).Scan(&v); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return "PostgreSQL " + v
}

func printResult(w io.Writer, r *Result) {
	fmt.Fprintf(w, "Ponte on PostgreSQL against SQLite, hot write paths (issue 17 §2), each engine's `ponte serve` in its own process\n")
	fmt.Fprintf(w, "  command:  %s\n", r.Command)
	if r.Revision != "" {
		fmt.Fprintf(w, "  tree:     %s\n", r.Revision)
	}
	fmt.Fprintf(w, "  machine:  %s, %d CPUs shared by Ponte, the database and the load generator, %s; load average %.2f before, %.2f after\n",
		r.Platform, r.CPUs, r.GoVersion, r.LoadAvgBefore, r.LoadAvgAfter)
	fmt.Fprintf(w, "  engines:  SQLite (WAL, synchronous=FULL); %s\n", r.PostgreSQL)
	servers := "a fresh server per engine and path"
	if r.Reused {
		servers = "one server per engine for every path (-reuse)"
	}
	fmt.Fprintf(w, "  load:     closed loop, %d workers, %d round(s) of %.1fs measured per engine, engines alternating, %s; %.0fs in all\n\n",
		r.Workers, r.Rounds, r.SliceSeconds, servers, r.Seconds)
	for _, p := range r.Paths {
		fmt.Fprintf(w, "%s\n", p.Title)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "  engine\t%d/s\tper round\tp50 ms\tp99 ms\tnon-%d\terrors\tPonte CPU µs/req\tDB CPU µs/req\tDB wake-ups/req\t\n", p.Status, p.Status)
		for _, e := range []*EngineResult{p.SQLite, p.PostgreSQL} {
			if e == nil {
				continue
			}
			db, wake := "-", "-"
			if e.Engine == PostgreSQL {
				db, wake = "n/a", "n/a"
				if e.DBCPUPerRequestUs > 0 {
					db, wake = fmt.Sprintf("%.0f", e.DBCPUPerRequestUs), fmt.Sprintf("%.2f", e.DBWakeupsPerRequest)
				}
			}
			fmt.Fprintf(tw, "  %s\t%.0f\t%s\t%.2f\t%.2f\t%d\t%d\t%.0f\t%s\t%s\t\n", e.Engine, e.Rate, joinRates(e.Rounds), e.P50ms, e.P99ms,
				e.NonOK, e.Errors, e.CPUPerRequestUs, db, wake)
		}
		tw.Flush()
		for _, e := range []*EngineResult{p.SQLite, p.PostgreSQL} {
			if e != nil && e.RanOut > 0 {
				fmt.Fprintf(w, "  note: on %s %d slice(s) used up their prepared requests early; their rate is over the time they ran\n", e.Engine, e.RanOut)
			}
			if e != nil && e.NonOKSample != "" {
				fmt.Fprintf(w, "  note: on %s an answer other than %d: %s\n", e.Engine, p.Status, e.NonOKSample)
			}
		}
		if p.PostgreSQL != nil {
			fmt.Fprintf(w, "  PG/SQLite %.3f (median of %d round(s): %s)  target ≥ %.1f: %s   CPU-bound ratio %.3f\n",
				p.Ratio, len(p.RoundRatios), spread(p.RoundRatios), target, loadgen.Met(p.Met), p.CPURatio)
		}
		fmt.Fprintln(w)
	}
	if len(r.Paths) > 1 && !strings.HasPrefix(r.PostgreSQL, "skipped") {
		fmt.Fprintf(w, "Summary (target PG/SQLite ≥ %.1f on every path)\n", target)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "  path\tSQLite/s\tPG/s\tPG/SQLite\trounds\tCPU µs/req SQLite\tPG: Ponte + DB\tDB wake-ups/req\ttarget\t\n")
		for _, p := range r.Paths {
			fmt.Fprintf(tw, "  %s\t%.0f\t%.0f\t%.3f\t%s\t%.0f\t%.0f + %.0f\t%.2f\t%s\t\n", p.Path, p.SQLite.Rate, p.PostgreSQL.Rate, p.Ratio, spread(p.RoundRatios),
				p.SQLite.CPUPerRequestUs, p.PostgreSQL.CPUPerRequestUs, p.PostgreSQL.DBCPUPerRequestUs, p.PostgreSQL.DBWakeupsPerRequest, loadgen.Met(p.Met))
		}
		tw.Flush()
	}
}

func joinRates(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(s, " ")
}

// spread prints the rounds' ratios as min–max.
func spread(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	if len(v) == 1 {
		return fmt.Sprintf("%.2f", v[0])
	}
	return fmt.Sprintf("%.2f–%.2f", slices.Min(v), slices.Max(v))
}

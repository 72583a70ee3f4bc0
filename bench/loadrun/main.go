// Command loadrun measures ticket creation (POST
// /openfinance/consent-flow/ticket) on Ponte with SQLite, durable, against a
// bare net/http baseline that decodes and encodes the same JSON with no
// authentication and no storage, in the same run, over loopback, from a
// separate process:
//
//	go run ./bench/loadrun [-c 32] [-d 8s] [-json]
//
// It builds ./cmd/ponte and ./bench/baseline into a temporary directory,
// starts both on 127.0.0.1:0 (Ponte with a fresh data directory), obtains an
// access token for Ponte's sandbox demo application, and runs:
//
//  1. peak throughput: a closed loop of -c workers for -warmup plus -d against
//     each server; only 201 responses count;
//  2. constant rate: an open loop at half of Ponte's measured peak for
//     -warmup plus -d against each server, latency measured from each request's
//     scheduled send time.
//
// It prints requests per second of each, the ratio Ponte/baseline and the
// p50/p99 latencies, and whether the targets (ratio ≥ 0.35, Ponte's p99 ≤
// 10 ms at half peak) were met. It reports; it never fails on a figure. The
// child processes are stopped and the temporary directory removed on exit,
// including on Ctrl-C.
//
// With PONTE_CPUPROFILE=FILE set, Ponte runs as ./bench/ponteprof (the same
// wiring plus a CPU profile written to FILE on shutdown).
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
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ponte-ofb/ponte/bench/internal/benchproc"
)

// Targets from the issue. They are printed, never enforced.
const (
	targetRatio = 0.35
	targetP99ms = 10.0
)

type options struct {
	workers     int
	duration    time.Duration
	warmup      time.Duration
	rate        float64
	openWorkers int
	asJSON      bool
	tmpParent   string
	ponteBin    string
	fsyncProbes int
	rounds      int
}

func main() {
	var o options
	fs := flag.NewFlagSet("loadrun", flag.ContinueOnError)
	fs.IntVar(&o.workers, "c", 32, "concurrent workers of the peak (closed-loop) phase")
	fs.DurationVar(&o.duration, "d", 8*time.Second, "measured duration of each phase, per server")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before each phase")
	fs.Float64Var(&o.rate, "rate", 0, "requests/s of the constant-rate phase; 0 means half of Ponte's measured peak")
	fs.IntVar(&o.openWorkers, "open-workers", 256, "most requests in flight in the constant-rate phase")
	fs.BoolVar(&o.asJSON, "json", false, "print the results as JSON instead of a table")
	fs.StringVar(&o.tmpParent, "tmp", "", "where to create the temporary directory (binaries, Ponte's data); default the system temp dir")
	fs.StringVar(&o.ponteBin, "ponte-bin", "", "use this ponte binary instead of building ./cmd/ponte")
	fs.IntVar(&o.rounds, "rounds", 1, "split each phase into this many slices, alternating the servers (evens out background load)")
	fs.IntVar(&o.fsyncProbes, "fsync-probes", 200, "fsyncs timed on Ponte's file system before the load, for context (0: skip)")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: go run ./bench/loadrun [flags]\n\nLoad run: Ponte ticket creation (SQLite, durable) vs. a bare net/http baseline, over loopback.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "loadrun:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	res, err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadrun:", err)
		os.Exit(1)
	}
	if o.asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
		return
	}
	printTable(os.Stdout, res)
}

func (o *options) validate() error {
	switch {
	case o.workers < 1 || o.workers > 4096:
		return errors.New("-c must be between 1 and 4096")
	case o.duration < time.Second || o.duration > 10*time.Minute:
		return errors.New("-d must be between 1s and 10m")
	case o.warmup < 0 || o.warmup > time.Minute:
		return errors.New("-warmup must be between 0 and 1m")
	case o.rate < 0 || o.rate > 1e6:
		return errors.New("-rate must be between 0 and 1000000")
	case o.openWorkers < 1 || o.openWorkers > 4096:
		return errors.New("-open-workers must be between 1 and 4096")
	case o.rounds < 1 || o.rounds > 100 || o.duration/time.Duration(max(o.rounds, 1)) < time.Second:
		return errors.New("-rounds must be between 1 and 100, with at least 1s of -d per round")
	case o.fsyncProbes < 0 || o.fsyncProbes > 100000:
		return errors.New("-fsync-probes must be between 0 and 100000")
	}
	return nil
}

// Result is everything one run measured; -json prints it.
type Result struct {
	Command    string `json:"command"`
	GoVersion  string `json:"goVersion"`
	Platform   string `json:"platform"`
	CPUs       int    `json:"cpus"`
	Database   string `json:"database"`
	FileSystem string `json:"fileSystem"`
	Profile    string `json:"cpuProfile,omitempty"`
	// LoadAvg is the machine's 1-minute load average before and after the
	// run: anything else running on the same CPUs skews the figures.
	LoadAvgBefore float64 `json:"loadAvgBefore"`
	LoadAvgAfter  float64 `json:"loadAvgAfter"`
	// Fsync is the file system's own fsync latency, measured before the load.
	Fsync FsyncResult `json:"fsync"`

	Peak struct {
		Baseline PhaseResult `json:"baseline"`
		Ponte    PhaseResult `json:"ponte"`
		Ratio    float64     `json:"ratio"` // Ponte's 201/s over the baseline's
		// RoundRatios is the ratio of each round (-rounds), a measure of noise.
		RoundRatios []float64 `json:"roundRatios"`
	} `json:"peak"`
	HalfPeak struct {
		Rate     float64     `json:"rate"` // offered requests/s
		Ponte    PhaseResult `json:"ponte"`
		Baseline PhaseResult `json:"baseline"`
	} `json:"halfPeak"`
	Targets struct {
		RatioMin   float64 `json:"ratioMin"`
		RatioMet   bool    `json:"ratioMet"`
		P99MaxMs   float64 `json:"p99MaxMs"`
		P99Met     bool    `json:"p99Met"`
		AllCreated bool    `json:"allCreated"` // no non-201 and no errors anywhere
	} `json:"targets"`
	TokenRenewals        int64 `json:"tokenRenewals"`
	TokenRenewalFailures int64 `json:"tokenRenewalFailures"`
}

func run(ctx context.Context, o options) (*Result, error) {
	res := &Result{
		Command:   "go run ./bench/loadrun" + strings.TrimSuffix(" "+strings.Join(os.Args[1:], " "), " "),
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(),
	}
	res.LoadAvgBefore = benchproc.LoadAvg()
	if res.LoadAvgBefore > float64(res.CPUs)/2 {
		progress("warning: load average %.2f on %d CPUs before the run: other work will skew the figures", res.LoadAvgBefore, res.CPUs)
	}
	tmp, err := os.MkdirTemp(o.tmpParent, "ponte-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if tmp, err = filepath.Abs(tmp); err != nil {
		return nil, err
	}

	root, err := benchproc.ModuleRoot(ctx)
	if err != nil {
		return nil, err
	}
	ponteBin, ponteEnv := o.ponteBin, []string(nil)
	ponteArgs := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(tmp, "data")}
	if prof := os.Getenv("PONTE_CPUPROFILE"); prof != "" {
		if prof, err = filepath.Abs(prof); err != nil {
			return nil, err
		}
		res.Profile = prof
		ponteEnv = []string{"PONTE_CPUPROFILE=" + prof}
	}
	switch {
	case ponteBin != "": // given; with PONTE_CPUPROFILE it should be a ponteprof build
	case res.Profile != "":
		ponteBin = filepath.Join(tmp, "ponteprof")
		progress("building ./bench/ponteprof (PONTE_CPUPROFILE is set: Ponte will write a CPU profile to %s)", res.Profile)
		if err := benchproc.Build(ctx, root, "./bench/ponteprof", ponteBin); err != nil {
			return nil, err
		}
	default:
		ponteBin = filepath.Join(tmp, "ponte")
		progress("building ./cmd/ponte")
		if err := benchproc.Build(ctx, root, "./cmd/ponte", ponteBin); err != nil {
			return nil, err
		}
	}
	baseBin := filepath.Join(tmp, "baseline")
	progress("building ./bench/baseline")
	if err := benchproc.Build(ctx, root, "./bench/baseline", baseBin); err != nil {
		return nil, err
	}

	var baseURL string
	base, err := benchproc.Start(ctx, "baseline", baseBin, []string{"--addr", "127.0.0.1:0"}, nil,
		filepath.Join(tmp, "baseline.log"), 30*time.Second, benchproc.BaselineParser(&baseURL))
	if err != nil {
		return nil, err
	}
	defer base.Stop()
	var info benchproc.PonteInfo
	ponte, err := benchproc.Start(ctx, "ponte", ponteBin, ponteArgs, ponteEnv,
		filepath.Join(tmp, "ponte.log"), 60*time.Second, benchproc.PonteBannerParser(&info))
	if err != nil {
		return nil, err
	}
	defer ponte.Stop()
	res.Database = filepath.Join(tmp, "data", "ponte.db")
	res.FileSystem = benchproc.FSType(res.Database)
	if o.fsyncProbes > 0 {
		progress("timing %d fsyncs on %s (%s)", o.fsyncProbes, filepath.Dir(res.Database), res.FileSystem)
		if res.Fsync, err = probeFsync(ctx, filepath.Dir(res.Database), o.fsyncProbes); err != nil {
			return nil, fmt.Errorf("fsync probe: %w", err)
		}
	}

	conns := max(o.workers, o.openWorkers) + 16
	ponteClient := &http.Client{Transport: newTransport(conns), Timeout: 10 * time.Second}
	baseClient := &http.Client{Transport: newTransport(conns), Timeout: 10 * time.Second}
	defer ponteClient.CloseIdleConnections()
	defer baseClient.CloseIdleConnections()
	if err := benchproc.WaitReady(ctx, ponteClient, info.URL+"/readyz", ponte, 30*time.Second); err != nil {
		return nil, err
	}

	tokens := &tokenSource{client: ponteClient, url: info.URL + "/oauth/token", clientID: info.ClientID, secret: info.ClientSecret}
	if err := tokens.fetch(ctx); err != nil {
		return nil, fmt.Errorf("%w%s", err, ponte.LogTail())
	}
	renewCtx, stopRenew := context.WithCancel(ctx)
	defer stopRenew()
	go tokens.renew(renewCtx)

	pt := &target{pid: ponte.Pid(), name: "ponte", url: info.URL + ticketPath, client: ponteClient, token: tokens}
	bt := &target{pid: base.Pid(), name: "baseline", url: baseURL + ticketPath, client: baseClient, token: tokens}
	if err := checkShapes(ctx, pt, bt); err != nil {
		return nil, fmt.Errorf("sanity check: %w%s", err, ponte.LogTail())
	}

	// Each phase alternates the two servers -rounds times, so that whatever
	// else the machine does weighs on both alike.
	slice := o.duration / time.Duration(o.rounds)
	var peakB, peakP phaseRun
	for i := range o.rounds {
		progress("peak %d/%d, baseline: closed loop, %d workers, %s warm-up + %s", i+1, o.rounds, o.workers, o.warmup, slice)
		b := closedLoop(ctx, bt, o.workers, o.warmup, slice)
		if err := alive(ctx, base, ponte); err != nil {
			return nil, err
		}
		progress("peak %d/%d, ponte: closed loop, %d workers, %s warm-up + %s", i+1, o.rounds, o.workers, o.warmup, slice)
		p := closedLoop(ctx, pt, o.workers, o.warmup, slice)
		if err := alive(ctx, base, ponte); err != nil {
			return nil, err
		}
		peakB.add(b)
		peakP.add(p)
		if rb, rp := summarize("", "", 0, b), summarize("", "", 0, p); rb.RPS > 0 {
			res.Peak.RoundRatios = append(res.Peak.RoundRatios, round3(rp.RPS/rb.RPS))
		}
	}
	res.Peak.Baseline = summarize(bt.name, "closed", o.workers, peakB)
	res.Peak.Ponte = summarize(pt.name, "closed", o.workers, peakP)
	if res.Peak.Baseline.RPS > 0 {
		res.Peak.Ratio = res.Peak.Ponte.RPS / res.Peak.Baseline.RPS
	}

	rate := o.rate
	if rate == 0 {
		rate = res.Peak.Ponte.RPS / 2
	}
	if rate < 1 {
		return nil, fmt.Errorf("at peak Ponte created %d tickets (%d non-201, %d errors; first error: %s): nothing to run at half of it%s",
			res.Peak.Ponte.Created, res.Peak.Ponte.Non201, res.Peak.Ponte.Errors, res.Peak.Ponte.FirstError, ponte.LogTail())
	}
	res.HalfPeak.Rate = rate
	var openP, openB phaseRun
	for i := range o.rounds {
		progress("constant rate %d/%d, ponte: open loop, %.0f req/s, %s warm-up + %s", i+1, o.rounds, rate, o.warmup, slice)
		openP.add(openLoop(ctx, pt, rate, o.openWorkers, o.warmup, slice))
		if err := alive(ctx, base, ponte); err != nil {
			return nil, err
		}
		progress("constant rate %d/%d, baseline: open loop, %.0f req/s, %s warm-up + %s", i+1, o.rounds, rate, o.warmup, slice)
		openB.add(openLoop(ctx, bt, rate, o.openWorkers, o.warmup, slice))
		if err := alive(ctx, base, ponte); err != nil {
			return nil, err
		}
	}
	res.HalfPeak.Ponte = summarize(pt.name, "open", o.openWorkers, openP)
	res.HalfPeak.Baseline = summarize(bt.name, "open", o.openWorkers, openB)
	res.HalfPeak.Ponte.OfferedRate, res.HalfPeak.Baseline.OfferedRate = rate, rate

	res.Targets.RatioMin, res.Targets.P99MaxMs = targetRatio, targetP99ms
	res.Targets.RatioMet = res.Peak.Ratio >= targetRatio
	res.Targets.P99Met = res.HalfPeak.Ponte.Created > 0 && res.HalfPeak.Ponte.P99ms <= targetP99ms
	res.Targets.AllCreated = true
	for _, p := range []PhaseResult{res.Peak.Baseline, res.Peak.Ponte, res.HalfPeak.Ponte, res.HalfPeak.Baseline} {
		if p.Non201 > 0 || p.Errors > 0 {
			res.Targets.AllCreated = false
		}
	}
	res.TokenRenewals, res.TokenRenewalFailures = tokens.renewals.Load(), tokens.failures.Load()
	res.LoadAvgAfter = benchproc.LoadAvg()
	stopRenew()
	// Stop Ponte now, so that a CPU profile is complete when we report.
	ponte.Stop()
	base.Stop()
	return res, nil
}

// alive fails the run when it was interrupted or a server died.
func alive(ctx context.Context, cs ...*benchproc.Child) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	for _, c := range cs {
		if !c.Running() {
			return fmt.Errorf("%s exited during the run (%v)%s", c.Name, c.Err(), c.LogTail())
		}
	}
	return nil
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadrun: "+format+"\n", args...)
}

func metOrMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func printTable(w io.Writer, r *Result) {
	fmt.Fprintf(w, "Ponte load run: POST %s over loopback, each server in its own process\n", ticketPath)
	fmt.Fprintf(w, "  command:   %s\n", r.Command)
	fmt.Fprintf(w, "  machine:   %s, %d CPUs shared by both servers and the load generator, %s; load average %.2f before, %.2f after\n",
		r.Platform, r.CPUs, r.GoVersion, r.LoadAvgBefore, r.LoadAvgAfter)
	fmt.Fprintf(w, "  ponte:     sandbox mode, SQLite on %s (WAL, synchronous=FULL: every 201 is on disk), bearer token, idempotencyKey per request\n", r.FileSystem)
	fmt.Fprintf(w, "  baseline:  bare net/http handler, same request and response JSON, no auth, no storage\n")
	if r.Fsync.Samples > 0 {
		fmt.Fprintf(w, "  disk:      fsync of a 4 KiB append on that file system: p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d samples, before the load)\n",
			r.Fsync.P50ms, r.Fsync.P99ms, r.Fsync.Maxms, r.Fsync.Samples)
	}
	if r.Profile != "" {
		fmt.Fprintf(w, "  profile:   CPU profile of Ponte in %s (go tool pprof -top %s)\n", r.Profile, r.Profile)
	}
	fmt.Fprintln(w)

	table := func(open bool, ps ...PhaseResult) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "  target\t201/s\tp50 ms\tp99 ms\tmax ms\t201s\tnon-201\terrors\tserver CPU µs/req\t")
		if open {
			fmt.Fprint(tw, "generator lag p99 ms\t")
		}
		fmt.Fprintln(tw)
		for _, p := range ps {
			fmt.Fprintf(tw, "  %s\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%d\t%.0f\t", p.Target, p.RPS, p.P50ms, p.P99ms, p.Maxms, p.Created, p.Non201, p.Errors, p.CPUPerRequestUs)
			if open {
				fmt.Fprintf(tw, "%.2f\t", p.LagP99ms)
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
	}

	pb := r.Peak.Baseline
	fmt.Fprintf(w, "Peak throughput: closed loop, %d workers, %.0fs measured per server after warm-up\n", pb.Workers, pb.Seconds)
	table(false, r.Peak.Baseline, r.Peak.Ponte)
	fmt.Fprintf(w, "  ratio ponte/baseline: %.3f", r.Peak.Ratio)
	if len(r.Peak.RoundRatios) > 1 {
		fmt.Fprintf(w, " (per round: %v)", r.Peak.RoundRatios)
	}
	fmt.Fprintln(w)
	if b, p := r.Peak.Baseline.CPUPerRequestUs, r.Peak.Ponte.CPUPerRequestUs; b > 0 && p > 0 {
		fmt.Fprintf(w, "  server CPU per request, baseline/ponte: %.3f (what the ratio would approach if both were CPU-bound alone on the machine)\n", b/p)
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "At half of Ponte's peak: open loop, %.0f req/s offered for %.0fs per server; latency from each request's scheduled send time\n",
		r.HalfPeak.Rate, r.HalfPeak.Ponte.Seconds)
	table(true, r.HalfPeak.Ponte, r.HalfPeak.Baseline)
	fmt.Fprintln(w)

	for _, p := range []PhaseResult{r.Peak.Baseline, r.Peak.Ponte, r.HalfPeak.Ponte, r.HalfPeak.Baseline} {
		if p.Non201 > 0 || p.Errors > 0 {
			fmt.Fprintf(w, "  note: %s (%s loop) statuses %v", p.Target, p.Mode, p.Statuses)
			if p.FirstError != "" {
				fmt.Fprintf(w, ", first error: %s", p.FirstError)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "Targets (reported, never enforced):\n")
	fmt.Fprintf(w, "  ratio ponte/baseline >= %.2f:          %.3f     %s\n", r.Targets.RatioMin, r.Peak.Ratio, metOrMissed(r.Targets.RatioMet))
	fmt.Fprintf(w, "  ponte p99 at half peak <= %.0f ms:       %.2f ms  %s\n", r.Targets.P99MaxMs, r.HalfPeak.Ponte.P99ms, metOrMissed(r.Targets.P99Met))
}

// Command datarun measures Accounts 2.4.2 transaction page reads
// (GET /open-banking/accounts/v2/accounts/{accountId}/transactions, page-size
// 1000, the sandbox's 1,600-transaction checking account, 12 months) against a
// bare net/http handler that encodes an already-built page of the same 1,000
// transactions, both measured in the same run, and prints the ratio and p99.
//
// Two kinds of phase, as in bench/loadrun:
//
//  1. peak throughput: a closed loop of -c workers (baseline, Ponte page 1,
//     Ponte page 2); the ratio is Ponte's 200/s over the baseline's. Its p99
//     is printed too, but in a closed loop it is mostly queueing;
//  2. latency at half of Ponte's peak: an open loop offering half of Ponte's
//     measured page-1 rate (or -rate) to Ponte, then to the baseline; latency
//     is measured from each request's scheduled send time (no coordinated
//     omission), and the generator's own lateness is reported. The p99 target
//     is judged on this phase.
//
// With -rounds N the closed-loop phases alternate N times and the ratio is
// the median of the rounds; the open-loop phases then alternate N times and
// their samples are pooled. Compare within one run on a shared machine.
// -cpuprofile FILE writes FILE.page1 and FILE.page2 (closed loop).
//
// Ponte runs in process on SQLite (WAL) in sandbox mode, seeded by app.New;
// the data routes are dataapi.Handler over the app's own DataAPI service and
// database. Token introspection and the consent lookup are in-memory here
// (an authorised grant over the three sandbox accounts): the bench measures
// the route's checks, the SQL page read and the encoding, not the
// authorization server.
//
//	go run ./bench/datarun            # about 30 s
//	go run ./bench/datarun -c 32 -d 10s
//	go run ./bench/datarun -c 4 -d 3s -rounds 5 -cpuprofile /tmp/data.prof
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/dataapi"
)

// cpuProfile, when set, is the prefix of the Ponte phases' CPU profiles.
var cpuProfile string

// profile starts a CPU profile named cpuProfile+"."+name and returns its stop
// function (a no-op without -cpuprofile).
func profile(name string) func() {
	if cpuProfile == "" {
		return func() {}
	}
	f, err := os.Create(cpuProfile + "." + name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "datarun: profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "datarun: profile:", err)
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

func main() {
	workers := flag.Int("c", 16, "concurrent workers (closed loop)")
	dur := flag.Duration("d", 5*time.Second, "measured duration of each phase")
	warmup := flag.Duration("warmup", time.Second, "unmeasured warm-up before each phase")
	rounds := flag.Int("rounds", 1, "alternate baseline and Ponte phases this many times and report the median ratio and p99 (steadier on a shared machine)")
	rate := flag.Float64("rate", 0, "pages/s offered in the open-loop phase; 0 means half of Ponte's measured closed-loop page-1 rate")
	openWorkers := flag.Int("open-workers", 256, "most requests in flight in the open-loop phase")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write CPU profiles of the Ponte phases to FILE.page1 and FILE.page2 (the whole process: filter with pprof -focus)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *workers, *dur, *warmup, max(*rounds, 1), *rate, max(*openWorkers, 1)); err != nil {
		fmt.Fprintln(os.Stderr, "datarun:", err)
		os.Exit(1)
	}
}

// grants holds the one authorised consent of the run.
type grants struct{ g dataapi.Grant }

func (s grants) Grant(_ context.Context, id string) (*dataapi.Grant, error) {
	if id != s.g.ConsentID {
		return nil, dataapi.ErrGrantNotFound
	}
	g := s.g
	return &g, nil
}

// tokens knows the one access token of the run.
type tokens struct {
	raw string
	tok dataapi.Token
}

func (s tokens) VerifyToken(_ context.Context, raw string) (*dataapi.Token, error) {
	if raw != s.raw {
		return nil, dataapi.ErrInvalidToken
	}
	t := s.tok
	return &t, nil
}

func run(ctx context.Context, workers int, dur, warmup time.Duration, rounds int, rate float64, openWorkers int) error {
	dir, err := os.MkdirTemp("", "datarun-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	cfg := config.Config{Addr: ln.Addr().String(), DataDir: dir, Mode: config.Sandbox, PublicURL: "http://" + ln.Addr().String(),
		SigningKeyFile: filepath.Join(dir, "signing-key.pem"), TokenTTL: time.Hour, LogFormat: "json",
		ShutdownTimeout: 5 * time.Second, SweepInterval: time.Hour}
	if err := cfg.Finish(); err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer a.Close()
	accts, err := a.Customers.Accounts(ctx, a.Demo.ID, dataapi.SandboxDocument)
	if err != nil {
		return err
	}
	g := dataapi.Grant{ConsentID: "urn:ponte:bench", ApplicationID: a.Demo.ID, Document: dataapi.SandboxDocument, Status: dataapi.ConsentAuthorised,
		Permissions: []string{dataapi.PermResourcesRead, dataapi.PermAccountsRead, dataapi.PermTransactionsRead}, ExpiresAt: time.Now().AddDate(0, 6, 0)}
	checking := ""
	for _, x := range accts {
		g.AccountIDs = append(g.AccountIDs, x.ID)
		if x.Number == "1234567" {
			checking = x.ID
		}
	}
	tok := tokens{raw: uuid.NewString(), tok: dataapi.Token{ApplicationID: a.Demo.ID, ClientID: a.Demo.ClientID,
		Scopes: []string{"openid", "accounts", "consent:" + g.ConsentID}}}
	svc := dataapi.NewService(a.DB, a.Clock, grants{g})
	mux := http.NewServeMux()
	(&dataapi.Handler{Service: svc, Tokens: tok, Institution: dataapi.SandboxInstitution, BaseURL: cfg.PublicURL,
		Logger: slog.New(slog.DiscardHandler)}).Register(mux)
	ponte := &http.Server{Handler: mux}
	go func() { _ = ponte.Serve(ln) }()
	defer ponte.Close()

	today := time.Now().In(time.FixedZone("BRT", -3*3600))
	path := dataapi.AccountsPath + "/" + checking + "/transactions?page-size=1000&fromBookingDate=" +
		today.AddDate(-1, 0, 0).Format("2006-01-02") + "&toBookingDate=" + today.AddDate(0, 1, 0).Format("2006-01-02")

	// The baseline serves Ponte's own first page, read once: the same bytes'
	// worth of encoding from an in-memory value, no checks, no database.
	page, err := fetch(ctx, cfg.PublicURL+path, tok.raw)
	if err != nil {
		return err
	}
	var body struct {
		Data  []map[string]any `json:"data"`
		Links map[string]any   `json:"links"`
		Meta  map[string]any   `json:"meta"`
	}
	if err := json.Unmarshal(page, &body); err != nil {
		return err
	}
	if len(body.Data) != 1000 {
		return fmt.Errorf("first page holds %d transactions, want 1000", len(body.Data))
	}
	type txn struct {
		TransactionID                  string `json:"transactionId"`
		CompletedAuthorisedPaymentType string `json:"completedAuthorisedPaymentType"`
		CreditDebitType                string `json:"creditDebitType"`
		TransactionName                string `json:"transactionName"`
		Type                           string `json:"type"`
		TransactionAmount              struct {
			Amount   string `json:"amount"`
			Currency string `json:"currency"`
		} `json:"transactionAmount"`
		TransactionDateTime string `json:"transactionDateTime"`
		PartieCnpjCpf       string `json:"partieCnpjCpf,omitempty"`
		PartiePersonType    string `json:"partiePersonType,omitempty"`
		PartieCompeCode     string `json:"partieCompeCode,omitempty"`
		PartieBranchCode    string `json:"partieBranchCode,omitempty"`
		PartieNumber        string `json:"partieNumber,omitempty"`
		PartieCheckDigit    string `json:"partieCheckDigit,omitempty"`
	}
	var typed struct {
		Data  []txn `json:"data"`
		Links struct {
			Self string `json:"self"`
			Next string `json:"next,omitempty"`
		} `json:"links"`
		Meta struct {
			RequestDateTime string `json:"requestDateTime"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(page, &typed); err != nil {
		return err
	}
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	baseline := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-fapi-interaction-id", r.Header.Get("x-fapi-interaction-id"))
		b, _ := json.Marshal(typed)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})}
	go func() { _ = baseline.Serve(bln) }()
	defer baseline.Close()

	fmt.Printf("datarun: %d workers, %s per phase (+%s warm-up), GOMAXPROCS %d, SQLite, %d-byte pages of 1,000 transactions\n",
		workers, dur, warmup, runtime.GOMAXPROCS(0), len(page))
	var ratios, ratios2 []float64
	var peakOK int
	var peakTime time.Duration
	var p99s, p99s2, baseP99s []time.Duration
	for round := 1; round <= rounds; round++ {
		if rounds > 1 {
			fmt.Printf("round %d of %d\n", round, rounds)
		}
		base := phase(ctx, "baseline (bare handler, encode)", "http://"+bln.Addr().String()+path, tok.raw, workers, dur, warmup)
		stopProfile := profile("page1")
		pon := phase(ctx, "Ponte /transactions page 1", cfg.PublicURL+path, tok.raw, workers, dur, warmup)
		stopProfile()
		stopProfile = profile("page2")
		pon2 := phase(ctx, "Ponte /transactions page 2", cfg.PublicURL+path+"&page=2", tok.raw, workers, dur, warmup)
		stopProfile()

		fmt.Printf("\nclosed loop, %d workers (latency includes queueing)\n", workers)
		fmt.Printf("%-34s %10s %8s %9s %9s %7s %7s\n", "", "200/s", "ratio", "p50", "p99", "non-200", "errors")
		for _, r := range []result{base, pon, pon2} {
			fmt.Printf("%-34s %10.0f %8.3f %9s %9s %7d %7d\n", r.name, r.rate, r.rate/base.rate,
				r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), r.other, r.errs)
		}
		fmt.Println()
		ratios, ratios2 = append(ratios, pon.rate/base.rate), append(ratios2, pon2.rate/base.rate)
		p99s, p99s2, baseP99s = append(p99s, pon.p99), append(p99s2, pon2.p99), append(baseP99s, base.p99)
		peakOK, peakTime = peakOK+pon.ok, peakTime+pon.elapsed
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// Latency at half of Ponte's peak, as bench/loadrun measures it: the
	// pooled page-1 rate of the closed-loop rounds, halved, offered at a
	// constant rate whatever the server does.
	if rate == 0 && peakTime > 0 {
		rate = float64(peakOK) / peakTime.Seconds() / 2
	}
	if rate < 1 {
		return fmt.Errorf("Ponte served %d first pages at peak: nothing to run at half of it", peakOK)
	}
	var openP, openB []sample
	for round := 1; round <= rounds; round++ {
		fmt.Printf("open loop %d of %d, %.0f pages/s offered\n", round, rounds, rate)
		openP = append(openP, openLoop(ctx, "Ponte /transactions page 1", cfg.PublicURL+path, tok.raw, rate, openWorkers, dur, warmup)...)
		openB = append(openB, openLoop(ctx, "baseline (bare handler, encode)", "http://"+bln.Addr().String()+path, tok.raw, rate, openWorkers, dur, warmup)...)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	half := time.Duration(rounds) * dur
	fmt.Printf("\nat half of Ponte's page-1 peak: open loop, %.0f pages/s offered for %s per server; latency from each request's scheduled send time\n", rate, half)
	fmt.Printf("%-34s %10s %9s %9s %9s %7s %7s %17s\n", "", "200/s", "p50", "p99", "max", "non-200", "errors", "generator lag p99")
	var halfP99 [2]time.Duration
	for i, o := range []struct {
		name string
		s    []sample
	}{{"Ponte /transactions page 1", openP}, {"baseline (bare handler, encode)", openB}} {
		lat, lag, ok, other, errs := summarize(o.s)
		halfP99[i] = percentile(lat, 0.99)
		fmt.Printf("%-34s %10.0f %9s %9s %9s %7d %7d %17s\n", o.name, float64(ok)/half.Seconds(),
			percentile(lat, 0.50).Round(10*time.Microsecond), halfP99[i].Round(10*time.Microsecond),
			percentile(lat, 1).Round(10*time.Microsecond), other, errs, percentile(lag, 0.99).Round(10*time.Microsecond))
	}
	fmt.Println()

	what := ""
	if rounds > 1 {
		what = fmt.Sprintf("median of %d rounds: ", rounds)
	}
	r1 := median(ratios)
	fmt.Printf("target: ratio ≥ 0.4, p99 ≤ 20 ms at half peak — page 1 %sratio %.2f (%s); p99 at half peak (%.0f pages/s, open loop) %s (%s), baseline %s; page 2 ratio %.2f\n",
		what, r1, met(r1 >= 0.4), rate, halfP99[0].Round(10*time.Microsecond), met(len(openP) > 0 && halfP99[0] <= 20*time.Millisecond),
		halfP99[1].Round(10*time.Microsecond), median(ratios2))
	fmt.Printf("closed-loop p99 (%d workers: queueing, not the target's figure) — page 1 %s, page 2 %s, baseline %s\n",
		workers, median(p99s).Round(10*time.Microsecond), median(p99s2).Round(10*time.Microsecond), median(baseP99s).Round(10*time.Microsecond))
	return nil
}

func median[T float64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func fetch(ctx context.Context, url, token string) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("x-fapi-interaction-id", uuid.NewString())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return b, err
}

type result struct {
	name            string
	ok, other, errs int
	rate            float64
	elapsed         time.Duration
	p50, p99        time.Duration
}

func phase(ctx context.Context, name, url, token string, workers int, dur, warmup time.Duration) result {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
	start := time.Now()
	measureFrom, end := start.Add(warmup), start.Add(warmup+dur)
	var (
		mu              sync.Mutex
		lat             []time.Duration
		ok, other, errs int
		wg              sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var myOK, myOther, myErrs int
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("x-fapi-interaction-id", uuid.NewString())
				resp, err := client.Do(req)
				measured := !t0.Before(measureFrom)
				if err != nil {
					if measured {
						myErrs++
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if !measured {
					continue
				}
				if resp.StatusCode == http.StatusOK {
					myOK++
					mine = append(mine, time.Since(t0))
				} else {
					myOther++
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			ok, other, errs = ok+myOK, other+myOther, errs+myErrs
			mu.Unlock()
		}()
	}
	wg.Wait()
	client.CloseIdleConnections()
	elapsed := min(time.Since(measureFrom), dur)
	slices.Sort(lat)
	r := result{name: name, ok: ok, other: other, errs: errs, rate: float64(ok) / elapsed.Seconds(), elapsed: elapsed}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	fmt.Printf("  %-34s %7d × 200 in %s\n", name, ok, elapsed.Round(time.Millisecond))
	return r
}

// sample is one open-loop request.
type sample struct {
	status int           // 0: transport error
	lat    time.Duration // from the scheduled send time
	lag    time.Duration // how late the generator sent it
}

// openLoop offers requests at a constant rate, whatever the server does: slot
// i is due at begin + i/rate. Latency is measured from the slot's due time,
// not from when a worker got round to sending it, so a stalled server is
// charged for every request that queued behind the stall (no coordinated
// omission). Slots due during warm-up are not counted. (From bench/loadrun.)
func openLoop(ctx context.Context, name, url, token string, rate float64, workers int, dur, warmup time.Duration) []sample {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	interval := time.Duration(float64(time.Second) / rate)
	total := int64((warmup + dur) / interval)
	begin := time.Now().Add(20 * time.Millisecond) // let every worker reach its first slot
	warmEnd := begin.Add(warmup)
	ctx, cancel := context.WithDeadline(ctx, begin.Add(warmup+dur+10*time.Second)) // bounds a stuck request
	defer cancel()
	var next atomic.Int64
	per := make([][]sample, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out []sample
			defer func() { per[w] = out }()
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= total {
					break
				}
				due := begin.Add(time.Duration(i) * interval)
				if d := time.Until(due); d > 0 {
					timer.Reset(d)
					select {
					case <-timer.C:
					case <-ctx.Done():
						return
					}
				}
				sent := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("x-fapi-interaction-id", uuid.NewString())
				status := 0
				if resp, err := client.Do(req); err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil {
						status = resp.StatusCode
					}
				}
				lat := time.Since(due)
				if due.Before(warmEnd) {
					continue
				}
				out = append(out, sample{status: status, lat: lat, lag: sent.Sub(due)})
			}
		}()
	}
	wg.Wait()
	all := slices.Concat(per...)
	fmt.Printf("  %-34s %7d requests due in %s (open loop)\n", name, len(all), dur)
	return all
}

// summarize sorts the latencies (errors count too: a timeout is a slow
// answer) and the generator's lags, and counts the statuses.
func summarize(s []sample) (lat, lag []time.Duration, ok, other, errs int) {
	for _, x := range s {
		lat, lag = append(lat, x.lat), append(lag, x.lag)
		switch x.status {
		case http.StatusOK:
			ok++
		case 0:
			errs++
		default:
			other++
		}
	}
	slices.Sort(lat)
	slices.Sort(lag)
	return lat, lag, ok, other, errs
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

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
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/bench/internal/loadgen"
	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/dataapi"
)

// prof writes the Ponte phases' CPU profiles (-cpuprofile).
var prof = loadgen.Profiler{Prog: "datarun"}

func main() {
	workers := flag.Int("c", 16, "concurrent workers (closed loop)")
	dur := flag.Duration("d", 5*time.Second, "measured duration of each phase")
	warmup := flag.Duration("warmup", time.Second, "unmeasured warm-up before each phase")
	rounds := flag.Int("rounds", 1, "alternate baseline and Ponte phases this many times and report the median ratio and p99 (steadier on a shared machine)")
	rate := flag.Float64("rate", 0, "pages/s offered in the open-loop phase; 0 means half of Ponte's measured closed-loop page-1 rate")
	openWorkers := flag.Int("open-workers", 256, "most requests in flight in the open-loop phase")
	flag.StringVar(&prof.Prefix, "cpuprofile", "", "write CPU profiles of the Ponte phases to FILE.page1 and FILE.page2 (the whole process: filter with pprof -focus)")
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
	// get builds the GET of url with the token and a fresh interaction id,
	// as a partner sends it.
	get := func(ctx context.Context, url string) *http.Request {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+tok.raw)
		req.Header.Set("x-fapi-interaction-id", uuid.NewString())
		return req
	}
	phase := func(name, url string) loadgen.Result {
		return loadgen.ClosedLoop(ctx, loadgen.Closed{Name: name, Workers: workers, Warmup: warmup, Dur: dur, Status: http.StatusOK, Width: 34},
			func(ctx context.Context) (*http.Request, func([]byte)) { return get(ctx, url), nil })
	}
	table := loadgen.Table{Width: 34, Status: http.StatusOK}
	var ratios, ratios2 []float64
	var peakOK int
	var peakTime time.Duration
	var p99s, p99s2, baseP99s []time.Duration
	for round := 1; round <= rounds; round++ {
		if rounds > 1 {
			fmt.Printf("round %d of %d\n", round, rounds)
		}
		base := phase("baseline (bare handler, encode)", "http://"+bln.Addr().String()+path)
		stopProfile := prof.Start("page1")
		pon := phase("Ponte /transactions page 1", cfg.PublicURL+path)
		stopProfile()
		stopProfile = prof.Start("page2")
		pon2 := phase("Ponte /transactions page 2", cfg.PublicURL+path+"&page=2")
		stopProfile()

		fmt.Printf("\nclosed loop, %d workers (latency includes queueing)\n", workers)
		table.Header()
		for _, r := range []loadgen.Result{base, pon, pon2} {
			table.Row(r, base.Rate)
		}
		fmt.Println()
		ratios, ratios2 = append(ratios, pon.Rate/base.Rate), append(ratios2, pon2.Rate/base.Rate)
		p99s, p99s2, baseP99s = append(p99s, pon.P99), append(p99s2, pon2.P99), append(baseP99s, base.P99)
		peakOK, peakTime = peakOK+pon.OK, peakTime+pon.Elapsed
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
		return fmt.Errorf("at peak Ponte served %d first pages: nothing to run at half of it", peakOK)
	}
	openLoop := func(name, url string) []loadgen.Sample {
		return loadgen.OpenLoop(ctx, loadgen.Open{Name: name, Rate: rate, Workers: openWorkers, Warmup: warmup, Dur: dur, Width: 34},
			func(ctx context.Context) *http.Request { return get(ctx, url) })
	}
	var openP, openB []loadgen.Sample
	for round := 1; round <= rounds; round++ {
		fmt.Printf("open loop %d of %d, %.0f pages/s offered\n", round, rounds, rate)
		openP = append(openP, openLoop("Ponte /transactions page 1", cfg.PublicURL+path)...)
		openB = append(openB, openLoop("baseline (bare handler, encode)", "http://"+bln.Addr().String()+path)...)
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
		s    []loadgen.Sample
	}{{"Ponte /transactions page 1", openP}, {"baseline (bare handler, encode)", openB}} {
		lat, lag, ok, other, errs := loadgen.Summarize(o.s, http.StatusOK)
		halfP99[i] = loadgen.Percentile(lat, 0.99)
		fmt.Printf("%-34s %10.0f %9s %9s %9s %7d %7d %17s\n", o.name, float64(ok)/half.Seconds(),
			loadgen.Percentile(lat, 0.50).Round(10*time.Microsecond), halfP99[i].Round(10*time.Microsecond),
			loadgen.Percentile(lat, 1).Round(10*time.Microsecond), other, errs, loadgen.Percentile(lag, 0.99).Round(10*time.Microsecond))
	}
	fmt.Println()

	what := ""
	if rounds > 1 {
		what = fmt.Sprintf("median of %d rounds: ", rounds)
	}
	r1 := loadgen.Median(ratios)
	fmt.Printf("target: ratio ≥ 0.4, p99 ≤ 20 ms at half peak — page 1 %sratio %.2f (%s); p99 at half peak (%.0f pages/s, open loop) %s (%s), baseline %s; page 2 ratio %.2f\n",
		what, r1, loadgen.Met(r1 >= 0.4), rate, halfP99[0].Round(10*time.Microsecond), loadgen.Met(len(openP) > 0 && halfP99[0] <= 20*time.Millisecond),
		halfP99[1].Round(10*time.Microsecond), loadgen.Median(ratios2))
	fmt.Printf("closed-loop p99 (%d workers: queueing, not the target's figure) — page 1 %s, page 2 %s, baseline %s\n",
		workers, loadgen.Median(p99s).Round(10*time.Microsecond), loadgen.Median(p99s2).Round(10*time.Microsecond), loadgen.Median(baseP99s).Round(10*time.Microsecond))
	return nil
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

// Command journeyrun measures Open Keys journey sessions (seed 003):
// session creation and GET by id through Ponte against a bare net/http
// handler that decodes and encodes the same JSON, in the same run, and the
// expiry sweep of many due sessions on SQLite and PostgreSQL.
//
//	go run ./bench/journeyrun                      # about 30 s plus the sweeps
//	go run ./bench/journeyrun -sweep-n 1000000 -pg postgres://postgres@127.0.0.1:5432/test?sslmode=disable
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/bench/internal/benchdb"
	"github.com/ponte-ofb/ponte/bench/internal/loadgen"
	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/store"
)

// prof writes the Ponte phases' CPU profiles (-cpuprofile).
var prof = loadgen.Profiler{Prog: "journeyrun"}

func main() {
	workers := flag.Int("c", 16, "concurrent workers (closed loop)")
	dur := flag.Duration("d", 5*time.Second, "measured duration of each phase")
	warmup := flag.Duration("warmup", time.Second, "unmeasured warm-up before each phase")
	sweepN := flag.Int("sweep-n", 1_000_000, "due sessions per sweep run (0 skips the sweeps)")
	pg := flag.String("pg", os.Getenv("PONTE_TEST_DATABASE_URL"), "PostgreSQL URL for the sweep (default PONTE_TEST_DATABASE_URL; empty skips it)")
	rounds := flag.Int("rounds", 1, "alternate baseline and Ponte phases this many times and report the median ratio (steadier on a shared machine)")
	httpPhases := flag.Bool("http", true, "run the create and GET phases (false: only the sweeps)")
	flag.StringVar(&prof.Prefix, "cpuprofile", "", "write CPU profiles of the Ponte phases to FILE.create, FILE.get and FILE.sweep-<engine> (the whole process: filter with pprof -focus)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *httpPhases {
		if err := run(ctx, *workers, *dur, *warmup, max(*rounds, 1)); err != nil {
			fmt.Fprintln(os.Stderr, "journeyrun:", err)
			os.Exit(1)
		}
	}
	if *sweepN > 0 {
		if err := sweeps(ctx, *sweepN, *pg); err != nil {
			fmt.Fprintln(os.Stderr, "journeyrun: sweep:", err)
			os.Exit(1)
		}
	}
}

const createBody = `{"journeyId":"default","redirectUrl":"http://localhost:8080/callback","externalId":"%s",
 "settings":[{"key":"JOURNEY_RULES","value":["rule1","rule2"]}],"tags":{"environment":"production","clientId":"client-123"}}`

func run(ctx context.Context, workers int, dur, warmup time.Duration, rounds int) error {
	dir, err := os.MkdirTemp("", "journeyrun-")
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
	ponte := &http.Server{Handler: a.Handler()}
	go func() { _ = ponte.Serve(ln) }()
	defer ponte.Close()

	brand, err := a.ITP.AddBrand(ctx, itp.Brand{Name: "Bench bank", Issuer: "https://auth.bench.example", APIBaseURL: "https://api.bench.example", ClientID: "ponte"})
	if err != nil {
		return err
	}
	if _, err := a.ITP.CreateJourney(ctx, itp.Journey{Alias: "sweeping", Name: "Sweeping", BrandIDs: []string{brand.ID},
		Settings: []itp.Setting{{Key: itp.SettingPrioritiesBrands, Value: []byte(`["` + brand.ID + `"]`)}}}); err != nil {
		return err
	}
	partner, _, err := a.Apps.Create(ctx, auth.NewApplication{Name: "bench partner", CompanyKey: "BENCH", Scopes: []string{itp.Scope},
		RedirectURLs: []string{"http://localhost:8080/callback"}})
	if err != nil {
		return err
	}
	if err := a.ITP.SetDefaultJourney(ctx, partner.ID, "sweeping"); err != nil {
		return err
	}
	token, err := a.Tokens.Issue(partner, []string{itp.Scope})
	if err != nil {
		return err
	}

	// The baseline: decode the same body, encode a session of the same shape;
	// GET answers from memory.
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var mem sync.Map
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+itp.SessionsPath, func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			JourneyID, RedirectURL, BrandID, ExternalID string
			Settings                                    []itp.Setting
			Tags                                        map[string]any
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		now := time.Now().UTC().Format(itp.TimeLayout)
		s := itp.SessionJSON{ID: uuid.NewString(), JourneyID: "0123456789abcdef01234567", ApplicationClientID: partner.ClientID,
			ApplicationID: partner.ID, TokenID: uuid.NewString(), Status: itp.StatusPending, PaymentInitiationAPI: itp.PaymentInitiationAPI,
			RedirectURL: in.RedirectURL, ExternalID: in.ExternalID, Settings: in.Settings, Tags: in.Tags, CreatedAt: now, UpdatedAt: now}
		s.JourneySessionURL = "http://" + bln.Addr().String() + "/journey/" + s.JourneyID + "?api=SWEEPING_ACCOUNTS_V2&id=" + s.ID + "&token=" + uuid.NewString()
		b, _ := json.Marshal(s)
		mem.Store(s.ID, b)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("GET "+itp.SessionsPath+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		b, ok := mem.Load(r.PathValue("id"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b.([]byte))
	})
	baseline := &http.Server{Handler: mux}
	go func() { _ = baseline.Serve(bln) }()
	defer baseline.Close()

	fmt.Printf("journeyrun: %d workers, %s per phase (+%s warm-up), GOMAXPROCS %d, SQLite synchronous=FULL\n",
		workers, dur, warmup, runtime.GOMAXPROCS(0))
	baseURL, ponteURL := "http://"+bln.Addr().String(), cfg.PublicURL
	var seq atomic.Int64
	create := func(base, tok string, ids *idList) loadgen.Next {
		return func(ctx context.Context) (*http.Request, func([]byte)) {
			body := fmt.Sprintf(createBody, fmt.Sprintf("bench-%d", seq.Add(1)))
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+itp.SessionsPath, bytes.NewReader([]byte(body)))
			req.Header.Set("Content-Type", "application/json")
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			return req, ids.add
		}
	}
	// The GET phases read each body whole, as the create phases do.
	readAll := func([]byte) {}
	get := func(base, tok string, ids *idList) loadgen.Next {
		var i atomic.Int64
		return func(ctx context.Context) (*http.Request, func([]byte)) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+itp.SessionsPath+"/"+ids.at(int(i.Add(1))), nil)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			return req, readAll
		}
	}
	phase := func(name string, next loadgen.Next) loadgen.Result {
		return loadgen.ClosedLoop(ctx, loadgen.Closed{Name: name, Workers: workers, Warmup: warmup, Dur: dur, Status: http.StatusOK, Width: 32}, next)
	}
	table := loadgen.Table{Width: 32, Status: http.StatusOK}
	var baseIDs, ponteIDs idList
	var createRatios, getRatios []float64
	for round := 1; round <= rounds; round++ {
		if rounds > 1 {
			fmt.Printf("round %d of %d\n", round, rounds)
		}
		bc := phase("baseline create (bare handler)", create(baseURL, "", &baseIDs))
		stopProfile := prof.Start("create")
		pc := phase("Ponte create", create(ponteURL, token, &ponteIDs))
		stopProfile()
		bg := phase("baseline GET by id (memory)", get(baseURL, "", &baseIDs))
		stopProfile = prof.Start("get")
		pg := phase("Ponte GET by id", get(ponteURL, token, &ponteIDs))
		stopProfile()

		fmt.Println()
		table.Header()
		for _, p := range [][2]loadgen.Result{{bc, bc}, {pc, bc}, {bg, bg}, {pg, bg}} {
			table.Row(p[0], p[1].Rate)
		}
		fmt.Println()
		createRatios, getRatios = append(createRatios, pc.Rate/bc.Rate), append(getRatios, pg.Rate/bg.Rate)
	}
	cr, gr := loadgen.Median(createRatios), loadgen.Median(getRatios)
	what := "ratio"
	if rounds > 1 {
		what = fmt.Sprintf("median ratio of %d rounds", rounds)
	}
	fmt.Printf("targets: create %s ≥ 0.35 (%.3f: %s), GET %s ≥ 0.6 (%.3f: %s)\n",
		what, cr, loadgen.Met(cr >= 0.35), what, gr, loadgen.Met(gr >= 0.6))
	return nil
}

// idList collects the ids of created sessions, for the GET phases.
type idList struct {
	mu  sync.Mutex
	ids []string
}

func (l *idList) add(body []byte) {
	var s struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &s) == nil && s.ID != "" {
		l.mu.Lock()
		l.ids = append(l.ids, s.ID)
		l.mu.Unlock()
	}
}

func (l *idList) at(i int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ids) == 0 {
		return "none"
	}
	return l.ids[i%len(l.ids)]
}

// ---- expiry sweep ----

func sweeps(ctx context.Context, n int, pgURL string) error {
	fmt.Printf("\nexpiry sweep of %d due sessions (batches of %d, one UPDATE each)\n", n, itp.DefaultSweepBatch)
	dir, err := os.MkdirTemp("", "journeyrun-sweep-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := sweepOn(ctx, "SQLite", "sqlite:"+filepath.Join(dir, "ponte.db"), n); err != nil {
		return err
	}
	if pgURL == "" {
		fmt.Println("  PostgreSQL: skipped (no -pg and no PONTE_TEST_DATABASE_URL)")
		return nil
	}
	u, drop, err := benchdb.FreshSchema(pgURL, "journeyrun")
	if err != nil {
		return err
	}
	defer drop()
	return sweepOn(ctx, "PostgreSQL", u, n)
}

const seedSQL = `INSERT INTO itp_journey_sessions (id, application_id, application_client_id, journey_id, token_id, token_hash, status,
	settings, tags, status_history, expires_at, created_at, updated_at)
	WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
	SELECT 'bench-' || i, 'bench-app', 'bench-client', '0123456789abcdef01234567', 'tok-' || i, 'hash', 'PENDING',
	'[]', '{"environment":"bench"}', '[{"updatedAt":"2024-10-15T18:55:15.000Z","status":"PENDING"}]', 1000, 1000, 1000 FROM n`

func sweepOn(ctx context.Context, name, dbURL string, n int) error {
	db, err := store.Open(ctx, store.Options{URL: dbURL})
	if err != nil {
		return err
	}
	defer db.Close()
	t0 := time.Now()
	if err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, seedSQL, n)
		return err
	}); err != nil {
		return fmt.Errorf("seed %s: %w", name, err)
	}
	if db.Engine() == store.Postgres {
		if _, err := db.Read().ExecContext(ctx, `ANALYZE itp_journey_sessions`); err != nil {
			return err
		}
	}
	seeded := time.Since(t0)
	svc := itp.NewService(db, clock.System{}, nil, "", "", nil, nil)
	stopProfile := prof.Start("sweep-" + strings.ToLower(name))
	t1 := time.Now()
	expired, err := svc.Sweep(ctx)
	took := time.Since(t1)
	stopProfile()
	if err != nil {
		return fmt.Errorf("sweep %s: %w", name, err)
	}
	var left int
	if err := db.Read().QueryRowContext(ctx, `SELECT count(*) FROM itp_journey_sessions WHERE status <> 'EXPIRED'`).Scan(&left); err != nil {
		return err
	}
	fmt.Printf("  %-11s %8d expired in %8s: %9.0f sessions/s (seeded in %s; %d left unexpired)\n",
		name, expired, took.Round(time.Millisecond), float64(expired)/took.Seconds(), seeded.Round(time.Millisecond), left)
	if name == "PostgreSQL" {
		fmt.Printf("  target on PostgreSQL ≥ 50000 sessions/s: %s\n", loadgen.Met(float64(expired)/took.Seconds() >= 50000))
	}
	return nil
}

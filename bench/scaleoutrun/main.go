// Command scaleoutrun measures Ponte scaled out on one PostgreSQL: ticket
// creation (POST /openfinance/consent-flow/ticket, each with its idempotency
// key) through HAProxy with 1, 2 and 3 `ponte serve` behind it, started by
// internal/cluster exactly as the scale-out tests start them (HAProxy's
// configuration generated from deploy/haproxy.cfg). It prints each
// cluster's throughput, its ratio against one instance, and the servers'
// CPU per request (every instance's, and HAProxy's apart). Then, with the
// largest cluster, the same load with clients that retry a failed request
// under its idempotency key, while one instance is killed with SIGKILL
// halfway: acknowledged, retried, found in PostgreSQL and duplicated. The
// mixed-load kill -9 and drain figures come from
// `go test ./internal/cluster -v` (bench/README.md).
//
//	go run ./bench/scaleoutrun                   # about 1 minute
//	go run ./bench/scaleoutrun -c 32 -d 20s -pg postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/bench/internal/loadgen"
	"github.com/ponte-ofb/ponte/internal/cluster"
)

func main() {
	workers := flag.Int("c", 16, "concurrent workers (closed loop)")
	dur := flag.Duration("d", 8*time.Second, "measured duration of each phase")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured warm-up before each phase")
	maxN := flag.Int("n", 3, "largest cluster (1..n instances)")
	kill := flag.Bool("kill", true, "also run the kill -9 phase on the largest cluster")
	pg := flag.String("pg", os.Getenv("PONTE_TEST_DATABASE_URL"), "PostgreSQL URL (default PONTE_TEST_DATABASE_URL)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *pg, *workers, *maxN, *dur, *warmup, *kill); err != nil {
		fmt.Fprintln(os.Stderr, "scaleoutrun:", err)
		os.Exit(1)
	}
}

type phase struct {
	n          int
	res        loadgen.Result
	cpuPerReq  time.Duration // every instance
	haproxyReq time.Duration // HAProxy
}

func run(ctx context.Context, pg string, workers, maxN int, dur, warmup time.Duration, kill bool) error {
	if pg == "" {
		return fmt.Errorf("no PostgreSQL: set -pg or PONTE_TEST_DATABASE_URL")
	}
	root, err := cluster.ModuleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "scaleoutrun-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "ponte")
	if err := cluster.Build(ctx, root, bin); err != nil {
		return err
	}
	fmt.Printf("scaleoutrun: ticket creation through HAProxy, %d workers, %s per phase (+%s warm-up), GOMAXPROCS %d, %d CPUs shared by PostgreSQL, HAProxy, the instances and the load\n",
		workers, dur, warmup, runtime.GOMAXPROCS(0), runtime.NumCPU())
	var phases []phase
	for n := 1; n <= maxN; n++ {
		p, err := measure(ctx, root, bin, filepath.Join(dir, fmt.Sprint(n)), pg, n, workers, dur, warmup)
		if err != nil {
			return fmt.Errorf("%d instances: %w", n, err)
		}
		phases = append(phases, p)
	}
	fmt.Println()
	fmt.Printf("%-12s %10s %8s %8s %8s %14s %14s\n", "instances", "tickets/s", "ratio", "p50", "p99", "CPU/req Ponte", "CPU/req HAProxy")
	for _, p := range phases {
		fmt.Printf("%-12d %10.0f %8.2f %8s %8s %14s %14s\n", p.n, p.res.Rate, p.res.Rate/phases[0].res.Rate,
			p.res.P50.Round(100*time.Microsecond), p.res.P99.Round(100*time.Microsecond),
			p.cpuPerReq.Round(time.Microsecond), p.haproxyReq.Round(time.Microsecond))
	}
	if !kill || maxN < 2 {
		return nil
	}
	return killPhase(ctx, root, bin, filepath.Join(dir, "kill"), pg, maxN, workers, dur)
}

// killPhase runs ticket creation through HAProxy on n instances with
// clients that retry a failed or unanswered request with the same
// idempotency key, kills one instance halfway through dur, and checks in
// PostgreSQL that every acknowledged ticket is there once.
func killPhase(ctx context.Context, root, bin, dir, pg string, n, workers int, dur time.Duration) error {
	dbURL, drop, err := cluster.NewSchema(ctx, pg)
	if err != nil {
		return err
	}
	defer drop()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	c, err := cluster.Start(ctx, cluster.Options{Bin: bin, Root: root, DatabaseURL: dbURL, Instances: n, Dir: dir})
	if err != nil {
		return err
	}
	defer c.Close()
	tok, err := token(ctx, c)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 15 * time.Second}
	var (
		mu                      sync.Mutex
		ids                     []string
		retried, failed, gaveUp atomic.Int64
		wg                      sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(dur)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) && ctx.Err() == nil {
				key := uuid.NewString()
				body := fmt.Appendf(nil, `{"requestUri":"%s","clientId":"%s","documentNumber":"47742663023"}`, uuid.NewString(), uuid.NewString())
				id := ""
				for try := 0; try < 50 && id == ""; try++ {
					if try > 0 {
						retried.Add(1)
						time.Sleep(100 * time.Millisecond)
					}
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"/openfinance/consent-flow/ticket", bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+tok)
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("idempotencyKey", key)
					res, err := client.Do(req)
					if err != nil {
						failed.Add(1)
						continue
					}
					b, err := io.ReadAll(res.Body)
					res.Body.Close()
					var out struct {
						TicketID string `json:"ticketId"`
					}
					if err != nil || res.StatusCode != http.StatusCreated || json.Unmarshal(b, &out) != nil {
						failed.Add(1)
						continue
					}
					id = out.TicketID
				}
				if id == "" {
					gaveUp.Add(1)
					continue
				}
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(dur / 2)
	mu.Lock()
	atKill := len(ids)
	mu.Unlock()
	if err := c.Kill(1); err != nil {
		return err
	}
	wg.Wait()
	elapsed := time.Since(start)
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	var found, rows int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM consent_flow_tickets WHERE ticket_id = ANY($1)`, ids).Scan(&found); err != nil {
		return err
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM consent_flow_tickets`).Scan(&rows); err != nil {
		return err
	}
	fmt.Printf("\nkill -9: %d instances, %d workers retrying with their idempotency keys, SIGKILL to %s after %s (%d tickets acknowledged by then)\n",
		n, workers, c.Instances[1].Name, dur/2, atKill)
	fmt.Printf("  acknowledged %d (%.0f/s over %s), found in PostgreSQL %d, rows %d (duplicated %d), failed attempts %d, retries %d, given up %d\n",
		len(ids), float64(len(ids))/elapsed.Seconds(), elapsed.Round(time.Millisecond), found, rows, rows-len(ids), failed.Load(), retried.Load(), gaveUp.Load())
	if found != len(ids) || rows != len(ids) || gaveUp.Load() > 0 {
		return fmt.Errorf("kill -9: acknowledged %d, found %d, rows %d, given up %d", len(ids), found, rows, gaveUp.Load())
	}
	return nil
}

func measure(ctx context.Context, root, bin, dir, pg string, n, workers int, dur, warmup time.Duration) (phase, error) {
	dbURL, drop, err := cluster.NewSchema(ctx, pg)
	if err != nil {
		return phase{}, err
	}
	defer drop()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return phase{}, err
	}
	c, err := cluster.Start(ctx, cluster.Options{Bin: bin, Root: root, DatabaseURL: dbURL, Instances: n, Dir: dir,
		Args: []string{"--log-format", "json"}})
	if err != nil {
		return phase{}, err
	}
	defer c.Close()
	tok, err := token(ctx, c)
	if err != nil {
		return phase{}, err
	}
	cpu := func() (ponte, haproxy time.Duration, err error) {
		for _, in := range c.Instances {
			d, err := in.CPU()
			if err != nil {
				return 0, 0, err
			}
			ponte += d
		}
		haproxy, err = c.HAProxyCPU()
		return ponte, haproxy, err
	}
	var sent atomic.Int64 // every 201, warm-up included: CPU is read around the whole phase
	next := func(ctx context.Context) (*http.Request, func([]byte)) {
		body := fmt.Appendf(nil, `{"requestUri":"%s","clientId":"%s","documentNumber":"47742663023"}`, uuid.NewString(), uuid.NewString())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"/openfinance/consent-flow/ticket", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("idempotencyKey", uuid.NewString())
		return req, func([]byte) { sent.Add(1) }
	}
	p0, h0, err := cpu()
	if err != nil {
		return phase{}, err
	}
	res := loadgen.ClosedLoop(ctx, loadgen.Closed{Name: fmt.Sprintf("%d instance(s) behind HAProxy", n), Workers: workers,
		Warmup: warmup, Dur: dur, Status: http.StatusCreated, Width: 30}, next)
	p1, h1, err := cpu()
	if err != nil {
		return phase{}, err
	}
	if res.Other > 0 || res.Errs > 0 {
		return phase{}, fmt.Errorf("%d answers other than 201 and %d transport errors", res.Other, res.Errs)
	}
	total := max(sent.Load(), 1)
	return phase{n: n, res: res, cpuPerReq: (p1 - p0) / time.Duration(total), haproxyReq: (h1 - h0) / time.Duration(total)}, nil
}

// token is a demo-application token, through HAProxy.
func token(ctx context.Context, c *cluster.Cluster) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"/oauth/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("POST /oauth/token: %d %s", res.StatusCode, body)
	}
	return tok.AccessToken, nil
}

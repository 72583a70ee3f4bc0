// Command pcmforward measures forwarding throughput to the PCM: n journey
// steps are recorded with their outbox rows (as Ponte records them), then a
// pcm.Forwarder drains the outbox to a loopback PCM receiver (pcm.Receiver:
// decodes, validates every item with the built-in v1.0.4 rules, answers 200
// with a reportId per item), in batches of up to 1,000 items: claim under a
// lease, read the events, POST, record each item's outcome.
//
// It prints items per second (target: ≥ 20,000 items/s) and, for scale, the
// receiver alone fed the same bodies straight from memory.
//
// Usage: go run ./bench/pcmforward [-n 60000] [-workers 4] [-batch 1000] [-database-url URL] [-json]
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/ponte-ofb/ponte/bench/internal/benchdb"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/ofb"
	"github.com/ponte-ofb/ponte/internal/pcm"
	"github.com/ponte-ofb/ponte/internal/store"
)

func main() {
	n := flag.Int("n", 60000, "journey steps to forward")
	workers := flag.Int("workers", 4, "forwarder workers")
	batch := flag.Int("batch", pcm.MaxBatch, "items per request (≤ 1000)")
	dbURL := flag.String("database-url", os.Getenv("PONTE_TEST_DATABASE_URL"), "PostgreSQL URL (default $PONTE_TEST_DATABASE_URL), measured in a schema of its own after SQLite; empty: SQLite only")
	asJSON := flag.Bool("json", false, "print JSON")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the forwarding phase to this file")
	flag.Parse()
	profilePath = *cpuProfile
	urls := []string{""}
	if *dbURL != "" {
		urls = append(urls, *dbURL)
	}
	for i, u := range urls {
		if i > 0 && !*asJSON {
			fmt.Println()
		}
		if err := runURL(*n, *workers, *batch, u, *asJSON); err != nil {
			fmt.Fprintln(os.Stderr, "pcmforward:", err)
			os.Exit(1)
		}
	}
}

// profilePath, when set, receives a CPU profile of the forwarding phase.
var profilePath string

const orgID = "56411f7e-d58b-44a8-8a2b-ff326d3f2955"

func event(i int, at time.Time) pcm.Event {
	e := pcm.Event{ConsentID: fmt.Sprintf("urn:bench:%08d", i/len(pcm.Steps)), Step: pcm.Steps[i%len(pcm.Steps)], ApplicationID: "bench",
		OccurredAt: at, Device: ofb.Device{Platform: "BROWSER", OS: "ANDROID", OSVersion: "14"}}
	switch e.Step {
	case pcm.StepRedirectToServer:
		e.URI = "https://bank.example/oauth/authorize"
	case pcm.StepRedirectTarget:
		e.Type = pcm.TypeAwaitingUserAuth
	case pcm.StepRedirectToClient:
		e.Type, e.URI = pcm.TypeAuthorised, "https://tpp.example/callback"
	case pcm.StepRedirectTargetWithErrors:
		e.Error = "access_denied"
	}
	return e
}

// runURL measures one engine: SQLite for "", else PostgreSQL in a fresh
// schema of its own, dropped afterwards.
func runURL(n, workers, batch int, dbURL string, asJSON bool) error {
	if dbURL == "" {
		return run(n, workers, batch, "", asJSON)
	}
	u, drop, err := benchdb.FreshSchema(dbURL, "pcmforward")
	if err != nil {
		return err
	}
	defer drop()
	return run(n, workers, batch, u, asJSON)
}

func run(n, workers, batch int, dbURL string, asJSON bool) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ponte-pcmforward-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(dir, "ponte.db")
	}
	db, err := store.Open(ctx, store.Options{URL: dbURL})
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Read().ExecContext(ctx, `SELECT 1`); err != nil {
		return err
	}
	c := clock.System{}
	rec := &pcm.Recorder{Clock: c, DB: db, AfterInsert: pcm.EnqueueIn(db)}
	start := time.Now()
	const chunk = 2000
	for first := 0; first < n; first += chunk {
		err := db.Write(ctx, func(tx *sql.Tx) error {
			for i := first; i < min(first+chunk, n); i++ {
				if _, _, err := rec.Record(ctx, tx, event(i, c.Now())); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("record: %w", err)
		}
	}
	recordTime := time.Since(start)

	rc := &pcm.Receiver{Keep: 1}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	f := pcm.NewForwarder(pcm.ForwarderOptions{DB: db, Clock: c, BaseURL: srv.URL, OrgID: orgID, Workers: workers, BatchSize: batch})
	if profilePath != "" {
		pf, err := os.Create(profilePath)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
	}
	start = time.Now()
	res, err := f.Drain(ctx)
	fwd := time.Since(start)
	if profilePath != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	total := 0
	for _, v := range rc.Counts() {
		total += v
	}
	if res.Accepted != n || total != n {
		return fmt.Errorf("forwarded %d, receiver accepted %d, want %d", res.Accepted, total, n)
	}

	// The receiver alone: the same number of items in the same batch size,
	// bodies built in memory, same concurrency.
	bodies := map[string][]byte{}
	for i, s := range pcm.Steps {
		items := make([]pcm.Item, 0, batch)
		for j := 0; j < batch; j++ {
			e := event(j*len(pcm.Steps)+i, c.Now())
			items = append(items, pcm.ItemOf(&e, orgID))
		}
		bodies[pcm.EndpointOf(s)], _ = json.Marshal(items)
	}
	requests := (n + batch - 1) / batch
	start = time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	var errMu sync.Mutex
	var bareErr error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				ep := pcm.Endpoints[k%len(pcm.Endpoints)]
				resp, err := srv.Client().Post(srv.URL+pcm.HybridFlowPrefix+ep, "application/json", bytes.NewReader(bodies[ep]))
				if err == nil {
					var out []json.RawMessage
					err = json.NewDecoder(resp.Body).Decode(&out)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("receiver answered %d", resp.StatusCode)
					}
				}
				if err != nil {
					errMu.Lock()
					bareErr = err
					errMu.Unlock()
				}
			}
		}()
	}
	for k := range requests {
		next <- k
	}
	close(next)
	wg.Wait()
	if bareErr != nil {
		return bareErr
	}
	bare := time.Since(start)

	out := map[string]any{
		"engine": string(db.Engine()), "items": n, "workers": workers, "batch": batch, "batches": res.Batches,
		"record_items_per_s":        float64(n) / recordTime.Seconds(),
		"forward_items_per_s":       float64(n) / fwd.Seconds(),
		"receiver_only_items_per_s": float64(requests*batch) / bare.Seconds(),
		"ratio":                     (float64(n) / fwd.Seconds()) / (float64(requests*batch) / bare.Seconds()),
		"target_items_per_s":        20000,
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(out)
	}
	fmt.Printf("engine %s, %d items, %d workers, batches of %d (%d batches)\n", db.Engine(), n, workers, batch, res.Batches)
	fmt.Printf("recording (steps + outbox rows)  %9.0f items/s\n", out["record_items_per_s"])
	fmt.Printf("forwarding to a local receiver   %9.0f items/s   (target ≥ 20,000)\n", out["forward_items_per_s"])
	fmt.Printf("receiver alone, same bodies      %9.0f items/s   ratio %.2f\n", out["receiver_only_items_per_s"], out["ratio"])
	return nil
}

// Command webhookrun measures webhook delivery throughput to a local
// receiver against a baseline in the same run:
//
//   - baseline: the same number of signed POSTs of the same body sent
//     straight to the receiver with the same concurrency — the cost of HTTP
//     and HMAC alone;
//   - Ponte: events emitted through webhooks.Emitter into SQLite (one
//     delivery job each), then delivered by the durable job queue: claim,
//     load, sign, POST, record the attempt and finish the job, every step
//     committed.
//
// It prints deliveries per second of each and the ratio.
// Usage: go run ./bench/webhookrun [-n 2000] [-json]
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

func main() {
	n := flag.Int("n", 2000, "events to deliver in each phase")
	asJSON := flag.Bool("json", false, "print JSON")
	flag.Parse()
	if err := run(*n, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "webhookrun:", err)
		os.Exit(1)
	}
}

func run(n int, asJSON bool) error {
	var received atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		received.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	dir, err := os.MkdirTemp("", "ponte-webhookrun-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := config.Config{Addr: "127.0.0.1:0", DataDir: dir, Mode: config.Sandbox, PublicURL: "http://127.0.0.1",
		TokenTTL: time.Hour, LogFormat: "json", ShutdownTimeout: 10 * time.Second, SweepInterval: time.Hour}
	if err := cfg.Finish(); err != nil {
		return err
	}
	ctx := context.Background()
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer a.Close()
	sub, secret, err := a.WebhookService.Create(ctx, a.Demo.ID, webhooks.CreateSubscription{URL: receiver.URL})
	if err != nil {
		return err
	}
	_ = sub
	body := []byte(`{"entityId":"sandbox-card-active","companyKey":"DEMO","context":"Card","name":"CARD_WAS_ADDED_TO_WALLET","idempotencyKey":"00000000-0000-0000-0000-000000000000","correlationId":"c","timestamp":"2026-11-27T04:14:31.000Z","version":"1.0","metadata":{},"data":{"proxy":"sandbox-card-active","wallet":"ApplePay","tokenStatus":"ACTIVE"}}`)
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	const workers = 8 // the job client's default concurrency

	// Baseline: signed POSTs straight to the receiver.
	fmt.Fprintln(os.Stderr, "webhookrun: baseline…")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				id, ts := fmt.Sprintf("evt-%d", i), fmt.Sprint(time.Now().Unix())
				m := hmac.New(sha256.New, key)
				m.Write([]byte(id + "." + ts + "."))
				m.Write(body)
				req, _ := http.NewRequest(http.MethodPost, receiver.URL, bytes.NewReader(body))
				req.Header.Set("content-type", "application/json")
				req.Header.Set("webhook-id", id)
				req.Header.Set("webhook-timestamp", ts)
				req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
				if resp, err := client.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	baseline := float64(n) / time.Since(start).Seconds()

	// Ponte: emit n events (committed), then let the job queue deliver them.
	fmt.Fprintln(os.Stderr, "webhookrun: emitting and delivering through Ponte…")
	received.Store(0)
	for i := 0; i < n; i += 200 {
		err := a.DB.Write(ctx, func(tx *sql.Tx) error {
			for j := i; j < i+200 && j < n; j++ {
				if err := a.Webhooks.Emit(ctx, tx, webhooks.Event{ApplicationID: a.Demo.ID, Context: "Card",
					Name: "CARD_WAS_ADDED_TO_WALLET", EntityID: "sandbox-card-active",
					Data: map[string]any{"proxy": "sandbox-card-active", "wallet": "ApplePay", "tokenStatus": "ACTIVE"}}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	start = time.Now()
	if err := a.Jobs.Start(ctx); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for received.Load() < int64(n) && time.Now().Before(deadline) {
		a.Jobs.Notify()
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	a.Jobs.Stop(stopCtx)
	if got := received.Load(); got < int64(n) {
		return fmt.Errorf("only %d of %d deliveries arrived within 5 minutes", got, n)
	}
	ponte := float64(n) / elapsed.Seconds()
	res := map[string]float64{"baseline_per_second": baseline, "ponte_per_second": ponte, "ratio": ponte / baseline}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("Webhook delivery to a loopback receiver, %d events, %d at a time\n", n, workers)
	fmt.Printf("  baseline signed POSTs        %8.0f /s\n", baseline)
	fmt.Printf("  Ponte durable delivery       %8.0f /s   ratio %.2f\n", ponte, ponte/baseline)
	return nil
}

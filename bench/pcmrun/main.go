// Command pcmrun measures PCM report ingestion (POST
// /api/journey/v1/consents/{consentId}/report) against a baseline in the
// same run:
//
//   - baseline: a bare net/http handler at the same path that decodes the
//     same JSON body and encodes a response of the same shape with status
//     201 — no authentication, no ownership check, no storage, no logging;
//   - Ponte: the real app wiring (sandbox mode, SQLite in WAL mode with
//     synchronous=FULL, so each 201 is on disk) behind a loopback server:
//     bearer token check, strict decoding, per-step validation, the
//     consent's ownership read, the event insert in a group-committed
//     transaction, access log and metrics.
//
// Both receive byte-identical requests from the same workers: the six
// steps of seed 002 for each of n/6 consents the partner initiated.
// It prints events per second of each and the ratio Ponte/baseline. With
// -rounds N the two phases alternate N times (new consents each round, so
// every report stores a new event) and the median ratio is the result: on a
// shared, noisy machine only ratios taken in the same round compare.
// -cpuprofile FILE writes the Ponte phases' CPU profile (the whole process:
// filter with go tool pprof -focus).
//
//	go run ./bench/pcmrun [-n 12000] [-c 32] [-rounds 5] [-cpuprofile FILE] [-json]
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/bench/internal/loadgen"
	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/pcm"
)

const dev = `"platform":"BROWSER","osVersion":"20.04","os":"LINUX"`

// seedBodies are seed 002's six report bodies.
var seedBodies = []string{
	`{"step":"REDIRECT_TO_SERVER","data":{"uriAuthorizationEndpoint":"https://api.banco.com.br/open-banking/api/v1/resource",` + dev + `}}`,
	`{"step":"REDIRECT_TARGET","data":{"uriAuthorizationEndpoint":"https://api.banco.com.br/open-banking/api/v1/resource",` + dev + `,"type":"AWAITING_HANDOFF"}}`,
	`{"step":"AUTHENTICATED","data":{` + dev + `}}`,
	`{"step":"REDIRECT_TO_CLIENT","data":{"uri_callback":"https://api.banco.com.br/open-banking/api/v1/resource",` + dev + `,"type":"AUTHORISED"}}`,
	`{"step":"REDIRECT_TARGET_WITH_ERRORS","data":{` + dev + `,"error":"access_denied"}}`,
	`{"step":"REDIRECT_TARGET_WITHOUT_ERRORS","data":{` + dev + `}}`,
}

type result struct {
	Name      string  `json:"name"`
	Requests  int     `json:"requests"`
	Created   int64   `json:"created"`
	Failed    int64   `json:"failed"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"eventsPerSecond"`
}

func main() {
	n := flag.Int("n", 12000, "reports per phase (rounded to a multiple of 6)")
	c := flag.Int("c", 32, "concurrent workers")
	rounds := flag.Int("rounds", 1, "alternate baseline and Ponte phases this many times and report the median ratio (steadier on a shared machine)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the Ponte phases to FILE (the whole process: filter with pprof -focus)")
	asJSON := flag.Bool("json", false, "print JSON")
	flag.Parse()
	if err := run(max(*n/6*6, 6), *c, max(*rounds, 1), *cpuProfile, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "pcmrun:", err)
		os.Exit(1)
	}
}

// roundResult is one round: the baseline and Ponte on the same requests.
type roundResult struct {
	Baseline result  `json:"baseline"`
	Ponte    result  `json:"ponte"`
	Ratio    float64 `json:"ratio"`
}

func run(n, workers, rounds int, cpuProfile string, asJSON bool) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ponte-pcmrun-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := config.Config{Addr: "127.0.0.1:0", DataDir: dir, Mode: config.Sandbox, PublicURL: "http://127.0.0.1",
		TokenTTL: time.Hour, LogFormat: "json", ShutdownTimeout: 10 * time.Second, SweepInterval: time.Hour}
	if err := cfg.Finish(); err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer a.Close()
	partner, secret, err := a.Apps.Create(ctx, auth.NewApplication{Name: "Bench partner", CompanyKey: "BENCH", Scopes: []string{pcm.ScopeReport}})
	if err != nil {
		return err
	}
	ponte := httptest.NewServer(a.Handler())
	defer ponte.Close()
	token, err := getToken(ponte.URL, partner.ClientID, secret)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc(pcm.RouteReport, bare)
	baseline := httptest.NewServer(mux)
	defer baseline.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers * 2, MaxConnsPerHost: workers * 2}, Timeout: 30 * time.Second}
	// Warm both up (not counted): a few reports of consents of their own.
	warm, err := seedConsents(ctx, a, partner.ID, workers)
	if err != nil {
		return err
	}
	load(client, baseline.URL, "", warm, workers)
	load(client, ponte.URL, token, warm, workers)

	var prof *os.File
	if cpuProfile != "" {
		if prof, err = os.Create(cpuProfile); err != nil {
			return err
		}
		defer prof.Close()
	}
	var out []roundResult
	for round := 1; round <= rounds; round++ {
		// Each round reports the steps of consents of its own, so every
		// report stores a new event (set up outside the measured phases).
		reqs, err := seedConsents(ctx, a, partner.ID, n/6)
		if err != nil {
			return err
		}
		base := load(client, baseline.URL, "", reqs, workers)
		base.Name = "baseline (bare handler)"
		if prof != nil {
			if err := pprof.StartCPUProfile(prof); err != nil {
				return err
			}
		}
		real := load(client, ponte.URL, token, reqs, workers)
		if prof != nil {
			pprof.StopCPUProfile()
			prof = nil // one profile: pprof files do not concatenate
		}
		real.Name = "ponte (report API)"
		r := roundResult{Baseline: base, Ponte: real, Ratio: real.PerSecond / base.PerSecond}
		out = append(out, r)
		if !asJSON {
			fmt.Printf("round %d of %d: %d reports, %d workers, loopback\n", round, rounds, n, workers)
			for _, r := range []result{base, real} {
				fmt.Printf("  %-26s %8.0f events/s  (%d × 201, %d failed, %.2fs)\n", r.Name, r.PerSecond, r.Created, r.Failed, r.Seconds)
			}
			fmt.Printf("  ratio ponte/baseline:      %.3f\n", r.Ratio)
		}
	}
	var stored int64
	if err := a.DB.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM pcm_events WHERE application_id = $1`, partner.ID).Scan(&stored); err != nil {
		return err
	}
	ratios := make([]float64, len(out))
	for i, r := range out {
		ratios[i] = r.Ratio
	}
	ratio := loadgen.Median(ratios)
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(map[string]any{"rounds": out, "ratio": ratio, "ratios": ratios, "stored": stored,
			"target": 0.35, "met": ratio >= 0.35, "workers": workers, "reports": n})
	}
	what := "ratio ponte/baseline"
	if rounds > 1 {
		what = fmt.Sprintf("median ratio of %d rounds", rounds)
	}
	fmt.Printf("events stored by Ponte: %d (want %d)\n", stored, int64(rounds*n+6*workers))
	fmt.Printf("%s: %.3f (target ≥ 0.35: %s)\n", what, ratio, loadgen.Met(ratio >= 0.35))
	return nil
}

// seedConsents creates n consents the partner initiated through Ponte at a
// brand (authorization requests Ponte pushed for it, written directly) and
// returns the six seed reports of each.
func seedConsents(ctx context.Context, a *app.App, applicationID string, n int) ([]request, error) {
	consents := make([]string, n)
	err := a.DB.Write(ctx, func(tx *sql.Tx) error {
		now := time.Now().UnixMilli()
		for i := range consents {
			consents[i] = "urn:bench:" + uuid.NewString()
			if _, err := tx.ExecContext(ctx, `INSERT INTO itp_authorizations (id, state_hash, application_id, kind, brand_id, consent_id,
				consent_path, scope, nonce, code_verifier, redirect_uri, authorization_url, status, created_at, updated_at, expires_at)
				VALUES ($1, $2, $3, 'PAYMENT_INITIATION', 'bench-brand', $4, '/c', 'openid payments', 'n', 'v', 'https://f.example/cb',
				'https://b.example/authorize', 'PENDING', $5, $5, $5)`, uuid.NewString(), uuid.NewString(), applicationID, consents[i], now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("seed consents: %w", err)
	}
	reqs := make([]request, 0, 6*n)
	for _, id := range consents {
		for _, body := range seedBodies {
			reqs = append(reqs, request{path: "/api/journey/v1/consents/" + url.PathEscape(id) + "/report", body: body})
		}
	}
	return reqs, nil
}

type request struct{ path, body string }

func getToken(base, clientID, secret string) (string, error) {
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader("grant_type=client_credentials&scope="+pcm.ScopeReport))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		return "", errors.New("token request failed")
	}
	return out.AccessToken, nil
}

func load(client *http.Client, base, token string, reqs []request, workers int) result {
	var next, created, failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(reqs)) {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, base+reqs[i].path, bytes.NewReader([]byte(reqs[i].body)))
				req.Header.Set("Content-Type", "application/json")
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					created.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	return result{Requests: len(reqs), Created: created.Load(), Failed: failed.Load(), Seconds: el, PerSecond: float64(created.Load()) / el}
}

// bare decodes the report and answers a 201 of the same shape as Ponte's,
// with nothing behind it.
func bare(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Step string `json:"step"`
		Data struct {
			Platform                 string `json:"platform"`
			OS                       string `json:"os"`
			OSVersion                string `json:"osVersion"`
			URIAuthorizationEndpoint string `json:"uriAuthorizationEndpoint"`
			URICallback              string `json:"uri_callback"`
			Type                     string `json:"type"`
			Error                    string `json:"error"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := time.Now().UTC()
	out := map[string]any{"data": pcm.EventJSON{ID: uuid.NewString(), ConsentID: r.PathValue("consentId"), Step: in.Step, Side: pcm.SideOf(in.Step),
		Data: pcm.EventDataJSON{Platform: in.Data.Platform, OS: in.Data.OS, OSVersion: in.Data.OSVersion, URIAuthorizationEndpoint: in.Data.URIAuthorizationEndpoint,
			URICallback: in.Data.URICallback, Type: in.Data.Type, Error: in.Data.Error},
		Source: pcm.SourceAPI, Timestamp: now.Format("2006-01-02T15:04:05.000Z")},
		"meta": map[string]string{"requestDateTime": now.Format(time.RFC3339)}}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(out)
}

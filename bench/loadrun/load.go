package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ponte-ofb/ponte/bench/internal/benchproc"
	"github.com/ponte-ofb/ponte/bench/internal/loadgen"
)

// ticketPath is the route under test on both servers.
const ticketPath = "/openfinance/consent-flow/ticket"

// requestBody is seed 000's example request, sent unchanged on every request.
var requestBody = []byte(`{"requestUri":"17307eb8-e9e6-4ce1-a14d-6f30923746f2","clientId":"7481c175-4a50-4af2-b3b1-b24a109f92ad","documentNumber":"47742663023"}`)

// newTransport returns a keep-alive transport sized for the load, so that no
// request pays for a new TCP connection once the pool is warm.
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil, // loopback only: never through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// target is one server under load. Both get byte-identical requests (same
// headers, including the bearer token, which the baseline ignores), so the
// difference in cost is all on the server side.
type target struct {
	pid    int // the server process, for its CPU time
	name   string
	url    string // full ticket URL
	client *http.Client
	token  *tokenSource
}

// result of one request.
type sample struct {
	status int           // 0: transport error
	lat    time.Duration // from the intended send time
	lag    time.Duration // open loop: how late the generator sent it
}

// ids makes random UUIDs (v4) cheaply; one per worker, not shared.
type ids struct{ r *rand.Rand }

func newIDs() ids {
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	return ids{rand.New(rand.NewChaCha8(seed))}
}

func (g ids) uuid() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], g.r.Uint64())
	binary.LittleEndian.PutUint64(b[8:], g.r.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// send posts one ticket request and reads the whole response. It returns the
// status (0 on a transport error) and, if keep is set, the body.
func (t *target) send(ctx context.Context, g ids, keep bool) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(requestBody))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+t.token.get())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("idempotencyKey", g.uuid())
	req.Header.Set("x-correlation-id", g.uuid())
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if keep {
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil, err
}

// PhaseResult is one target under one load pattern.
type PhaseResult struct {
	Target      string         `json:"target"`
	Mode        string         `json:"mode"` // "closed" (peak) or "open" (constant rate)
	Workers     int            `json:"workers"`
	OfferedRate float64        `json:"offeredRatePerSecond,omitempty"` // open loop only
	Seconds     float64        `json:"seconds"`                        // measured window, warm-up excluded
	Requests    int            `json:"requests"`                       // responses and errors in the window
	Created     int            `json:"created"`                        // 201 responses in the window
	Non201      int            `json:"non201"`                         // other statuses
	Errors      int            `json:"errors"`                         // transport errors and timeouts
	Statuses    map[string]int `json:"statuses"`
	FirstError  string         `json:"firstError,omitempty"`
	RPS         float64        `json:"createdPerSecond"` // 201s per second of the window
	P50ms       float64        `json:"p50Ms"`
	P99ms       float64        `json:"p99Ms"`
	Maxms       float64        `json:"maxMs"`
	// LagP99ms (open loop) is the 99th percentile of how late the load
	// generator itself sent requests: latency below it is not the server's.
	LagP99ms float64 `json:"generatorLagP99Ms,omitempty"`
	// CPUPerRequestUs is the server process's CPU time (user + system, from
	// /proc) over the phase, warm-up included, per response. It moves much
	// less than the rates when other work shares the machine.
	CPUPerRequestUs float64 `json:"serverCpuPerRequestUs,omitempty"`
}

func summarize(name, mode string, workers int, pr phaseRun) PhaseResult {
	window, samples, firstErr := pr.window, pr.samples, pr.firstErr
	r := PhaseResult{Target: name, Mode: mode, Workers: workers, Seconds: window.Seconds(), Statuses: map[string]int{}}
	if pr.answered > 0 && pr.cpu > 0 {
		r.CPUPerRequestUs = math.Round(float64(pr.cpu) / float64(pr.answered) / 1e3)
	}
	lats := make([]time.Duration, 0, len(samples))
	lags := make([]time.Duration, 0, len(samples))
	for _, s := range samples {
		lags = append(lags, s.lag)
		r.Requests++
		switch {
		case s.status == 0:
			r.Errors++
			r.Statuses["error"]++
		case s.status == http.StatusCreated:
			r.Created++
			r.Statuses["201"]++
		default:
			r.Non201++
			r.Statuses[strconv.Itoa(s.status)]++
		}
		lats = append(lats, s.lat) // errors count too: a timeout is a slow answer
	}
	if firstErr != nil {
		r.FirstError = firstErr.Error()
	}
	if window > 0 {
		r.RPS = float64(r.Created) / window.Seconds()
	}
	slices.Sort(lats)
	r.P50ms, r.P99ms = ms(loadgen.Percentile(lats, 0.50)), ms(loadgen.Percentile(lats, 0.99))
	if len(lats) > 0 {
		r.Maxms = ms(lats[len(lats)-1])
	}
	slices.Sort(lags)
	r.LagP99ms = ms(loadgen.Percentile(lags, 0.99))
	return r
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// errOnce keeps the first error seen by any worker.
type errOnce struct {
	once sync.Once
	err  error
}

func (e *errOnce) set(err error) { e.once.Do(func() { e.err = err }) }

// phaseRun is the raw outcome of one phase, before summarizing; the rounds of a
// phase are merged with add.
type phaseRun struct {
	samples  []sample
	window   time.Duration
	firstErr error
	answered int64         // responses in the whole phase, warm-up included
	cpu      time.Duration // the server's CPU time over the whole phase
}

func (r *phaseRun) add(o phaseRun) {
	r.samples = append(r.samples, o.samples...)
	r.window += o.window
	r.answered += o.answered
	r.cpu += o.cpu
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
}

// closedLoop runs workers that each send the next request as soon as the
// previous answer arrived: the peak rate the server sustains at that
// concurrency. Requests that complete during warm-up are not counted.
func closedLoop(ctx context.Context, t *target, workers int, warmup, dur time.Duration) phaseRun {
	begin := time.Now()
	warmEnd, end := begin.Add(warmup), begin.Add(warmup+dur)
	ctx, cancel := context.WithDeadline(ctx, end.Add(10*time.Second)) // bounds a stuck request
	defer cancel()
	per := make([][]sample, workers)
	var firstErr errOnce
	var answered atomic.Int64
	cpu0 := benchproc.ProcCPU(t.pid)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := newIDs()
			out := make([]sample, 0, 4096)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				status, _, err := t.send(ctx, g, false)
				t1 := time.Now()
				if err != nil {
					status = 0
					if ctx.Err() == nil {
						firstErr.set(err)
					}
				} else {
					answered.Add(1)
				}
				if t1.Before(warmEnd) || t1.After(end) {
					continue
				}
				out = append(out, sample{status: status, lat: t1.Sub(t0)})
			}
			per[w] = out
		}()
	}
	wg.Wait()
	window := dur
	if now := time.Now(); now.Before(end) { // interrupted
		window = max(0, now.Sub(warmEnd))
	}
	return phaseRun{samples: slices.Concat(per...), window: window, firstErr: firstErr.err,
		answered: answered.Load(), cpu: benchproc.ProcCPU(t.pid) - cpu0}
}

// openLoop offers requests at a constant rate, whatever the server does: slot
// i is due at begin + i/rate. Latency is measured from the slot's due time,
// not from when a worker got round to sending it, so a stalled server is
// charged for every request that queued behind the stall (no coordinated
// omission). Slots due during warm-up are not counted.
func openLoop(ctx context.Context, t *target, rate float64, workers int, warmup, dur time.Duration) phaseRun {
	interval := time.Duration(float64(time.Second) / rate)
	total := int64((warmup + dur) / interval)
	begin := time.Now().Add(20 * time.Millisecond) // let every worker reach its first slot
	warmEnd := begin.Add(warmup)
	ctx, cancel := context.WithDeadline(ctx, begin.Add(warmup+dur+10*time.Second))
	defer cancel()
	var next, answered atomic.Int64
	per := make([][]sample, workers)
	var firstErr errOnce
	cpu0 := benchproc.ProcCPU(t.pid)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := newIDs()
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
				status, _, err := t.send(ctx, g, false)
				lat := time.Since(due)
				if err != nil {
					status = 0
					if ctx.Err() == nil {
						firstErr.set(err)
					}
				} else {
					answered.Add(1)
				}
				if due.Before(warmEnd) {
					continue
				}
				out = append(out, sample{status: status, lat: lat, lag: sent.Sub(due)})
			}
		}()
	}
	wg.Wait()
	return phaseRun{samples: slices.Concat(per...), window: dur, firstErr: firstErr.err,
		answered: answered.Load(), cpu: benchproc.ProcCPU(t.pid) - cpu0}
}

// tokenSource holds a current access token and renews it before it expires.
type tokenSource struct {
	client             *http.Client
	url                string
	clientID, secret   string
	cur                atomic.Pointer[string]
	lifetime           time.Duration
	renewals, failures atomic.Int64
}

func (s *tokenSource) get() string { return *s.cur.Load() }

// fetch obtains a token with client_credentials and client_secret_basic.
func (s *tokenSource) fetch(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(s.clientID), url.QueryEscape(s.secret))
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("token request: %s: %s", resp.Status, b)
	}
	if err := json.Unmarshal(b, &tok); err != nil || tok.AccessToken == "" {
		return fmt.Errorf("token request: unexpected response %s", b)
	}
	s.cur.Store(&tok.AccessToken)
	s.lifetime = time.Duration(tok.ExpiresIn) * time.Second
	return nil
}

// renew fetches a new token whenever two thirds of the current one's lifetime
// have passed, until ctx ends.
func (s *tokenSource) renew(ctx context.Context) {
	every := max(s.lifetime*2/3, 5*time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		if err := s.fetch(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.failures.Add(1)
			every = 5 * time.Second // retry soon; the old token is still valid for a while
			continue
		}
		s.renewals.Add(1)
		every = max(s.lifetime*2/3, 5*time.Second)
	}
}

// checkShapes sends one request to each target and checks both answer 201
// with bodies of the same shape, so the comparison is like for like.
func checkShapes(ctx context.Context, ponte, base *target) error {
	g := newIDs()
	keys := func(t *target) ([]string, map[string]any, error) {
		status, body, err := t.send(ctx, g, true)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", t.name, err)
		}
		if status != http.StatusCreated {
			return nil, nil, fmt.Errorf("%s answered %d, want 201: %s", t.name, status, body)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, nil, fmt.Errorf("%s: response is not a JSON object: %s", t.name, body)
		}
		var ks []string
		for k, v := range m {
			if _, ok := v.(string); !ok {
				return nil, nil, fmt.Errorf("%s: field %s is not a string: %s", t.name, k, body)
			}
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks, m, nil
	}
	pk, pm, err := keys(ponte)
	if err != nil {
		return err
	}
	bk, bm, err := keys(base)
	if err != nil {
		return err
	}
	if !slices.Equal(pk, bk) {
		return fmt.Errorf("response shapes differ: ponte %v, baseline %v", pk, bk)
	}
	for _, m := range []map[string]any{pm, bm} {
		if id := m["ticketId"].(string); len(id) != 32 {
			return fmt.Errorf("ticketId %q is not 32 hex characters", id)
		}
		if m["status"] != "UNUSED" {
			return errors.New("status is not UNUSED")
		}
	}
	return nil
}

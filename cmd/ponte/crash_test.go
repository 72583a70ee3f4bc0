package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// Parameters of the crash test.
const (
	crashDocument    = "47742663023"    // a valid CPF
	crashWorkers     = 8                // concurrent ticket writers
	crashTarget      = 200              // acknowledged tickets before the kill
	crashLoadLimit   = 20 * time.Second // kill after this long even below crashTarget
	crashBannerWait  = 30 * time.Second // how long a start may take to print its banner
	crashExitWait    = 10 * time.Second // how long a killed process may take to be reaped
	crashWorkersWait = 10 * time.Second // how long workers may take to notice the kill
)

// TestCrashKeepsAcknowledgedTickets runs `ponte serve` as a separate process,
// creates tickets from several goroutines, kills the process with SIGKILL in
// the middle of the load, starts it again on the same database and data
// directory, and checks that every ticket acknowledged with 201 is there, that
// the sandbox demo credentials did not change, and that an idempotent replay
// returns the original response byte for byte.
func TestCrashKeepsAcknowledgedTickets(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH: cannot build the ponte binary")
	}
	bin := buildPonte(t)
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			dataDir := t.TempDir()
			var dbURL string // SQLite: the default, DATA-DIR/ponte.db
			if e.Name != "sqlite" {
				dbURL = e.URL(t) // registered before the process: dropped after it is killed
			}
			testCrash(t, bin, dataDir, dbURL)
		})
	}
}

// ackedTicket is a ticket the server acknowledged with 201.
type ackedTicket struct {
	TicketID       string `json:"ticketId"`
	DocumentNumber string `json:"documentNumber"`
	RequestURI     string `json:"requestUri"`
	ClientID       string `json:"clientId"`
	Status         string `json:"status"`
}

// ackedRequest is a 201 exchange kept for an idempotent replay after restart.
type ackedRequest struct {
	key        string
	body, resp []byte
}

func testCrash(t *testing.T, bin, dataDir, dbURL string) {
	first := startPonte(t, bin, dataDir, dbURL)
	client := newCrashClient()
	token := first.token(t, client)

	var (
		mu       sync.Mutex
		acked    []ackedTicket
		replay   *ackedRequest
		count    atomic.Int64
		killed   atomic.Bool
		postErrs atomic.Int64 // transport errors after the kill (expected)
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for w := 0; w < crashWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				key, body, status, resp, err := postTicket(ctx, client, first.url, token)
				if err != nil {
					if killed.Load() || ctx.Err() != nil {
						postErrs.Add(1)
						return // the server is gone: expected
					}
					t.Errorf("POST ticket before the kill: %v", err)
					return
				}
				if status != http.StatusCreated {
					t.Errorf("POST ticket: status %d, body %s", status, resp)
					return
				}
				var tk ackedTicket
				if err := json.Unmarshal(resp, &tk); err != nil || tk.TicketID == "" {
					t.Errorf("POST ticket: 201 with an unreadable body %q (%v)", resp, err)
					return
				}
				mu.Lock()
				acked = append(acked, tk)
				// Keep the most recent acknowledgement: the one closest to the kill.
				replay = &ackedRequest{key: key, body: body, resp: resp}
				mu.Unlock()
				count.Add(1)
			}
		}()
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()
	defer func() { // on every way out, no worker outlives the test
		killed.Store(true)
		cancel()
		<-workersDone
	}()

	// Let the load run until enough tickets are acknowledged (or time is up),
	// then kill the server while the workers are still sending.
	loadStart := time.Now()
	deadline := time.NewTimer(crashLoadLimit)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
wait:
	for count.Load() < crashTarget {
		select {
		case <-deadline.C:
			break wait
		case <-workersDone:
			t.Fatalf("every worker stopped before the kill, after %d tickets", count.Load())
		case <-first.exited:
			t.Fatalf("ponte exited on its own under load (%v)", first.waitErr)
		case <-tick.C:
		}
	}
	atKill := count.Load()
	killed.Store(true)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	select {
	case <-first.exited:
	case <-time.After(crashExitWait):
		t.Fatalf("ponte (pid %d) still running %s after SIGKILL", first.cmd.Process.Pid, crashExitWait)
	}
	if ps := first.cmd.ProcessState; ps == nil || ps.Exited() {
		t.Fatalf("ponte was expected to die by SIGKILL, but it ended with %v", ps)
	}
	select {
	case <-workersDone:
	case <-time.After(crashWorkersWait):
		cancel()
		<-workersDone
		t.Errorf("workers still sending %s after the kill", crashWorkersWait)
	}
	client.CloseIdleConnections()
	if t.Failed() {
		t.FailNow()
	}
	mu.Lock()
	tickets, rp := acked, replay
	mu.Unlock()
	t.Logf("load ran %s: %d tickets acknowledged (%d when SIGKILL was sent, %d after), %d requests cut by the kill",
		time.Since(loadStart).Round(time.Millisecond), len(tickets), atKill, int64(len(tickets))-atKill, postErrs.Load())
	if len(tickets) == 0 || rp == nil {
		t.Fatal("no ticket was acknowledged before the kill: nothing to check")
	}

	// Restart on the same database and data directory.
	second := startPonte(t, bin, dataDir, dbURL)
	if second.clientID != first.clientID || second.clientSecret != first.clientSecret {
		t.Errorf("sandbox demo credentials changed across the restart: client_id %q -> %q, client_secret changed: %v",
			first.clientID, second.clientID, second.clientSecret != first.clientSecret)
	}
	token = second.token(t, client)

	// Every acknowledged ticket must be there, unchanged.
	var (
		fmu      sync.Mutex
		failures []string
		next     = make(chan ackedTicket)
		checkers sync.WaitGroup
	)
	for w := 0; w < crashWorkers; w++ {
		checkers.Add(1)
		go func() {
			defer checkers.Done()
			for want := range next {
				if problem := checkTicket(client, second.url, token, want); problem != "" {
					fmu.Lock()
					failures = append(failures, problem)
					fmu.Unlock()
				}
			}
		}()
	}
	for _, tk := range tickets {
		next <- tk
	}
	close(next)
	checkers.Wait()
	if len(failures) > 0 {
		const show = 10
		for i, f := range failures {
			if i == show {
				t.Errorf("... and %d more", len(failures)-show)
				break
			}
			t.Error(f)
		}
		t.Errorf("%d of %d acknowledged tickets are missing or wrong after SIGKILL and restart", len(failures), len(tickets))
	}

	// An idempotent replay after the restart gets the original response.
	status, resp, err := sendTicket(context.Background(), client, second.url, token, rp.key, rp.body)
	switch {
	case err != nil:
		t.Errorf("replay after restart: %v", err)
	case status != http.StatusCreated || !bytes.Equal(resp, rp.resp):
		t.Errorf("replay of idempotencyKey %s after restart:\n got  %d %s\n want 201 %s", rp.key, status, resp, rp.resp)
	}
	client.CloseIdleConnections()
}

// checkTicket reads one ticket and returns a description of what is wrong, or "".
func checkTicket(client *http.Client, base, token string, want ackedTicket) string {
	req, err := http.NewRequest(http.MethodGet, base+"/openfinance/consent-flow/ticket/"+url.PathEscape(want.TicketID), nil)
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := client.Do(req)
	if err != nil {
		return fmt.Sprintf("GET ticket %s: %v", want.TicketID, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Sprintf("GET ticket %s: read body: %v", want.TicketID, err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Sprintf("GET ticket %s: status %d, body %s", want.TicketID, res.StatusCode, body)
	}
	var got ackedTicket
	if err := json.Unmarshal(body, &got); err != nil {
		return fmt.Sprintf("GET ticket %s: body %q: %v", want.TicketID, body, err)
	}
	want.Status = "UNUSED"
	if got != want {
		return fmt.Sprintf("GET ticket %s: got %+v, want %+v", want.TicketID, got, want)
	}
	return ""
}

// postTicket creates a ticket under a fresh idempotency key.
func postTicket(ctx context.Context, client *http.Client, base, token string) (key string, body []byte, status int, resp []byte, err error) {
	key = uuid.NewString()
	body, err = json.Marshal(map[string]string{
		"requestUri": uuid.NewString(), "clientId": uuid.NewString(), "documentNumber": crashDocument,
	})
	if err != nil {
		return "", nil, 0, nil, err
	}
	status, resp, err = sendTicket(ctx, client, base, token, key, body)
	return key, body, status, resp, err
}

func sendTicket(ctx context.Context, client *http.Client, base, token, key string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/openfinance/consent-flow/ticket", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("idempotencyKey", key)
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	resp, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("read response (status %d): %w", res.StatusCode, err)
	}
	return res.StatusCode, resp, nil
}

func newCrashClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2 * crashWorkers
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// buildPonte builds this package's binary into a temporary directory.
func buildPonte(t *testing.T) string {
	t.Helper()
	timeout := 5 * time.Minute
	if d, ok := t.Deadline(); ok {
		if left := time.Until(d) - 30*time.Second; left < timeout {
			timeout = left
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "ponte")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -o %s . (timeout %s): %v\n%s", bin, timeout, err, out)
	}
	t.Logf("built %s in %s", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

// ponteProcess is one running `ponte serve`.
type ponteProcess struct {
	cmd                    *exec.Cmd
	url                    string
	clientID, clientSecret string
	stdout, stderr         syncBuffer
	exited                 chan struct{} // closed once the process is reaped
	waitErr                error         // set before exited is closed
}

var bannerLine = regexp.MustCompile(`^Ponte is running in (\S+) mode on (http://\S+) \(`)

// startPonte starts `ponte serve` on a free port and waits for its banner. The
// process is killed when the test ends, if still running.
func startPonte(t *testing.T, bin, dataDir, dbURL string) *ponteProcess {
	t.Helper()
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir}
	if dbURL != "" {
		args = append(args, "--database-url", dbURL)
	}
	p := &ponteProcess{exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = envWithoutPonte()
	pr, pw := io.Pipe()
	p.cmd.Stdout = io.MultiWriter(&p.stdout, pw)
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			select {
			case <-p.exited:
			case <-time.After(crashExitWait):
				t.Errorf("ponte (pid %d) did not exit after SIGKILL", p.cmd.Process.Pid)
			}
		}
		if t.Failed() {
			state := "still running"
			select {
			case <-p.exited:
				state = p.cmd.ProcessState.String()
			default:
			}
			t.Logf("ponte %s (pid %d, %s)\n--- stdout ---\n%s--- stderr ---\n%s",
				strings.Join(args, " "), p.cmd.Process.Pid, state, p.stdout.String(), tail(p.stderr.String(), 16<<10))
		}
	})

	type banner struct{ mode, url, clientID, clientSecret string }
	got := make(chan banner, 1)
	go func() {
		var b banner
		sent := false
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			if m := bannerLine.FindStringSubmatch(line); m != nil {
				b.mode, b.url = m[1], m[2]
			} else if v, ok := strings.CutPrefix(strings.TrimSpace(line), "client_id:"); ok {
				b.clientID = strings.TrimSpace(v)
			} else if v, ok := strings.CutPrefix(strings.TrimSpace(line), "client_secret:"); ok {
				b.clientSecret = strings.TrimSpace(v)
			}
			if !sent && b.url != "" && b.clientID != "" && b.clientSecret != "" {
				got <- b
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, pr) // keep draining so the process never blocks on stdout
	}()
	select {
	case b := <-got:
		if b.mode != "sandbox" {
			t.Fatalf("ponte runs in %q mode, want sandbox", b.mode)
		}
		p.url, p.clientID, p.clientSecret = b.url, b.clientID, b.clientSecret
	case <-p.exited:
		t.Fatalf("ponte exited before printing its banner: %v\nstderr:\n%s", p.waitErr, p.stderr.String())
	case <-time.After(crashBannerWait):
		t.Fatalf("no banner with URL and demo credentials from ponte after %s\nstdout:\n%s\nstderr:\n%s",
			crashBannerWait, p.stdout.String(), p.stderr.String())
	}
	return p
}

// token gets an access token for the demo application (client_secret_basic).
func (p *ponteProcess) token(t *testing.T, client *http.Client) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.url+"/oauth/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(p.clientID), url.QueryEscape(p.clientSecret))
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST /oauth/token: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("POST /oauth/token: read body: %v", err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("POST /oauth/token: status %d, body %s", res.StatusCode, body)
	}
	return tok.AccessToken
}

// tail returns the last n bytes of s (from a line start), noting what it left out.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := len(s) - n
	if i := strings.IndexByte(s[cut:], '\n'); i >= 0 {
		cut += i + 1
	}
	return fmt.Sprintf("[... %d bytes left out ...]\n%s", cut, s[cut:])
}

// envWithoutPonte is this process's environment without PONTE_* variables, so
// a developer's settings cannot change what the test runs.
func envWithoutPonte() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PONTE_") {
			env = append(env, kv)
		}
	}
	return env
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

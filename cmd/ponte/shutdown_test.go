package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// Parameters of the graceful-shutdown tests.
const (
	shutdownTarget    = 100              // acknowledged tickets before the signal
	shutdownLoadLimit = 30 * time.Second // fail if the target takes longer
	shutdownExitWait  = 15 * time.Second // the process must exit by itself within this
	// shutdownSettle is how long the slow request waits, after its headers are
	// sent and again after the server logged "shutting down", so that a server
	// which dropped in-flight requests would have dropped it.
	shutdownSettle = 300 * time.Millisecond
)

// TestGracefulShutdownKeepsAcknowledged runs `ponte serve` as a separate
// process under a load of ticket writers, sends SIGTERM while the load goes
// on, and checks that the process finishes in-flight requests and exits 0 by
// itself, that no request got anything but 201 or (after the signal) a
// connection error, and that every acknowledged ticket is there after a restart.
func TestGracefulShutdownKeepsAcknowledged(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH: cannot build the ponte binary")
	}
	bin := buildPonte(t)
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			dataDir := t.TempDir()
			var dbURL string // SQLite: the default, DATA-DIR/ponte.db
			if e.Name != "sqlite" {
				dbURL = e.URL(t)
			}
			testGracefulShutdown(t, bin, dataDir, dbURL, syscall.SIGTERM)
		})
	}
}

// TestGracefulShutdownOnSIGINT is the same scenario with Ctrl-C (SIGINT), on SQLite.
func TestGracefulShutdownOnSIGINT(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH: cannot build the ponte binary")
	}
	testGracefulShutdown(t, buildPonte(t), t.TempDir(), "", syscall.SIGINT)
}

// sigName names a signal as operators know it.
func sigName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	}
	return sig.String()
}

func testGracefulShutdown(t *testing.T, bin, dataDir, dbURL string, sig syscall.Signal) {
	name := sigName(sig)
	first := startPonte(t, bin, dataDir, dbURL)
	client := newCrashClient()
	defer client.CloseIdleConnections()
	token := first.token(t, client)

	var (
		mu        sync.Mutex
		acked     []ackedTicket
		problems  []string // responses other than 201, errors before the signal
		count     atomic.Int64
		afterSig  atomic.Int64 // 201s received after the signal was sent
		connErrs  atomic.Int64 // transport errors after the signal (expected)
		signalled atomic.Bool
		wg        sync.WaitGroup
	)
	problem := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for w := 0; w < crashWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, _, status, resp, err := postTicket(ctx, client, first.url, token)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					if !signalled.Load() {
						problem("POST ticket before %s: %v", name, err)
						return
					}
					// The listener is closed or the connection was shut: expected
					// once shutdown started. Keep knocking until the process is gone.
					connErrs.Add(1)
					select {
					case <-first.exited:
						return
					case <-ctx.Done():
						return
					case <-time.After(2 * time.Millisecond):
					}
					continue
				}
				if status != http.StatusCreated {
					problem("POST ticket (signal sent: %v): status %d, body %s", signalled.Load(), status, resp)
					return
				}
				var tk ackedTicket
				if err := json.Unmarshal(resp, &tk); err != nil || tk.TicketID == "" {
					problem("POST ticket: 201 with an unreadable body %q (%v)", resp, err)
					return
				}
				mu.Lock()
				acked = append(acked, tk)
				mu.Unlock()
				count.Add(1)
				if signalled.Load() {
					afterSig.Add(1)
				}
			}
		}()
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()
	defer func() { // on every way out, no worker outlives the test
		cancel()
		<-workersDone
	}()

	deadline := time.NewTimer(shutdownLoadLimit)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for count.Load() < shutdownTarget {
		select {
		case <-deadline.C:
			t.Fatalf("only %d tickets acknowledged after %s, want %d before the signal", count.Load(), shutdownLoadLimit, shutdownTarget)
		case <-workersDone: // every worker has returned: problems is no longer written
			t.Fatalf("every worker stopped before the signal, after %d tickets: %q", count.Load(), problems)
		case <-first.exited:
			t.Fatalf("ponte exited on its own under load (%v)", first.waitErr)
		case <-tick.C:
		}
	}

	// One request is deliberately in flight when the signal arrives: its
	// headers and half its body are sent, the rest only after the server has
	// started shutting down. A graceful server waits for it and answers 201.
	slow := startSlowTicket(t, first.url, token)
	time.Sleep(shutdownSettle)

	atSignal := count.Load()
	signalled.Store(true)
	sentAt := time.Now()
	if err := first.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	exitBy := time.NewTimer(shutdownExitWait)
	defer exitBy.Stop()

	// Wait for the log line, then finish the slow request.
	for !strings.Contains(first.stderr.String(), "shutting down") {
		select {
		case <-first.exited:
			t.Fatalf("ponte exited while a request was in flight, %s after %s, before logging \"shutting down\" (%v)",
				time.Since(sentAt).Round(time.Millisecond), name, first.waitErr)
		case <-exitBy.C:
			t.Fatalf("ponte did not log \"shutting down\" within %s of %s", shutdownExitWait, name)
		case <-time.After(5 * time.Millisecond):
		}
	}
	time.Sleep(shutdownSettle)
	select {
	case <-first.exited:
		t.Fatalf("ponte exited %s after %s with a request still in flight (%v)",
			time.Since(sentAt).Round(time.Millisecond), name, first.waitErr)
	default:
	}
	slowTicket := slow.finish(t)

	select {
	case <-first.exited:
	case <-exitBy.C:
		t.Fatalf("ponte (pid %d) still running %s after %s", first.cmd.Process.Pid, shutdownExitWait, name)
	}
	exitedAfter := time.Since(sentAt)
	if ps := first.cmd.ProcessState; ps == nil || !ps.Exited() || ps.ExitCode() != 0 {
		t.Errorf("ponte ended with %v after %s, want exit status 0", first.cmd.ProcessState, name)
	}
	stderr := first.stderr.String()
	if !strings.Contains(stderr, "shutting down") {
		t.Errorf("stderr has no \"shutting down\" log line")
	}
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "level=ERROR") {
			t.Errorf("error logged during a graceful shutdown: %s", line)
		}
	}

	select {
	case <-workersDone:
	case <-time.After(crashWorkersWait):
		cancel()
		<-workersDone
		t.Errorf("workers still sending %s after ponte exited", crashWorkersWait)
	}
	client.CloseIdleConnections()
	mu.Lock()
	tickets, probs := append(acked, slowTicket), problems
	mu.Unlock()
	for i, p := range probs {
		if i == 10 {
			t.Errorf("... and %d more", len(probs)-i)
			break
		}
		t.Error(p)
	}
	t.Logf("%s sent after %d tickets; %d acknowledged after it (plus the slow one), %d requests refused; exit %s after the signal",
		name, atSignal, afterSig.Load(), connErrs.Load(), exitedAfter.Round(time.Millisecond))
	if t.Failed() {
		t.FailNow()
	}

	// Restart on the same database and data directory: every acknowledged
	// ticket must be there, unchanged.
	second := startPonte(t, bin, dataDir, dbURL)
	token = second.token(t, client)
	checkTickets(t, client, second.url, token, tickets)

	// The restarted server, idle, shuts down cleanly too.
	if err := second.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	select {
	case <-second.exited:
		if ps := second.cmd.ProcessState; !ps.Exited() || ps.ExitCode() != 0 {
			t.Errorf("idle ponte ended with %v after %s, want exit status 0", ps, name)
		}
	case <-time.After(shutdownExitWait):
		t.Errorf("idle ponte still running %s after %s", shutdownExitWait, name)
	}
}

// checkTickets reads every ticket from several goroutines and reports each one
// missing or different.
func checkTickets(t *testing.T, client *http.Client, base, token string, tickets []ackedTicket) {
	t.Helper()
	var (
		mu       sync.Mutex
		failures []string
		next     = make(chan ackedTicket)
		wg       sync.WaitGroup
	)
	for w := 0; w < crashWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for want := range next {
				if p := checkTicket(client, base, token, want); p != "" {
					mu.Lock()
					failures = append(failures, p)
					mu.Unlock()
				}
			}
		}()
	}
	for _, tk := range tickets {
		next <- tk
	}
	close(next)
	wg.Wait()
	for i, f := range failures {
		if i == 10 {
			t.Errorf("... and %d more", len(failures)-i)
			break
		}
		t.Error(f)
	}
	if len(failures) > 0 {
		t.Errorf("%d of %d acknowledged tickets are missing or wrong after restart", len(failures), len(tickets))
	}
}

// slowTicket is a ticket request written by hand on its own connection, so the
// test decides when its body is complete.
type slowTicket struct {
	conn net.Conn
	rest []byte
}

// startSlowTicket sends a ticket request's headers and the first half of its
// body, and returns without the rest.
func startSlowTicket(t *testing.T, base, token string) *slowTicket {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(map[string]string{
		"requestUri": uuid.NewString(), "clientId": uuid.NewString(), "documentNumber": crashDocument,
	})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", u.Host, err)
	}
	t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("POST /openfinance/consent-flow/ticket HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nidempotencyKey: %s\r\nContent-Length: %d\r\n\r\n",
		u.Host, token, uuid.NewString(), len(body))
	half := len(body) / 2
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, head+string(body[:half])); err != nil {
		t.Fatalf("write the slow request's headers: %v", err)
	}
	return &slowTicket{conn: conn, rest: body[half:]}
}

// finish sends the rest of the body and expects 201 with the ticket.
func (s *slowTicket) finish(t *testing.T) ackedTicket {
	t.Helper()
	_ = s.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.conn.Write(s.rest); err != nil {
		t.Fatalf("in-flight request cut by the shutdown: write the rest of the body: %v", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(s.conn), nil)
	if err != nil {
		t.Fatalf("in-flight request cut by the shutdown: read the response: %v", err)
	}
	defer res.Body.Close()
	resp, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("in-flight request: read the response body: %v", err)
	}
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("in-flight request during shutdown: status %d, body %s; want 201", res.StatusCode, resp)
	}
	if !res.Close {
		t.Errorf("a response sent while shutting down should close the connection (Connection: close)")
	}
	var tk ackedTicket
	if err := json.Unmarshal(resp, &tk); err != nil || tk.TicketID == "" {
		t.Fatalf("in-flight request: 201 with an unreadable body %q (%v)", resp, err)
	}
	return tk
}

package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// drainDelay is longer than HAProxy's inter × fall in the tests (FastCheck:
// 100 ms × 2) with room for a loaded machine.
const drainDelay = 2 * time.Second

// TestDrainUnderLoad: two instances behind HAProxy under a continuous load
// of ticket writes, restarted one after the other (a rolling upgrade):
// SIGTERM to one turns its /readyz 503, HAProxy takes it out of rotation,
// and only after --drain-delay does it close its listener and finish; it
// exits 0 and, restarted, serves again. No request fails at the balancer
// (no status other than 201, no transport error) in the whole run.
func TestDrainUnderLoad(t *testing.T) {
	c := newCluster(t, 2, "--drain-delay", drainDelay.String())
	const workers = 6
	client := newClient(workers)
	tok, err := token(t.Context(), client, c.URL, c.ClientID, c.ClientSecret, "")
	if err != nil {
		t.Fatal(err)
	}
	var (
		acked, failed atomic.Int64
		mu            sync.Mutex
		failures      []string
		wg            sync.WaitGroup
	)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				body := fmt.Appendf(nil, `{"requestUri":"%s","clientId":"%s","documentNumber":"47742663023"}`, uuid.NewString(), uuid.NewString())
				status, resp, err := send(ctx, client, http.MethodPost, c.URL+"/openfinance/consent-flow/ticket", tok, body,
					map[string]string{"idempotencyKey": uuid.NewString()})
				if ctx.Err() != nil {
					return
				}
				if err != nil || status != http.StatusCreated {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%d %s %v", status, resp, err))
					mu.Unlock()
					continue
				}
				acked.Add(1)
			}
		}()
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				stop()
				wg.Wait()
				t.Fatalf("%s: not within 60 s (acknowledged %d, failed %d)", what, acked.Load(), failed.Load())
			}
		}
	}
	waitFor("100 tickets before the signal", func() bool { return acked.Load() >= 100 })

	// A rolling restart: each instance in turn is drained, exits and comes
	// back, while the load goes on through the balancer.
	for i, in := range c.Instances {
		// The drained instance must be seen leaving rotation before it exits.
		sent := time.Now()
		atSignal := acked.Load()
		exited := make(chan error, 1)
		var code int
		go func() {
			var err error
			code, err = c.Terminate(i, drainDelay+60*time.Second)
			exited <- err
		}()
		if err := c.WaitServer(t.Context(), in.Name, "DOWN", drainDelay); err != nil {
			t.Errorf("HAProxy did not take the draining %s out within the drain delay: %v", in.Name, err)
		}
		down := time.Since(sent)
		if err := <-exited; err != nil {
			t.Fatal(err)
		}
		took := time.Since(sent)
		if code != 0 {
			t.Errorf("the drained %s exited %d, want 0", in.Name, code)
		}
		if took < drainDelay {
			t.Errorf("%s exited %s after SIGTERM, before its drain delay %s", in.Name, took, drainDelay)
		}
		// The load goes on against the other instance for a while.
		afterExit := acked.Load()
		waitFor("100 more tickets after the exit", func() bool { return acked.Load() >= afterExit+100 })
		t.Logf("SIGTERM to %s after %d tickets; HAProxy marked it DOWN %s later, it exited %s after the signal (drain delay %s)",
			in.Name, atSignal, down.Round(time.Millisecond), took.Round(time.Millisecond), drainDelay)
		// Back in rotation after a restart.
		if err := c.Restart(t.Context(), i); err != nil {
			stop()
			wg.Wait()
			t.Fatal(err)
		}
		status, body, err := send(t.Context(), client, http.MethodGet, in.URL+"/readyz", "", nil, nil)
		var st struct{ Status string }
		if err != nil || status != 200 || json.Unmarshal(body, &st) != nil || st.Status != "ready" {
			t.Errorf("readyz of the restarted %s: %d %s %v", in.Name, status, body, err)
		}
		back := acked.Load()
		waitFor("100 more tickets after the restart", func() bool { return acked.Load() >= back+100 })
	}
	stop()
	wg.Wait()
	t.Logf("rolling restart of %d instances under load: %d tickets acknowledged, %d failed", len(c.Instances), acked.Load(), failed.Load())
	if n := failed.Load(); n != 0 {
		t.Errorf("%d requests failed at the balancer during the drains, want 0; first: %v", n, failures[:min(len(failures), 5)])
	}
}

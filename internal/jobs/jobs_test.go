package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

var epoch = time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)

const testKind = "test.kind"

func newClient(db *store.DB, c clock.Clock, owner string) *Client {
	return New(db, Config{Clock: c, Owner: owner, PollInterval: 5 * time.Millisecond, Lease: time.Minute})
}

func enqueue(t testing.TB, db *store.DB, now time.Time, j Job) string {
	t.Helper()
	var id string
	err := db.Write(context.Background(), func(tx *sql.Tx) error {
		var err error
		id, err = Enqueue(context.Background(), tx, now, j)
		return err
	})
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return id
}

func get(t testing.TB, db *store.DB, id string) *Info {
	t.Helper()
	in, err := Get(context.Background(), db.Read(), id)
	if err != nil {
		t.Fatalf("get job %s: %v", id, err)
	}
	return in
}

func runDue(t testing.TB, c *Client) int {
	t.Helper()
	n, err := c.RunDue(context.Background())
	if err != nil {
		t.Fatalf("RunDue: %v", err)
	}
	return n
}

func countJobs(t testing.TB, db *store.DB) int {
	t.Helper()
	var n int
	if err := db.Read().QueryRow(`SELECT COUNT(*) FROM jobs`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

type payload struct {
	N    int    `json:"n"`
	Name string `json:"name"`
}

func TestEnqueueRunComplete(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clk := clock.NewFake(epoch)
		c := newClient(db, clk, "w1")
		var got []payload
		var attempts []int
		c.Register(testKind, func(ctx context.Context, j *Job) error {
			var p payload
			if err := j.Decode(&p); err != nil {
				return err
			}
			got = append(got, p)
			attempts = append(attempts, j.Attempt)
			if j.Kind != testKind || j.MaxAttempts != DefaultMaxAttempts || !j.CreatedAt.Equal(epoch) {
				t.Errorf("job as handed to the handler: %+v", j)
			}
			return nil
		}, nil)
		id := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{7, "seven"}})
		later := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{8, "later"}, RunAt: epoch.Add(time.Hour)})
		other := enqueue(t, db, clk.Now(), Job{Kind: "other.kind", Payload: payload{9, "not mine"}})

		if n := runDue(t, c); n != 1 {
			t.Fatalf("RunDue ran %d jobs, want 1", n)
		}
		if len(got) != 1 || got[0] != (payload{7, "seven"}) || attempts[0] != 1 {
			t.Fatalf("handler saw %v attempts %v", got, attempts)
		}
		in := get(t, db, id)
		if in.State != StateCompleted || in.Attempt != 1 || !in.FinishedAt.Equal(epoch) || in.LeaseOwner != "" {
			t.Errorf("after success: %+v", in)
		}
		if n := runDue(t, c); n != 0 {
			t.Errorf("a completed job ran again (%d)", n)
		}
		clk.Advance(time.Hour)
		if n := runDue(t, c); n != 1 || got[1].Name != "later" {
			t.Errorf("the scheduled job did not run at its time: %d %v", n, got)
		}
		if s := get(t, db, later).State; s != StateCompleted {
			t.Errorf("scheduled job state %s", s)
		}
		if s := get(t, db, other).State; s != StateAvailable {
			t.Errorf("a job of an unregistered kind was touched: %s", s)
		}
	})
}

// TestExactlyOnceClaiming runs several workers — each with its own database
// handle, as separate instances would have — against one queue, both with
// RunDue racing and with started background loops: every job runs exactly once.
func TestExactlyOnceClaiming(t *testing.T) {
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			url := e.URL(t)
			const workers, jobsPerMode = 4, 120
			dbs := make([]*store.DB, workers)
			for i := range dbs {
				dbs[i] = storetest.Open(t, url)
			}
			clk := clock.NewFake(epoch)
			var mu sync.Mutex
			runs := map[int]int{}
			handler := func(ctx context.Context, j *Job) error {
				var p payload
				if err := j.Decode(&p); err != nil {
					return err
				}
				time.Sleep(time.Millisecond) // widen the window for races
				mu.Lock()
				runs[p.N]++
				mu.Unlock()
				return nil
			}
			clients := make([]*Client, workers)
			for i := range clients {
				clients[i] = newClient(dbs[i], clk, fmt.Sprintf("instance-%d", i))
				clients[i].Register(testKind, handler, nil)
			}
			check := func(total int) {
				t.Helper()
				mu.Lock()
				defer mu.Unlock()
				for n := 0; n < total; n++ {
					if runs[n] != 1 {
						t.Errorf("job %d ran %d times", n, runs[n])
					}
				}
				var completed int
				if err := dbs[0].Read().QueryRow(`SELECT COUNT(*) FROM jobs WHERE state = $1 AND attempt = 1`, StateCompleted).Scan(&completed); err != nil {
					t.Fatal(err)
				}
				if completed != total {
					t.Errorf("%d jobs completed on their first attempt, want %d", completed, total)
				}
			}

			// Mode 1: RunDue racing on every worker.
			for n := 0; n < jobsPerMode; n++ {
				enqueue(t, dbs[n%workers], clk.Now(), Job{Kind: testKind, Payload: payload{N: n}})
			}
			var wg sync.WaitGroup
			var total atomic.Int64
			for _, c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 3; i++ {
						n, err := c.RunDue(context.Background())
						if err != nil {
							t.Errorf("RunDue: %v", err)
							return
						}
						total.Add(int64(n))
					}
				}()
			}
			wg.Wait()
			if total.Load() != jobsPerMode {
				t.Errorf("workers ran %d jobs in all, want %d", total.Load(), jobsPerMode)
			}
			check(jobsPerMode)

			// Mode 2: background loops.
			for _, c := range clients {
				if err := c.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			for n := jobsPerMode; n < 2*jobsPerMode; n++ {
				enqueue(t, dbs[n%workers], clk.Now(), Job{Kind: testKind, Payload: payload{N: n}})
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				var left int
				if err := dbs[0].Read().QueryRow(`SELECT COUNT(*) FROM jobs WHERE state <> $1`, StateCompleted).Scan(&left); err != nil {
					t.Fatal(err)
				}
				if left == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d jobs still not completed", left)
				}
				time.Sleep(10 * time.Millisecond)
			}
			for _, c := range clients {
				if err := c.Stop(context.Background()); err != nil {
					t.Error(err)
				}
			}
			check(2 * jobsPerMode)
		})
	}
}

func TestRetryBackoffWithFakeClock(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clk := clock.NewFake(epoch)
		c := newClient(db, clk, "w1")
		var attempts []int
		c.Register(testKind, func(ctx context.Context, j *Job) error {
			attempts = append(attempts, j.Attempt)
			if j.Attempt < 3 {
				return fmt.Errorf("receiver down (attempt %d)", j.Attempt)
			}
			return nil
		}, Schedule(10*time.Second, 20*time.Second))
		id := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{}})

		if n := runDue(t, c); n != 1 {
			t.Fatalf("first run: %d", n)
		}
		in := get(t, db, id)
		if in.State != StateAvailable || !in.RunAt.Equal(epoch.Add(10*time.Second)) || in.LastError != "receiver down (attempt 1)" || in.Attempt != 1 {
			t.Fatalf("after a failure: %+v", in)
		}
		clk.Advance(10*time.Second - time.Millisecond)
		if n := runDue(t, c); n != 0 {
			t.Fatalf("retried before its backoff (%d)", n)
		}
		clk.Advance(time.Millisecond)
		if n := runDue(t, c); n != 1 {
			t.Fatalf("not retried at its backoff (%d)", n)
		}
		if in := get(t, db, id); !in.RunAt.Equal(clk.Now().Add(20 * time.Second)) {
			t.Fatalf("second backoff: run_at %v, want now+20s", in.RunAt)
		}
		clk.Advance(19 * time.Second)
		if n := runDue(t, c); n != 0 {
			t.Fatalf("retried before the second backoff")
		}
		clk.Advance(time.Second)
		runDue(t, c)
		if in := get(t, db, id); in.State != StateCompleted || in.Attempt != 3 {
			t.Errorf("after recovery: %+v", in)
		}
		if fmt.Sprint(attempts) != "[1 2 3]" {
			t.Errorf("attempts %v", attempts)
		}
	})
}

func TestDiscardCancelRetryAtAndPanic(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clk := clock.NewFake(epoch)
		c := newClient(db, clk, "w1")
		var mu sync.Mutex
		runs := map[string]int{}
		c.Register(testKind, func(ctx context.Context, j *Job) error {
			var p payload
			_ = j.Decode(&p)
			mu.Lock()
			runs[p.Name]++
			mu.Unlock()
			switch p.Name {
			case "always-fails":
				return errors.New("boom")
			case "cancel":
				return Cancel(errors.New("account closed"))
			case "retry-at":
				if j.Attempt == 1 {
					return RetryAt(errors.New("busy"), epoch.Add(42*time.Minute))
				}
				return nil
			case "panics":
				if j.Attempt == 1 {
					panic("handler bug")
				}
				return nil
			}
			return nil
		}, Schedule(time.Second))
		fails := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{Name: "always-fails"}, MaxAttempts: 2})
		cancel := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{Name: "cancel"}})
		retryAt := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{Name: "retry-at"}})
		panics := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{Name: "panics"}})
		for i := 0; i < 5; i++ {
			runDue(t, c)
			clk.Advance(time.Second)
		}
		if in := get(t, db, fails); in.State != StateDiscarded || in.Attempt != 2 || in.LastError != "boom" || in.FinishedAt.IsZero() || runs["always-fails"] != 2 {
			t.Errorf("exhausted job: %+v (ran %d times)", in, runs["always-fails"])
		}
		if in := get(t, db, cancel); in.State != StateCancelled || in.Attempt != 1 || !strings.Contains(in.LastError, "account closed") || runs["cancel"] != 1 {
			t.Errorf("cancelled job: %+v", in)
		}
		if in := get(t, db, retryAt); in.State != StateAvailable || !in.RunAt.Equal(epoch.Add(42*time.Minute)) {
			t.Errorf("RetryAt job: %+v", in)
		}
		if in := get(t, db, panics); in.State != StateCompleted || in.Attempt != 2 {
			t.Errorf("panicking job: %+v", in)
		}
		clk.Set(epoch.Add(42 * time.Minute))
		runDue(t, c)
		if in := get(t, db, retryAt); in.State != StateCompleted || in.Attempt != 2 {
			t.Errorf("RetryAt job after its time: %+v", in)
		}
	})
}

func TestLeaseExpiryRecovery(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clk := clock.NewFake(epoch)
		crashed := newClient(db, clk, "crashed")
		healthy := newClient(db, clk, "healthy")
		var ran []int
		handler := func(ctx context.Context, j *Job) error {
			ran = append(ran, j.Attempt)
			return nil
		}
		crashed.Register(testKind, handler, nil)
		healthy.Register(testKind, handler, nil)
		id := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{}})

		// The first instance claims the job and dies before running it.
		claimed, err := crashed.claim(context.Background(), []string{id}, clk.Now())
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claim: %v %v", claimed, err)
		}
		if in := get(t, db, id); in.State != StateRunning || in.LeaseOwner != "crashed" || !in.LeaseUntil.Equal(epoch.Add(time.Minute)) {
			t.Fatalf("claimed job: %+v", in)
		}
		clk.Advance(time.Minute - time.Millisecond)
		if n := runDue(t, healthy); n != 0 {
			t.Fatalf("a leased job was taken before its lease expired")
		}
		clk.Advance(time.Millisecond)
		if n := runDue(t, healthy); n != 1 || fmt.Sprint(ran) != "[2]" {
			t.Fatalf("after lease expiry: ran %d, attempts %v", n, ran)
		}
		if in := get(t, db, id); in.State != StateCompleted || in.Attempt != 2 {
			t.Errorf("recovered job: %+v", in)
		}
		// The crashed worker comes back and reports a failure: fenced, nothing changes.
		crashed.finish(context.Background(), claimed[0], Schedule(time.Second), errors.New("late failure"), false)
		if in := get(t, db, id); in.State != StateCompleted || in.LastError != "" {
			t.Errorf("a stale worker overwrote the outcome: %+v", in)
		}

		// On the final attempt: a crash gives one more run, a second crash discards.
		last := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{}, MaxAttempts: 1})
		if _, err := crashed.claim(context.Background(), []string{last}, clk.Now()); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		again, err := crashed.claim(context.Background(), []string{last}, clk.Now())
		if err != nil || len(again) != 1 || again[0].Attempt != 2 || !again[0].Final() {
			t.Fatalf("rescue claim after the final attempt: %+v %v", again, err)
		}
		clk.Advance(time.Minute)
		if n := runDue(t, healthy); n != 0 {
			t.Errorf("a job past max_attempts+1 ran (%d)", n)
		}
		if in := get(t, db, last); in.State != StateDiscarded || !strings.Contains(in.LastError, "lease expired") {
			t.Errorf("dead job: %+v", in)
		}
	})
}

func TestRolledBackEnqueueNeverRuns(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clk := clock.NewFake(epoch)
		c := newClient(db, clk, "w1")
		var mu sync.Mutex
		ran := map[int]bool{}
		c.Register(testKind, func(ctx context.Context, j *Job) error {
			var p payload
			_ = j.Decode(&p)
			mu.Lock()
			ran[p.N] = true
			mu.Unlock()
			return nil
		}, nil)
		errRollback := errors.New("state change refused")
		// Concurrent writers, so on SQLite the rolled-back ones share a group
		// commit with the committed ones.
		var wg sync.WaitGroup
		for n := 0; n < 20; n++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := db.Write(context.Background(), func(tx *sql.Tx) error {
					if _, err := Enqueue(context.Background(), tx, clk.Now(), Job{Kind: testKind, Payload: payload{N: n}}); err != nil {
						return err
					}
					if n%2 == 1 {
						return errRollback
					}
					return nil
				})
				if (n%2 == 1) != errors.Is(err, errRollback) {
					t.Errorf("write %d: %v", n, err)
				}
			}()
		}
		wg.Wait()
		if got := countJobs(t, db); got != 10 {
			t.Errorf("%d jobs stored, want the 10 committed ones", got)
		}
		if n := runDue(t, c); n != 10 {
			t.Errorf("ran %d jobs, want 10", n)
		}
		for n := 0; n < 20; n++ {
			if ran[n] != (n%2 == 0) {
				t.Errorf("job %d ran=%v", n, ran[n])
			}
		}
	})
}

func TestUniqueKeyDeduplicates(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clk := clock.NewFake(epoch)
		c := newClient(db, clk, "w1")
		var runs atomic.Int32
		c.Register(testKind, func(ctx context.Context, j *Job) error { runs.Add(1); return nil }, nil)
		first := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{N: 1}, UniqueKey: "expire:ticket-1"})
		second := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{N: 2}, UniqueKey: "expire:ticket-1"})
		if first != second {
			t.Errorf("same unique key gave two jobs: %s %s", first, second)
		}
		var inTx [2]string
		err := db.Write(context.Background(), func(tx *sql.Tx) error {
			for i := range inTx {
				var err error
				if inTx[i], err = Enqueue(context.Background(), tx, clk.Now(), Job{Kind: testKind, Payload: payload{}, UniqueKey: "expire:ticket-2"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || inTx[0] != inTx[1] {
			t.Errorf("same key twice in one transaction: %v %v", inTx, err)
		}
		a := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{}})
		b := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{}})
		if a == b {
			t.Error("jobs without a unique key were de-duplicated")
		}
		if got := countJobs(t, db); got != 4 {
			t.Errorf("%d jobs, want 4", got)
		}
		if in := get(t, db, first); in.UniqueKey != "expire:ticket-1" || string(in.Payload) != `{"n":1,"name":""}` {
			t.Errorf("the first job was not kept as enqueued: %+v", in)
		}
		runDue(t, c)
		if runs.Load() != 4 {
			t.Errorf("ran %d", runs.Load())
		}
		// Finished jobs keep their key until pruned.
		if again := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{}, UniqueKey: "expire:ticket-1"}); again != first {
			t.Errorf("a completed job's key was reusable before pruning")
		}
		clk.Advance(time.Hour)
		if n, err := c.Prune(context.Background(), clk.Now()); err != nil || n != 4 {
			t.Fatalf("prune: %d %v", n, err)
		}
		if again := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{}, UniqueKey: "expire:ticket-1"}); again == first {
			t.Errorf("key still taken after pruning")
		}
	})
}

func TestRetryRequeues(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clk := clock.NewFake(epoch)
		c := newClient(db, clk, "w1")
		fail := true
		c.Register(testKind, func(ctx context.Context, j *Job) error {
			if fail {
				return errors.New("down")
			}
			return nil
		}, Schedule(time.Hour))
		retry := func(id string) error {
			return db.Write(context.Background(), func(tx *sql.Tx) error { return Retry(context.Background(), tx, clk.Now(), id) })
		}
		waiting := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{}, MaxAttempts: 3})
		exhausted := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{}, MaxAttempts: 1})
		runDue(t, c)
		if s := get(t, db, exhausted).State; s != StateDiscarded {
			t.Fatalf("state %s", s)
		}
		if err := retry(waiting); err != nil {
			t.Fatal(err)
		}
		if err := retry(exhausted); err != nil {
			t.Fatal(err)
		}
		if in := get(t, db, waiting); in.State != StateAvailable || !in.RunAt.Equal(clk.Now()) || in.MaxAttempts != 3 {
			t.Errorf("waiting job after Retry: %+v", in)
		}
		if in := get(t, db, exhausted); in.State != StateAvailable || in.MaxAttempts != 2 || !in.FinishedAt.IsZero() {
			t.Errorf("discarded job after Retry: %+v", in)
		}
		fail = false
		if n := runDue(t, c); n != 2 {
			t.Errorf("ran %d after Retry, want 2 without advancing the clock", n)
		}
		if in := get(t, db, exhausted); in.State != StateCompleted || in.Attempt != 2 {
			t.Errorf("retried job: %+v", in)
		}
		if err := retry("no-such-job"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown job: %v", err)
		}
		running := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{}})
		if _, err := c.claim(context.Background(), []string{running}, clk.Now()); err != nil {
			t.Fatal(err)
		}
		if err := retry(running); !errors.Is(err, ErrRunning) {
			t.Errorf("running job: %v", err)
		}
	})
}

func TestGracefulStop(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clk := clock.NewFake(epoch)
		c := newClient(db, clk, "w1")
		started := make(chan string, 10)
		release := make(chan struct{})
		c.Register(testKind, func(ctx context.Context, j *Job) error {
			started <- j.ID
			<-release
			return nil
		}, nil)
		id := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{}})
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-started:
			if got != id {
				t.Fatalf("started %s", got)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("job never started")
		}
		stopped := make(chan error, 1)
		go func() { stopped <- c.Stop(context.Background()) }()
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned while a job was running: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		// No new work is claimed while stopping.
		late := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{}})
		time.Sleep(50 * time.Millisecond)
		close(release)
		if err := <-stopped; err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if s := get(t, db, id).State; s != StateCompleted {
			t.Errorf("running job after graceful stop: %s", s)
		}
		if s := get(t, db, late).State; s != StateAvailable {
			t.Errorf("job enqueued during stop: %s, want still available", s)
		}
		if len(started) != 0 {
			t.Errorf("a job started after Stop")
		}
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("second Stop: %v", err)
		}
	})
}

func TestForcedStopReleasesJob(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clk := clock.NewFake(epoch)
		c := newClient(db, clk, "w1")
		started := make(chan struct{}, 1)
		c.Register(testKind, func(ctx context.Context, j *Job) error {
			started <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		}, nil)
		id := enqueue(t, db, clk.Now(), Job{Kind: testKind, Payload: payload{}})
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := c.Stop(ctx); err == nil {
			t.Error("Stop with an expired context reported a clean stop")
		}
		in := get(t, db, id)
		if in.State != StateAvailable || in.Attempt != 0 || !strings.Contains(in.LastError, "interrupted") || in.LeaseOwner != "" {
			t.Errorf("interrupted job: %+v", in)
		}
	})
}

// Package loadgen is the load generator shared by the bench programs that
// measure Ponte against a bare baseline handler in the same run (consentrun,
// datarun, journeyrun, pcmrun). The programs differ in what they send; how
// they send it, time it and summarise it must not differ, or their figures
// would not compare. Keeping one copy here keeps them in step.
//
// Two kinds of phase:
//
//   - [ClosedLoop]: a fixed number of workers, each sending its next request
//     as soon as the previous answer arrives, for a warm-up plus a measured
//     duration: peak throughput (its latency is mostly queueing);
//   - [OpenLoop]: requests due at a constant rate whatever the server does,
//     latency measured from each request's due time (no coordinated
//     omission): latency at a given load.
package loadgen

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Closed describes a closed-loop phase.
type Closed struct {
	Name    string        // printed in the progress line and kept in the Result
	Workers int           // concurrent workers, and the client's connections per host
	Warmup  time.Duration // run first, not measured
	Dur     time.Duration // measured
	Status  int           // the status that counts as an answer (200, 201); any other is counted apart
	Width   int           // width of the name column in the progress line
	Out     io.Writer     // where the progress line goes; nil: standard output (a -json run keeps it clean)
}

// Next returns a worker's next request, built with ctx, and, if the caller
// wants the body of a successful answer, a function to hand it to. A nil
// request ends that worker's loop (for example when prepared bodies run out).
//
// With a nil onOK the body is discarded unread into io.Discard; with one, the
// body is read whole, as any client that uses it would, whatever the status.
type Next func(ctx context.Context) (req *http.Request, onOK func(body []byte))

// Result is what a closed-loop phase measured.
type Result struct {
	Name     string
	OK       int           // answers with the wanted status, sent after the warm-up
	Other    int           // answers with any other status
	Errs     int           // transport errors
	Rate     float64       // OK per second of Elapsed
	Elapsed  time.Duration // the measured window (at most Dur; shorter if stopped early)
	P50, P99 time.Duration // of the OK answers' latencies
}

// ClosedLoop runs c.Workers workers for c.Warmup + c.Dur, each sending the
// requests next returns, and measures the answers to requests sent during
// the last c.Dur. Its progress line is printed when it ends.
//
// Latency runs from just before next is called to the end of the body. P50
// and P99 index the sorted latencies at len/2 and len*99/100, as the figures
// recorded so far were computed.
func ClosedLoop(ctx context.Context, c Closed, next Next) Result {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.Workers, MaxConnsPerHost: c.Workers}}
	start := time.Now()
	measureFrom, end := start.Add(c.Warmup), start.Add(c.Warmup+c.Dur)
	var (
		mu              sync.Mutex
		lat             []time.Duration
		ok, other, errs int
		wg              sync.WaitGroup
	)
	for range c.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var myOK, myOther, myErrs int
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				req, onOK := next(ctx)
				if req == nil {
					break
				}
				resp, err := client.Do(req)
				measured := !t0.Before(measureFrom)
				if err != nil {
					if measured {
						myErrs++
					}
					continue
				}
				if onOK != nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == c.Status {
						onOK(body)
					}
				} else {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if !measured {
					continue
				}
				if resp.StatusCode == c.Status {
					myOK++
					mine = append(mine, time.Since(t0))
				} else {
					myOther++
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			ok, other, errs = ok+myOK, other+myOther, errs+myErrs
			mu.Unlock()
		}()
	}
	wg.Wait()
	client.CloseIdleConnections()
	elapsed := min(time.Since(measureFrom), c.Dur)
	slices.Sort(lat)
	r := Result{Name: c.Name, OK: ok, Other: other, Errs: errs, Rate: float64(ok) / elapsed.Seconds(), Elapsed: elapsed}
	if len(lat) > 0 {
		r.P50, r.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	out := c.Out
	if out == nil {
		out = os.Stdout
	}
	fmt.Fprintf(out, "  %-*s %7d × %d in %s\n", c.Width, c.Name, ok, c.Status, elapsed.Round(time.Millisecond))
	return r
}

// Table prints closed-loop results as the bench programs print them: rate,
// ratio to a baseline's rate, p50, p99, other statuses and errors, one row a
// phase, so that tables from different programs read alike.
type Table struct {
	Width  int // width of the name column
	Status int // the wanted status, named in the column heads
}

// Header prints the column heads.
func (t Table) Header() {
	fmt.Printf("%-*s %10s %8s %9s %9s %7s %7s\n", t.Width, "", fmt.Sprintf("%d/s", t.Status), "ratio", "p50", "p99",
		fmt.Sprintf("non-%d", t.Status), "errors")
}

// Row prints r, its ratio to baseRate and its latencies (to 10 µs).
func (t Table) Row(r Result, baseRate float64) {
	fmt.Printf("%-*s %10.0f %8.3f %9s %9s %7d %7d\n", t.Width, r.Name, r.Rate, r.Rate/baseRate,
		r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Other, r.Errs)
}

// Open describes an open-loop phase.
type Open struct {
	Name    string        // printed in the progress line
	Rate    float64       // requests due per second
	Workers int           // most requests in flight, and the client's connections per host
	Warmup  time.Duration // slots due during it are sent but not kept
	Dur     time.Duration // slots due during it are kept
	Width   int           // width of the name column in the progress line
}

// Sample is one open-loop request.
type Sample struct {
	Status int           // 0: transport error, or the body could not be read
	Lat    time.Duration // from the scheduled send time to the end of the body
	Lag    time.Duration // how late the generator sent it
}

// OpenLoop offers requests at a constant rate, whatever the server does: slot
// i is due at begin + i/rate. Latency is measured from the slot's due time,
// not from when a worker got round to sending it, so a stalled server is
// charged for every request that queued behind the stall (no coordinated
// omission). Slots due during warm-up are not kept. A request still running
// 10 s after the last slot is due is cut off. newReq builds each request
// with the phase's context; bodies are discarded.
func OpenLoop(ctx context.Context, o Open, newReq func(ctx context.Context) *http.Request) []Sample {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Workers, MaxConnsPerHost: o.Workers}}
	defer client.CloseIdleConnections()
	interval := time.Duration(float64(time.Second) / o.Rate)
	total := int64((o.Warmup + o.Dur) / interval)
	begin := time.Now().Add(20 * time.Millisecond) // let every worker reach its first slot
	warmEnd := begin.Add(o.Warmup)
	ctx, cancel := context.WithDeadline(ctx, begin.Add(o.Warmup+o.Dur+10*time.Second)) // bounds a stuck request
	defer cancel()
	var next atomic.Int64
	per := make([][]Sample, o.Workers)
	var wg sync.WaitGroup
	for w := range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out []Sample
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
				req := newReq(ctx)
				status := 0
				if resp, err := client.Do(req); err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil {
						status = resp.StatusCode
					}
				}
				lat := time.Since(due)
				if due.Before(warmEnd) {
					continue
				}
				out = append(out, Sample{Status: status, Lat: lat, Lag: sent.Sub(due)})
			}
		}()
	}
	wg.Wait()
	all := slices.Concat(per...)
	fmt.Printf("  %-*s %7d requests due in %s (open loop)\n", o.Width, o.Name, len(all), o.Dur)
	return all
}

// Summarize sorts the samples' latencies (errors count too: a timeout is a
// slow answer) and the generator's lags, and counts the answers with status
// want, with other statuses, and the errors.
func Summarize(s []Sample, want int) (lat, lag []time.Duration, ok, other, errs int) {
	for _, x := range s {
		lat, lag = append(lat, x.Lat), append(lag, x.Lag)
		switch x.Status {
		case want:
			ok++
		case 0:
			errs++
		default:
			other++
		}
	}
	slices.Sort(lat)
	slices.Sort(lag)
	return lat, lag, ok, other, errs
}

// Percentile is the nearest-rank percentile p (0 to 1) of sorted durations:
// the smallest value at least a fraction p of them do not exceed, so p99 of
// 100 samples is the 99th, and 1 is the maximum. It is 0 for no durations.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Median is the median of v (the mean of the middle two for an even count),
// for the ratios and latencies of several rounds: on a shared machine the
// median of rounds is steadier than any one round. v is not modified; it must
// not be empty.
func Median[T ~float64 | ~int64](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Met is how the programs report a target: "met" or "NOT met".
func Met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

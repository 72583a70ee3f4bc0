package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 0.99, 0},
		{"one", []time.Duration{7}, 0.5, 7},
		{"p0 is the least", []time.Duration{1, 2, 3}, 0, 1},
		{"p50 of three", []time.Duration{1, 2, 3}, 0.5, 2},
		{"p50 of four is the lower middle", []time.Duration{1, 2, 3, 4}, 0.5, 2},
		{"max", []time.Duration{1, 2, 3}, 1, 3},
		{"p99 of 100 is the 99th", hundred, 0.99, 99 * time.Millisecond},
		{"p50 of 100 is the 50th", hundred, 0.50, 50 * time.Millisecond},
		{"p99 of 3 is the max", []time.Duration{1, 2, 3}, 0.99, 3},
	} {
		if got := Percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("%s: Percentile(%v, %v) = %v, want %v", tc.name, tc.sorted, tc.p, got, tc.want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    []float64
		want float64
	}{
		{"one", []float64{0.4}, 0.4},
		{"odd, unsorted", []float64{0.9, 0.1, 0.5}, 0.5},
		{"even: mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"repeats", []float64{1, 1, 2}, 1},
	} {
		in := slices.Clone(tc.v)
		if got := Median(tc.v); got != tc.want {
			t.Errorf("%s: Median(%v) = %v, want %v", tc.name, tc.v, got, tc.want)
		}
		if !slices.Equal(in, tc.v) {
			t.Errorf("%s: Median reordered its argument: %v", tc.name, tc.v)
		}
	}
	if got := Median([]time.Duration{3, 1, 4, 2}); got != 2 { // (2+3)/2, truncated as durations are
		t.Errorf("Median of durations = %v, want 2", got)
	}
}

func TestSummarize(t *testing.T) {
	s := []Sample{
		{Status: 200, Lat: 3, Lag: 1},
		{Status: 0, Lat: 9, Lag: 0},
		{Status: 503, Lat: 1, Lag: 2},
		{Status: 200, Lat: 2, Lag: 0},
	}
	lat, lag, ok, other, errs := Summarize(s, 200)
	if !slices.Equal(lat, []time.Duration{1, 2, 3, 9}) || !slices.Equal(lag, []time.Duration{0, 0, 1, 2}) {
		t.Errorf("lat %v, lag %v: want both sorted, errors included", lat, lag)
	}
	if ok != 2 || other != 1 || errs != 1 {
		t.Errorf("ok %d, other %d, errs %d: want 2, 1, 1", ok, other, errs)
	}
}

// TestClosedLoop checks the counting against a server that answers every
// third request with 503, and that a nil request ends a worker.
func TestClosedLoop(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	var sent, bodies int
	r := ClosedLoop(context.Background(), Closed{Name: "test", Workers: 1, Dur: 5 * time.Second, Status: http.StatusCreated, Width: 8},
		func(ctx context.Context) (*http.Request, func([]byte)) {
			if sent == 9 {
				return nil, nil
			}
			sent++
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			return req, func(b []byte) {
				if string(b) == "ok" {
					bodies++
				}
			}
		})
	if r.OK != 6 || r.Other != 3 || r.Errs != 0 || bodies != 6 {
		t.Errorf("OK %d, Other %d, Errs %d, bodies %d: want 6, 3, 0, 6", r.OK, r.Other, r.Errs, bodies)
	}
	if r.P50 <= 0 || r.P99 < r.P50 {
		t.Errorf("P50 %v, P99 %v", r.P50, r.P99)
	}
}

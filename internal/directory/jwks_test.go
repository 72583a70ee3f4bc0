package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/clock"
)

// jwksServer serves the set *set with the headers headers sets, counting
// the fetches.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int32
	mu      sync.Mutex
	set     jose.JSONWebKeySet
	status  int
	headers func(h http.Header)
}

func newJWKSServer(t *testing.T, set jose.JSONWebKeySet, headers func(http.Header)) *jwksServer {
	s := &jwksServer{set: set, status: http.StatusOK, headers: headers}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		set, status := s.set, s.status
		s.mu.Unlock()
		if s.headers != nil {
			s.headers(w.Header())
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(set jose.JSONWebKeySet, status int) {
	s.mu.Lock()
	s.set, s.status = set, status
	s.mu.Unlock()
}

func TestJWKSCacheHeaders(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	set := publicSet(key, "k1")
	for _, tc := range []struct {
		name    string
		headers func(clk *clock.Fake) func(http.Header)
		fresh   time.Duration // still served from the cache after this long
		stale   time.Duration // fetched again after this long
	}{
		{"max-age", func(*clock.Fake) func(http.Header) {
			return func(h http.Header) { h.Set("Cache-Control", "public, max-age=600") }
		}, 599 * time.Second, 600 * time.Second},
		{"max-age below the minimum", func(*clock.Fake) func(http.Header) {
			return func(h http.Header) { h.Set("Cache-Control", "max-age=5") }
		}, 59 * time.Second, time.Minute},
		{"max-age above the maximum", func(*clock.Fake) func(http.Header) {
			return func(h http.Header) { h.Set("Cache-Control", "max-age=31536000") }
		}, 24*time.Hour - time.Second, 24 * time.Hour},
		{"no-store", func(*clock.Fake) func(http.Header) {
			return func(h http.Header) { h.Set("Cache-Control", "no-store") }
		}, 59 * time.Second, time.Minute},
		{"Expires against Date", func(clk *clock.Fake) func(http.Header) {
			return func(h http.Header) {
				// The server's clock is an hour off; the lifetime is what counts.
				date := clk.Now().Add(time.Hour)
				h.Set("Date", date.Format(http.TimeFormat))
				h.Set("Expires", date.Add(20*time.Minute).Format(http.TimeFormat))
			}
		}, 20*time.Minute - time.Second, 20 * time.Minute},
		{"max-age wins over Expires", func(clk *clock.Fake) func(http.Header) {
			return func(h http.Header) {
				h.Set("Cache-Control", "max-age=120")
				h.Set("Expires", clk.Now().Add(time.Hour).Format(http.TimeFormat))
			}
		}, 119 * time.Second, 120 * time.Second},
		{"invalid Expires", func(*clock.Fake) func(http.Header) {
			return func(h http.Header) { h.Set("Expires", "0") }
		}, 59 * time.Second, time.Minute},
		{"nothing said", func(*clock.Fake) func(http.Header) { return func(http.Header) {} }, 10*time.Minute - time.Second, 10 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(epoch)
			srv := newJWKSServer(t, set, tc.headers(clk))
			c := NewJWKSCache(CacheOptions{Clock: clk})
			ctx := context.Background()
			get := func() {
				t.Helper()
				if _, err := c.Key(ctx, srv.URL, "k1"); err != nil {
					t.Fatal(err)
				}
			}
			get()
			clk.Advance(tc.fresh)
			get()
			if n := srv.fetches.Load(); n != 1 {
				t.Fatalf("after %s: %d fetches, want 1", tc.fresh, n)
			}
			clk.Advance(tc.stale - tc.fresh)
			get()
			if n := srv.fetches.Load(); n != 2 {
				t.Fatalf("after %s: %d fetches, want 2", tc.stale, n)
			}
		})
	}
}

// TestJWKSCacheUnknownKid: an unknown kid fetches the set again, at most
// once per refresh interval however many unknown kids arrive.
func TestJWKSCacheUnknownKid(t *testing.T) {
	t.Parallel()
	k1, k2 := newKey(t), newKey(t)
	clk := clock.NewFake(epoch)
	srv := newJWKSServer(t, publicSet(k1, "k1"), func(h http.Header) { h.Set("Cache-Control", "max-age=86400") })
	c := NewJWKSCache(CacheOptions{Clock: clk, RefreshInterval: time.Minute})
	ctx := context.Background()
	if _, err := c.Key(ctx, srv.URL, "k1"); err != nil {
		t.Fatal(err)
	}
	// A flood of made-up kids within the interval since the last fetch: no fetch.
	for i := range 100 {
		if _, err := c.Key(ctx, srv.URL, fmt.Sprintf("made-up-%d", i)); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("made-up kid: %v, want ErrKeyNotFound", err)
		}
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches after the flood within the interval, want 1", n)
	}
	// The Directory adds k2; once the interval passed, the unknown kid fetches once.
	both := publicSet(k1, "k1")
	both.Keys = append(both.Keys, publicSet(k2, "k2").Keys...)
	srv.serve(both, http.StatusOK)
	clk.Advance(time.Minute)
	if _, err := c.Key(ctx, srv.URL, "k2"); err != nil {
		t.Fatalf("k2 after the interval: %v", err)
	}
	for i := range 100 {
		_, _ = c.Key(ctx, srv.URL, fmt.Sprintf("other-%d", i))
	}
	if _, err := c.Key(ctx, srv.URL, "k1"); err != nil {
		t.Fatal(err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

// TestJWKSCacheFailure: a failing URL is retried at most once per interval,
// and the last good set keeps serving meanwhile.
func TestJWKSCacheFailure(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	clk := clock.NewFake(epoch)
	srv := newJWKSServer(t, publicSet(key, "k1"), func(h http.Header) { h.Set("Cache-Control", "max-age=60") })
	c := NewJWKSCache(CacheOptions{Clock: clk})
	ctx := context.Background()
	if _, err := c.Key(ctx, srv.URL, "k1"); err != nil {
		t.Fatal(err)
	}
	srv.serve(jose.JSONWebKeySet{}, http.StatusInternalServerError)
	clk.Advance(2 * time.Minute) // stale
	for range 3 {
		if _, err := c.Key(ctx, srv.URL, "k1"); err != nil {
			t.Fatalf("with the URL failing, the last good set: %v", err)
		}
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (one failed refresh, then rate-limited)", n)
	}

	// Never fetched successfully: the error, and the same rate limit.
	down := newJWKSServer(t, jose.JSONWebKeySet{}, nil)
	down.serve(jose.JSONWebKeySet{}, http.StatusNotFound)
	for range 3 {
		if _, err := c.Key(ctx, down.URL, "k1"); err == nil || errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("down URL: %v, want the fetch error", err)
		}
	}
	if n := down.fetches.Load(); n != 1 {
		t.Fatalf("down URL fetched %d times, want 1", n)
	}
}

func TestJWKSCacheBounds(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	clk := clock.NewFake(epoch)
	srv := newJWKSServer(t, publicSet(key, "k1"), nil)
	c := NewJWKSCache(CacheOptions{Clock: clk, MaxURLs: 3})
	ctx := context.Background()
	for i := range 5 {
		clk.Advance(time.Second)
		if _, err := c.Key(ctx, fmt.Sprintf("%s/%d", srv.URL, i), "k1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n != 3 {
		t.Fatalf("cache holds %d URLs, want 3", n)
	}
	// The most recent URL is still cached, the oldest was forgotten.
	before := srv.fetches.Load()
	_, _ = c.Key(ctx, srv.URL+"/4", "k1")
	if srv.fetches.Load() != before {
		t.Fatal("the most recent URL was fetched again")
	}
	_, _ = c.Key(ctx, srv.URL+"/0", "k1")
	if srv.fetches.Load() != before+1 {
		t.Fatal("the oldest URL was still cached")
	}

	big := NewJWKSCache(CacheOptions{Clock: clk, MaxBytes: 100})
	if _, err := big.Keys(ctx, srv.URL); err == nil {
		t.Fatal("a set larger than MaxBytes was accepted")
	}
}

// TestJWKSCacheConcurrent: many callers at once on a cold cache cause one
// fetch (run with -race).
func TestJWKSCacheConcurrent(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	srv := newJWKSServer(t, publicSet(key, "k1"), nil)
	c := NewJWKSCache(CacheOptions{Clock: clock.NewFake(epoch)})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Key(context.Background(), srv.URL, "k1"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

func TestLoadKeysFile(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	dir := t.TempDir()
	// A private JWK in the file: only its public half is kept.
	private := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key, KeyID: "k1", Algorithm: "PS256", Use: "sig"}}}
	b, _ := json.Marshal(private)
	path := filepath.Join(dir, "directory.jwks")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := LoadKeys(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := src.Key(context.Background(), "k1")
	if err != nil || !k.IsPublic() {
		t.Fatalf("Key = %v, %v; want the public key", k, err)
	}
	if _, err := src.Key(context.Background(), "k2"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unknown kid: %v", err)
	}
	for name, content := range map[string]string{"empty.jwks": `{"keys":[]}`, "bad.jwks": `not json`} {
		p := filepath.Join(dir, name)
		_ = os.WriteFile(p, []byte(content), 0o600)
		if _, err := LoadKeys(p, nil); err == nil {
			t.Errorf("LoadKeys(%s) accepted %q", name, content)
		}
	}
	if _, err := LoadKeys(filepath.Join(dir, "missing"), nil); err == nil {
		t.Error("a missing file was accepted")
	}
}

// FuzzParseJWKS: whatever a URL answers, parsing never panics and keeps no
// private key material.
func FuzzParseJWKS(f *testing.F) {
	key := newKey(f)
	private, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key, KeyID: "k1"}}})
	public, _ := json.Marshal(publicSet(key, "k1"))
	f.Add(private)
	f.Add(public)
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA","kid":"s"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA"}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		set, err := ParseJWKS(b)
		if err != nil {
			return
		}
		for _, k := range set.Keys {
			if !k.IsPublic() {
				t.Fatalf("kept a non-public key %+v from %s", k, b)
			}
		}
	})
}

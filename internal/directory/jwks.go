package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/clock"
)

// CacheOptions bound a JWKSCache. Zero values take the defaults named.
type CacheOptions struct {
	// Client fetches the sets (default: a client with a 10 s timeout). Give
	// one with an SSRF guard when the URLs come from clients.
	Client *http.Client
	Clock  clock.Clock // default clock.System
	// MinTTL and MaxTTL bound how long a fetched set is used, whatever its
	// Cache-Control or Expires says (defaults 1 minute and 24 hours);
	// DefaultTTL is for answers that say nothing (default 10 minutes).
	MinTTL, MaxTTL, DefaultTTL time.Duration
	// RefreshInterval is the least time between two fetches of one URL
	// caused by unknown key ids or failures (default 1 minute), so a flood
	// of made-up kids cannot hammer the URL.
	RefreshInterval time.Duration
	// MaxURLs bounds the URLs remembered (default 1,000; the least recently
	// used is forgotten first). MaxBytes bounds one answer (default 256 KiB).
	MaxURLs  int
	MaxBytes int64
}

// JWKSCache fetches JSON Web Key Sets by URL and keeps them as long as their
// HTTP cache headers say, within bounds. A key id missing from a cached set
// fetches the set again, at most once per RefreshInterval; when a fetch
// fails the last good set keeps serving. Safe for concurrent use: one fetch
// per URL at a time, the others wait for its answer.
type JWKSCache struct {
	opts CacheOptions

	mu      sync.Mutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	fetch sync.Mutex // held while fetching this URL

	// Guarded by JWKSCache.mu.
	set       *jose.JSONWebKeySet
	expires   time.Time // the set is fresh until then
	attempted time.Time // the last fetch, successful or not
	lastErr   error
	used      time.Time
}

// NewJWKSCache returns an empty cache.
func NewJWKSCache(opts CacheOptions) *JWKSCache {
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.MinTTL <= 0 {
		opts.MinTTL = time.Minute
	}
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = 24 * time.Hour
	}
	if opts.DefaultTTL <= 0 {
		opts.DefaultTTL = 10 * time.Minute
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = time.Minute
	}
	if opts.MaxURLs <= 0 {
		opts.MaxURLs = 1000
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 256 << 10
	}
	return &JWKSCache{opts: opts, entries: map[string]*cacheEntry{}}
}

// Keys returns the set at url, from the cache while it is fresh.
func (c *JWKSCache) Keys(ctx context.Context, url string) (jose.JSONWebKeySet, error) {
	set, err := c.get(ctx, url, "")
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	return *set, nil
}

// Key returns the key with id kid of the set at url. An unknown kid fetches
// the set again unless it was fetched less than RefreshInterval ago; still
// unknown, it is ErrKeyNotFound.
func (c *JWKSCache) Key(ctx context.Context, url, kid string) (*jose.JSONWebKey, error) {
	set, err := c.get(ctx, url, kid)
	if err != nil {
		return nil, err
	}
	if k := findKey(set, kid); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: %q at %s", ErrKeyNotFound, kid, url)
}

// Source is the KeySource of the set at url.
func (c *JWKSCache) Source(url string) KeySource { return urlSource{c, url} }

type urlSource struct {
	cache *JWKSCache
	url   string
}

func (s urlSource) Key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	return s.cache.Key(ctx, s.url, kid)
}

// get returns the set at url, fetching it when it is missing or stale, or
// when it lacks kid (kid "" wants no particular key).
func (c *JWKSCache) get(ctx context.Context, url, kid string) (*jose.JSONWebKeySet, error) {
	e := c.entry(url)
	if set, ok := c.usable(e, kid, false); ok {
		return set, nil
	}
	e.fetch.Lock()
	defer e.fetch.Unlock()
	// Another caller may have fetched while this one waited.
	if set, ok := c.usable(e, kid, false); ok {
		return set, nil
	}
	c.mu.Lock()
	limited := !e.attempted.IsZero() && c.opts.Clock.Now().Sub(e.attempted) < c.opts.RefreshInterval
	c.mu.Unlock()
	if limited {
		if set, ok := c.usable(e, kid, true); ok {
			return set, nil
		}
		c.mu.Lock()
		set, lastErr := e.set, e.lastErr
		c.mu.Unlock()
		if set != nil {
			return set, nil // the caller finds kid missing
		}
		return nil, lastErr
	}
	set, ttl, err := c.fetch(ctx, url)
	now := c.opts.Clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e.attempted = now
	if err != nil {
		e.lastErr = err
		if e.set != nil {
			return e.set, nil // the last good set, until the URL answers again
		}
		return nil, err
	}
	e.set, e.expires, e.lastErr = set, now.Add(ttl), nil
	return set, nil
}

// usable returns e's set when it is fresh (or stale is allowed) and holds
// kid (or kid is "").
func (c *JWKSCache) usable(e *cacheEntry, kid string, stale bool) (*jose.JSONWebKeySet, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.set == nil || (!stale && !c.opts.Clock.Now().Before(e.expires)) {
		return nil, false
	}
	if kid != "" && findKey(e.set, kid) == nil {
		return nil, false
	}
	return e.set, true
}

// entry returns url's entry, creating it and forgetting the least recently
// used one beyond MaxURLs.
func (c *JWKSCache) entry(url string) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Clock.Now()
	e, ok := c.entries[url]
	if !ok {
		if len(c.entries) >= c.opts.MaxURLs {
			var oldest string
			for u, o := range c.entries {
				if oldest == "" || o.used.Before(c.entries[oldest].used) {
					oldest = u
				}
			}
			delete(c.entries, oldest)
		}
		e = &cacheEntry{}
		c.entries[url] = e
	}
	e.used = now
	return e
}

// Len is the number of URLs the cache remembers.
func (c *JWKSCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *JWKSCache) fetch(ctx context.Context, url string) (*jose.JSONWebKeySet, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("directory: jwks %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := c.opts.Client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("directory: fetch jwks %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("directory: fetch jwks %s: status %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("directory: read jwks %s: %w", url, err)
	}
	if int64(len(body)) > c.opts.MaxBytes {
		return nil, 0, fmt.Errorf("directory: jwks %s is larger than %d bytes", url, c.opts.MaxBytes)
	}
	set, err := ParseJWKS(body)
	if err != nil {
		return nil, 0, fmt.Errorf("directory: jwks %s: %w", url, err)
	}
	return set, c.ttl(resp.Header), nil
}

// ttl is how long an answer with header h stays fresh: Cache-Control
// max-age, else Expires against Date (or the clock), else DefaultTTL;
// no-store and no-cache mean as short as allowed; always within
// [MinTTL, MaxTTL].
func (c *JWKSCache) ttl(h http.Header) time.Duration {
	ttl, known := c.opts.DefaultTTL, false
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			return c.opts.MinTTL
		case "max-age":
			if n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64); err == nil && n >= 0 {
				ttl, known = time.Duration(min(n, int64(c.opts.MaxTTL/time.Second)+1))*time.Second, true
			}
		}
	}
	if !known && h.Get("Expires") != "" {
		ttl = 0 // an invalid Expires means already expired (RFC 9111 §5.3)
		if exp, err := http.ParseTime(h.Get("Expires")); err == nil {
			now := c.opts.Clock.Now()
			if date, err := http.ParseTime(h.Get("Date")); err == nil {
				now = date
			}
			ttl = exp.Sub(now)
		}
	}
	return min(max(ttl, c.opts.MinTTL), c.opts.MaxTTL)
}

// ParseJWKS decodes a JSON Web Key Set and keeps only public keys: the
// public half of a private key that should not have been published, and
// nothing of a symmetric key, which has none.
func ParseJWKS(b []byte) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	keys := set.Keys[:0]
	for _, k := range set.Keys {
		if !k.IsPublic() {
			if k = k.Public(); k.Key == nil {
				continue
			}
		}
		keys = append(keys, k)
	}
	set.Keys = keys
	return &set, nil
}

func findKey(set *jose.JSONWebKeySet, kid string) *jose.JSONWebKey {
	for i := range set.Keys {
		if set.Keys[i].KeyID == kid {
			return &set.Keys[i]
		}
	}
	return nil
}

// StaticKeys is a KeySource over a fixed set: a JWKS file, or the sandbox
// Directory's own keys.
type StaticKeys jose.JSONWebKeySet

// Key implements KeySource.
func (s StaticKeys) Key(_ context.Context, kid string) (*jose.JSONWebKey, error) {
	set := jose.JSONWebKeySet(s)
	if k := findKey(&set, kid); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrKeyNotFound, kid)
}

// LoadKeys returns the KeySource at location: an http(s) URL is fetched
// through cache, anything else is read as a JWKS file now.
func LoadKeys(location string, cache *JWKSCache) (KeySource, error) {
	if strings.HasPrefix(location, "https://") || strings.HasPrefix(location, "http://") {
		return cache.Source(location), nil
	}
	b, err := os.ReadFile(location)
	if err != nil {
		return nil, fmt.Errorf("directory: keys: %w", err)
	}
	set, err := ParseJWKS(b)
	if err != nil {
		return nil, fmt.Errorf("directory: keys %s: %w", location, err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("directory: keys " + location + " holds no key")
	}
	return StaticKeys(*set), nil
}

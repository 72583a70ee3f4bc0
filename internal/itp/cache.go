package itp

import (
	"context"
	"sync"
	"time"
)

// configTTL bounds how long a journey, a brand or an application setting
// read for CreateSession may be reused. Changes made through this Service
// (CreateJourney, DisableBrand, SetApplicationSetting, SetDefaultJourney)
// clear the cache at once; changes made by another process (the CLI,
// another instance) are seen within configTTL, like the enabled-application
// cache of token verification (auth's activeTTL). Reading the three on every
// create was a quarter of the create path's database work.
//
// Only CreateSession uses the cache: Journey, Brand, Brands and
// ApplicationSetting always read the database. On PostgreSQL CreateSession
// also caches the calling application, but its insert checks the
// application's row in the same statement, so that entry is never seen
// stale: a disabled application or changed redirect URLs apply at once.
const configTTL = 2 * time.Second

type cacheEntry[T any] struct {
	v  T
	at time.Time
}

// configCache holds what CreateSession reads of the configuration. Its zero
// value is ready to use.
type configCache struct {
	mu       sync.Mutex
	gen      uint64 // bumped by forget: a read begun before it is not stored
	journeys map[string]cacheEntry[*Journey]
	brands   map[string]cacheEntry[*Brand]
	settings map[[2]string]cacheEntry[settingValue]
	// apps holds enabled applications by client_id for CreateSession on
	// PostgreSQL, which writes only if the application's row still says
	// what was cached (see createPostgres): a stale entry costs a fresh
	// read, never a wrong answer.
	apps map[string]cacheEntry[*Application]
}

type settingValue struct {
	value string
	ok    bool
}

func (c *configCache) forget() {
	c.mu.Lock()
	c.gen++
	clear(c.journeys)
	clear(c.brands)
	clear(c.settings)
	clear(c.apps)
	c.mu.Unlock()
}

// cachedApplication returns the application cached for clientID less than
// configTTL before now, if any.
func (c *configCache) cachedApplication(clientID string, now time.Time) (*Application, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.apps[clientID]
	if !ok || now.Sub(e.at) >= configTTL || now.Before(e.at) {
		return nil, false
	}
	return e.v, true
}

// rememberApplication caches app, read at now, for clientID.
func (c *configCache) rememberApplication(clientID string, app *Application, now time.Time) {
	c.mu.Lock()
	if c.apps == nil {
		c.apps = map[string]cacheEntry[*Application]{}
	}
	c.apps[clientID] = cacheEntry[*Application]{v: app, at: now}
	c.mu.Unlock()
}

// forgetApplication drops clientID's cached application.
func (c *configCache) forgetApplication(clientID string) {
	c.mu.Lock()
	delete(c.apps, clientID)
	c.mu.Unlock()
}

// cachedRead returns m[key] if it was read less than configTTL before now,
// else calls read and, when it succeeds and nothing was forgotten meanwhile,
// remembers its result.
func cachedRead[K comparable, T any](c *configCache, m *map[K]cacheEntry[T], key K, now time.Time, read func() (T, error)) (T, error) {
	c.mu.Lock()
	e, ok := (*m)[key]
	gen := c.gen
	c.mu.Unlock()
	if ok && now.Sub(e.at) < configTTL && !now.Before(e.at) {
		return e.v, nil
	}
	v, err := read()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if *m == nil {
			*m = map[K]cacheEntry[T]{}
		}
		(*m)[key] = cacheEntry[T]{v: v, at: now}
	}
	c.mu.Unlock()
	return v, nil
}

// cachedJourney is Journey through the cache. The journey returned is shared:
// callers must not modify it.
func (s *Service) cachedJourney(ctx context.Context, idOrAlias string) (*Journey, error) {
	return cachedRead(&s.cache, &s.cache.journeys, idOrAlias, s.Clock.Now(), func() (*Journey, error) { return s.Journey(ctx, idOrAlias) })
}

// cachedBrand is Brand through the cache (shared: do not modify).
func (s *Service) cachedBrand(ctx context.Context, id string) (*Brand, error) {
	return cachedRead(&s.cache, &s.cache.brands, id, s.Clock.Now(), func() (*Brand, error) { return s.Brand(ctx, id) })
}

// cachedSetting is ApplicationSetting through the cache; an unset setting is
// remembered as unset.
func (s *Service) cachedSetting(ctx context.Context, applicationID, key string) (string, bool, error) {
	v, err := cachedRead(&s.cache, &s.cache.settings, [2]string{applicationID, key}, s.Clock.Now(), func() (settingValue, error) {
		value, ok, err := s.ApplicationSetting(ctx, applicationID, key)
		return settingValue{value, ok}, err
	})
	return v.value, v.ok, err
}

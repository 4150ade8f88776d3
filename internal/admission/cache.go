package admission

// The bounded caches: verified trust data per repository (and pinning),
// and cosign verdicts and tag resolutions per image. Entries expire after
// a TTL; trust data older than its TTL is still used, up to a maximum age,
// when the trust server cannot be reached.

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/policy"
)

// lru is a map bounded to max entries, dropping the least recently used.
// Not safe for concurrent use.
type lru[V any] struct {
	max int
	ll  *list.List
	m   map[string]*list.Element
}

type lruItem[V any] struct {
	key string
	val V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, ll: list.New(), m: map[string]*list.Element{}}
}

func (c *lru[V]) get(key string) (V, bool) {
	if el, ok := c.m[key]; ok {
		c.ll.MoveToFront(el)
		return el.Value.(*lruItem[V]).val, true
	}
	var zero V
	return zero, false
}

func (c *lru[V]) put(key string, v V) {
	if el, ok := c.m[key]; ok {
		el.Value.(*lruItem[V]).val = v
		c.ll.MoveToFront(el)
		return
	}
	c.m[key] = c.ll.PushFront(&lruItem[V]{key: key, val: v})
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*lruItem[V]).key)
	}
}

func (c *lru[V]) len() int { return c.ll.Len() }

// memCache is the client.Cache of one repository: the verified metadata
// the reader keeps between updates (so the root it trusts and the versions
// it has seen carry over, as in a trust directory).
type memCache struct {
	mu    sync.Mutex
	files map[string][]byte
}

func (m *memCache) Get(role string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.files[role], nil
}

func (m *memCache) Put(role string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.files == nil {
		m.files = map[string][]byte{}
	}
	m.files[role] = data
	return nil
}

// trustState is what a trust entry knows at one moment.
type trustState struct {
	view     *policy.View
	fetched  time.Time
	failErr  error
	failedAt time.Time
}

// trustEntry is one repository under one pinning.
type trustEntry struct {
	gun   string
	host  string // the image's registry, whose credentials the trust server's token service gets
	state atomic.Pointer[trustState]
	sem   chan struct{} // one fetch at a time
	mem   *memCache
	hc    *http.Client // keeps the trust server's token for this GUN
}

// trustCache holds verified trust data per repository.
type trustCache struct {
	mu       sync.Mutex
	entries  *lru[*trustEntry]
	ttl      time.Duration
	maxStale time.Duration
	failTTL  time.Duration
	now      func() time.Time
	// fetch updates and verifies a repository.
	fetch func(ctx context.Context, e *trustEntry, d *dctRule) (*policy.View, error)
	// fetched is called after every fetch with its outcome.
	fetched func(err error, d time.Duration)
}

// staleInfo reports trust data used past its TTL because the trust
// server could not be reached: a decision takes it as a warning.
type staleInfo struct {
	age time.Duration
	err error
}

func (s *staleInfo) warning(gun string) string {
	return fmt.Sprintf("trust data of %s is %v old: the trust server could not be reached (%v)", gun, s.age.Round(time.Second), s.err)
}

func (c *trustCache) entry(host, gun string, d *dctRule) *trustEntry {
	key := d.pinKey + "|" + gun
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries.get(key)
	if !ok {
		e = &trustEntry{gun: gun, host: host, sem: make(chan struct{}, 1), mem: &memCache{}}
		e.state.Store(&trustState{})
		c.entries.put(key, e)
	}
	return e
}

func (c *trustCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries.len()
}

// view returns the verified trust data of gun under the rule's pinning:
// cached within its TTL, else fetched (one fetch per repository at a
// time), else — when the fetch fails — the cached data within the maximum
// age, with a staleInfo.
func (c *trustCache) view(ctx context.Context, host, gun string, d *dctRule) (*policy.View, *staleInfo, error) {
	e := c.entry(host, gun, d)
	if v, st, err, done := c.cached(e); done {
		return v, st, err
	}
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("waiting for the trust data of %s: %w", gun, ctx.Err())
	}
	defer func() { <-e.sem }()
	if v, st, err, done := c.cached(e); done {
		return v, st, err
	}
	start := c.now()
	v, err := c.fetch(ctx, e, d)
	if c.fetched != nil {
		c.fetched(err, c.now().Sub(start))
	}
	now := c.now()
	old := e.state.Load()
	if err == nil {
		e.state.Store(&trustState{view: v, fetched: now})
		return v, nil, nil
	}
	if errors.Is(err, client.ErrNoTrustData) {
		err = policy.NoRepository(gun)
		e.state.Store(&trustState{failErr: err, failedAt: now}) // gone: nothing stale to fall back on
		return nil, nil, err
	}
	if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		e.state.Store(&trustState{view: old.view, fetched: old.fetched, failErr: err, failedAt: now})
	}
	return c.stale(old, now, err)
}

// cached answers from the entry's state when no fetch is due.
func (c *trustCache) cached(e *trustEntry) (*policy.View, *staleInfo, error, bool) {
	s := e.state.Load()
	now := c.now()
	if s.view != nil && now.Sub(s.fetched) < c.ttl {
		return s.view, nil, nil, true
	}
	if s.failErr != nil && now.Sub(s.failedAt) < c.failTTL {
		v, st, err := c.stale(s, now, s.failErr)
		return v, st, err, true
	}
	return nil, nil, nil, false
}

// stale falls back on cached data within the maximum age.
func (c *trustCache) stale(s *trustState, now time.Time, err error) (*policy.View, *staleInfo, error) {
	var pe *policy.Error
	if errors.As(err, &pe) {
		return nil, nil, err
	}
	if s.view != nil && c.maxStale > 0 && now.Sub(s.fetched) <= c.maxStale {
		return s.view, &staleInfo{age: now.Sub(s.fetched), err: err}, nil
	}
	return nil, nil, &unreachableError{err: err}
}

// unreachableError is trust data that could not be had: the trust server
// is down, slow, or sends what does not verify.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string {
	return fmt.Sprintf("no verified trust data: %v", e.err)
}
func (e *unreachableError) Unwrap() error { return e.err }

// verdict is a cached cosign result of one digest under one key set.
type verdict struct {
	err error // nil: verified
	at  time.Time
	by  string // the key that verified
}

// resolution is a cached tag → digest.
type resolution struct {
	digest string
	at     time.Time
}

// sigCache holds cosign verdicts and tag resolutions.
type sigCache struct {
	mu       sync.Mutex
	verdicts *lru[verdict]
	tags     *lru[resolution]
	ttl      time.Duration
}

func (c *sigCache) verdict(key string, now time.Time) (verdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.verdicts.get(key)
	if !ok || now.Sub(v.at) >= c.ttl {
		return verdict{}, false
	}
	return v, true
}

func (c *sigCache) putVerdict(key string, v verdict) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.verdicts.put(key, v)
}

func (c *sigCache) tag(key string, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.tags.get(key)
	if !ok || now.Sub(r.at) >= c.ttl {
		return "", false
	}
	return r.digest, true
}

func (c *sigCache) putTag(key, digest string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tags.put(key, resolution{digest: digest, at: at})
}

package server

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signet-trust/signet/internal/store"
)

// cachedFile is a stored file with its response headers worked out once.
type cachedFile struct {
	file         store.File
	lastModified []string
	length       []string
	// at is when a current file was cached (for the staleness bound).
	at time.Time
	// parsed is the file's parse, when it is a root (rootcache.go).
	parsed parsedRoot
}

func newCachedFile(f store.File) *cachedFile {
	return &cachedFile{
		file:         f,
		lastModified: []string{f.CreatedAt.UTC().Format(time.RFC1123)},
		length:       []string{strconv.Itoa(len(f.Data))},
	}
}

// gunEntry holds what is cached of one GUN: the current file of each role
// asked for, and immutable files fetched by version or checksum.
type gunEntry struct {
	current map[string]*cachedFile   // role → current file
	fixed   map[fixedKey]*cachedFile // (role, checksum) or (role, version) → file
}

// fixedKey names an immutable file of a GUN: a role's version by its
// SHA-256 (hex, lower case), or by its version number (sha256 empty). A
// struct rather than a joined string, so that a lookup builds nothing.
type fixedKey struct {
	role    string
	sha256  string
	version int
}

// metaCache keeps current metadata in memory, bounded in GUNs and in fixed
// files per GUN. Writers invalidate a GUN after every change; a reader that
// fetched from the store while a write happened does not insert its
// (possibly stale) result, which the write counter detects.
//
// With replicas, writes of other processes arrive as invalidations
// (invalidateRemote), counted apart so that a write-through (replace) that
// may have raced one is dropped instead of cached. When maxStale is set, a
// current file cached longer than that is a miss, so a lost invalidation
// cannot serve stale metadata for longer.
type metaCache struct {
	maxGUNs  int
	maxFixed int
	maxStale time.Duration
	now      func() time.Time

	mu     sync.RWMutex
	gun    map[string]*gunEntry
	writes atomic.Uint64
	remote atomic.Uint64
}

func newMetaCache(maxGUNs, maxFixed int, maxStale time.Duration, now func() time.Time) *metaCache {
	return &metaCache{maxGUNs: maxGUNs, maxFixed: maxFixed, maxStale: maxStale, now: now, gun: map[string]*gunEntry{}}
}

func (c *metaCache) getCurrent(gun, role string) *cachedFile {
	c.mu.RLock()
	var f *cachedFile
	if e := c.gun[gun]; e != nil {
		f = e.current[role]
	}
	c.mu.RUnlock()
	if f != nil && c.maxStale > 0 && c.now().Sub(f.at) > c.maxStale {
		return nil
	}
	return f
}

func (c *metaCache) getFixed(gun string, key fixedKey) *cachedFile {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e := c.gun[gun]; e != nil {
		return e.fixed[key]
	}
	return nil
}

// generation returns the write counter to pass to put after a store read.
func (c *metaCache) generation() uint64 { return c.writes.Load() }

// remoteGeneration returns the counter of other processes' writes to pass
// to replace after a store write.
func (c *metaCache) remoteGeneration() uint64 { return c.remote.Load() }

func (c *metaCache) entry(gun string) *gunEntry {
	e := c.gun[gun]
	if e == nil {
		if len(c.gun) >= c.maxGUNs {
			for k := range c.gun { // evict an arbitrary GUN
				delete(c.gun, k)
				break
			}
		}
		e = &gunEntry{current: map[string]*cachedFile{}, fixed: map[fixedKey]*cachedFile{}}
		c.gun[gun] = e
	}
	return e
}

func (c *metaCache) putCurrent(gen uint64, gun, role string, f *cachedFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writes.Load() != gen {
		return
	}
	if c.maxStale > 0 {
		f.at = c.now()
	}
	c.entry(gun).current[role] = f
}

func (c *metaCache) putFixed(gen uint64, gun string, key fixedKey, f *cachedFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writes.Load() != gen {
		return
	}
	e := c.entry(gun)
	if len(e.fixed) >= c.maxFixed {
		clear(e.fixed)
	}
	e.fixed[key] = f
}

// replace records a successful write: the files just written become the
// GUN's current files, beside what was cached of its other roles — unless
// another process wrote meanwhile (remoteGen, taken before the write, is
// out of date), whose newer files may already be in the store.
func (c *metaCache) replace(remoteGen uint64, gun string, files []store.File, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes.Add(1)
	e := c.gun[gun]
	if c.remote.Load() != remoteGen {
		delete(c.gun, gun)
		return
	}
	if e == nil {
		e = c.entry(gun)
	} else if len(e.fixed)+len(files) > c.maxFixed {
		clear(e.fixed)
	}
	// The roles the write did not touch stay cached: they are still
	// current (this process's writes of gun are serialised, and another
	// process's would have moved remoteGen), with their parse (the stored
	// root's, which every publish checks against) and their time of
	// caching; so do files by checksum or version, which never change.
	at := c.now()
	for _, f := range files {
		if f.CreatedAt.IsZero() {
			f.CreatedAt = now
		}
		cf := newCachedFile(f)
		cf.at = at
		e.current[f.Role] = cf
		// A client's next publish fetches these by checksum first: the
		// bytes of a checksum never change, so they are cached as such.
		if len(f.SHA256) == 64 && len(e.fixed) < c.maxFixed {
			e.fixed[fixedKey{role: f.Role, sha256: f.SHA256}] = cf
		}
	}
}

// dropFixed forgets every file cached by checksum or version, after the
// retention policy removed some from the store. Readers that fetched one
// before it was removed do not insert it (the write counter moves).
func (c *metaCache) dropFixed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes.Add(1)
	for _, e := range c.gun {
		clear(e.fixed)
	}
}

// invalidate drops a GUN after a write or delete to it.
func (c *metaCache) invalidate(gun string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes.Add(1)
	delete(c.gun, gun)
}

// invalidateRemote drops a GUN another process wrote, or every GUN when
// gun is "".
func (c *metaCache) invalidateRemote(gun string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.remote.Add(1)
	c.writes.Add(1)
	if gun == "" {
		clear(c.gun)
		return
	}
	delete(c.gun, gun)
}

// gunLocks serialises writers per GUN within one process; across processes
// the store's version checks decide.
type gunLocks struct {
	mu    sync.Mutex
	locks map[string]*gunLock
}

type gunLock struct {
	mu   sync.Mutex
	refs int
}

func (l *gunLocks) lock(gun string) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*gunLock{}
	}
	g := l.locks[gun]
	if g == nil {
		g = &gunLock{}
		l.locks[gun] = g
	}
	g.refs++
	l.mu.Unlock()
	g.mu.Lock()
	return func() {
		g.mu.Unlock()
		l.mu.Lock()
		if g.refs--; g.refs == 0 {
			delete(l.locks, gun)
		}
		l.mu.Unlock()
	}
}

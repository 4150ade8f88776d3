// Package ratelimit holds the token buckets signet-server limits costly
// requests with: one Bucket for a server-wide rate (keys made for
// repositories that do not exist yet), and Keyed buckets per client
// address or user name (password checks of the token service).
//
// Invariants: a bucket holds at most Burst tokens and gains Rate tokens a
// second; Take never lets more than Burst + Rate×t requests through in
// any window of t seconds; a Keyed table never holds more than its
// maximum number of keys, refusing new keys (never forgetting active
// ones) when it is full. The package is pure: time is an argument, no
// I/O, no clock, no globals.
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// Limit is a rate and a burst. The zero Limit limits nothing.
type Limit struct {
	// Rate is the tokens gained per second.
	Rate float64
	// Burst is the most tokens held, and what a bucket starts with.
	Burst int
}

// Unlimited reports whether l lets everything through.
func (l Limit) Unlimited() bool { return l.Rate <= 0 || l.Burst <= 0 }

// state is a bucket's tokens as of last.
type state struct {
	tokens float64
	last   time.Time
}

// advance adds the tokens gained since s.last, up to the burst.
func (s *state) advance(l Limit, now time.Time) {
	if now.After(s.last) {
		s.tokens = math.Min(float64(l.Burst), s.tokens+now.Sub(s.last).Seconds()*l.Rate)
		s.last = now
	}
}

// take takes a token, or says how long until one is there.
func (s *state) take(l Limit, now time.Time) (bool, time.Duration) {
	s.advance(l, now)
	if s.tokens >= 1 {
		s.tokens--
		return true, 0
	}
	return false, time.Duration((1 - s.tokens) / l.Rate * float64(time.Second))
}

// Bucket is one token bucket, safe for concurrent use.
type Bucket struct {
	l  Limit
	mu sync.Mutex
	s  state
}

// NewBucket returns a full bucket of l.
func NewBucket(l Limit) *Bucket {
	return &Bucket{l: l, s: state{tokens: float64(l.Burst)}}
}

// Take takes a token at now. When there is none it returns false and how
// long until there is one.
func (b *Bucket) Take(now time.Time) (ok bool, wait time.Duration) {
	if b.l.Unlimited() {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.s.last.IsZero() {
		b.s.last = now
	}
	return b.s.take(b.l, now)
}

// Keyed is a token bucket per key (a client address, a user name), at
// most max keys at once, safe for concurrent use. A key whose bucket is
// full again is forgotten when room is needed, as it is the same as a new
// one.
type Keyed struct {
	l   Limit
	max int

	mu        sync.Mutex
	m         map[string]*state
	lastSweep time.Time
}

// NewKeyed returns an empty table of buckets of l, holding at most max
// keys.
func NewKeyed(l Limit, max int) *Keyed {
	return &Keyed{l: l, max: max, m: map[string]*state{}}
}

// sweepEvery is how often a full table is searched for forgettable keys.
const sweepEvery = time.Second

// Take takes a token from key's bucket at now; when there is none, it
// returns false and how long until there is one. When the table is full
// of keys still in use, a new key gets no token.
func (k *Keyed) Take(key string, now time.Time) (ok bool, wait time.Duration) {
	if k.l.Unlimited() {
		return true, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.m[key]
	if s == nil {
		if len(k.m) >= k.max && !k.sweep(now) {
			return false, time.Duration(float64(time.Second) / k.l.Rate)
		}
		s = &state{tokens: float64(k.l.Burst), last: now}
		k.m[key] = s
	}
	return s.take(k.l, now)
}

// Refund gives back a token taken from key's bucket (a request that turned
// out not to count, such as a login that succeeded).
func (k *Keyed) Refund(key string, now time.Time) {
	if k.l.Unlimited() {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if s := k.m[key]; s != nil {
		s.advance(k.l, now)
		s.tokens = math.Min(float64(k.l.Burst), s.tokens+1)
	}
}

// Len is the number of keys held.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

// sweep forgets the keys whose buckets are full at now, at most once per
// sweepEvery, and reports whether there is room for a new key.
func (k *Keyed) sweep(now time.Time) bool {
	if now.Sub(k.lastSweep) < sweepEvery && now.After(k.lastSweep) {
		return len(k.m) < k.max
	}
	k.lastSweep = now
	for key, s := range k.m {
		s.advance(k.l, now)
		if s.tokens >= float64(k.l.Burst) {
			delete(k.m, key)
		}
	}
	return len(k.m) < k.max
}

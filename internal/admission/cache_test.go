package admission

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/policy"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestTrustCache(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	var fetches atomic.Int32
	var mu sync.Mutex
	var failErr error
	setFail := func(err error) { mu.Lock(); failErr = err; mu.Unlock() }
	view := &policy.View{}
	c := &trustCache{
		entries: newLRU[*trustEntry](2), ttl: time.Minute, maxStale: 10 * time.Minute, failTTL: 5 * time.Second, now: clk.now,
		fetch: func(ctx context.Context, e *trustEntry, d *dctRule) (*policy.View, error) {
			fetches.Add(1)
			mu.Lock()
			err := failErr
			mu.Unlock()
			if err != nil {
				return nil, err
			}
			return view, nil
		},
	}
	d := &dctRule{}
	get := func() (*policy.View, *staleInfo, error) { return c.view(t.Context(), "r.example", "r.example/app", d) }

	// Fetched once, then served from the cache within the TTL.
	for i := 0; i < 3; i++ {
		if v, st, err := get(); v != view || st != nil || err != nil {
			t.Fatalf("get: %v %v %v", v, st, err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches within the TTL", n)
	}
	// Past the TTL with the server down: the stale view, with its age.
	clk.add(2 * time.Minute)
	setFail(errors.New("connection refused"))
	v, st, err := get()
	if v != view || err != nil || st == nil || st.age != 2*time.Minute || !strings.Contains(st.warning("r.example/app"), "connection refused") {
		t.Fatalf("stale: %v %+v %v", v, st, err)
	}
	// The failure is remembered for failTTL: no new fetch.
	n := fetches.Load()
	get()
	if fetches.Load() != n {
		t.Fatal("fetched again within the failure TTL")
	}
	// Past the maximum age: an error naming the cause.
	clk.add(9 * time.Minute)
	v, _, err = get()
	var ue *unreachableError
	if v != nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("past max stale: %v %v", v, err)
	}
	// Back up: fresh again.
	setFail(nil)
	clk.add(6 * time.Second)
	if v, st, err := get(); v != view || st != nil || err != nil {
		t.Fatalf("recovered: %v %v %v", v, st, err)
	}
	// A repository the server no longer has: no stale fallback.
	clk.add(2 * time.Minute)
	setFail(client.ErrNoTrustData)
	if v, _, err := get(); v != nil || !errors.Is(err, policy.ErrNoTrustData) {
		t.Fatalf("deleted repository: %v %v", v, err)
	}
	// Bounded: a third repository evicts the least recently used.
	c.view(t.Context(), "r.example", "r.example/b", d)
	c.view(t.Context(), "r.example", "r.example/c", d)
	if c.size() != 2 {
		t.Fatalf("cache of %d entries, bound 2", c.size())
	}
}

func TestTrustCacheOneFetch(t *testing.T) {
	release := make(chan struct{})
	var fetches atomic.Int32
	view := &policy.View{}
	c := &trustCache{
		entries: newLRU[*trustEntry](10), ttl: time.Minute, failTTL: time.Second, now: time.Now,
		fetch: func(ctx context.Context, e *trustEntry, d *dctRule) (*policy.View, error) {
			fetches.Add(1)
			<-release
			return view, nil
		},
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, _, err := c.view(t.Context(), "r", "r/app", &dctRule{}); v != view || err != nil {
				t.Errorf("%v %v", v, err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for 20 concurrent decisions, want 1", n)
	}
	// A caller whose deadline passes while waiting gets an error.
	block := make(chan struct{})
	c2 := &trustCache{entries: newLRU[*trustEntry](10), ttl: time.Minute, now: time.Now,
		fetch: func(ctx context.Context, e *trustEntry, d *dctRule) (*policy.View, error) { <-block; return view, nil }}
	go c2.view(t.Context(), "r", "r/app", &dctRule{})
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := c2.view(ctx, "r", "r/app", &dctRule{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting past the deadline: %v", err)
	}
	close(block)
}

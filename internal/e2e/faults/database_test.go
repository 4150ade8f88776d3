package faults

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/e2e/tufhttp"
)

// startBehindProxy creates a PostgreSQL database for the test and runs
// signet-server on it through a TCP proxy.
func startBehindProxy(t *testing.T) (*server, *proxy, *pgDB) {
	t.Helper()
	db := postgresDB(t)
	p := startProxy(t, db.url.Host)
	s := startServer(t, t.TempDir(), "--db", db.via(p.addr()))
	return s, p, db
}

// TestDatabaseUnavailable cuts the server off its database between
// requests: whatever needs the database answers 503 UNAVAILABLE with
// Retry-After (reads and writes alike), the publish tried meanwhile leaves
// nothing behind, and once the database is reachable again the same
// process serves and publishes without a restart.
func TestDatabaseUnavailable(t *testing.T) {
	s, p, _ := startBehindProxy(t)
	a, b := newGUN("a"), newGUN("b")
	a.mustPublish(t, s)
	a.mustPublish(t, s)

	p.setCut(true)
	// Reads that need the database. (Current metadata of a repository the
	// server has just written stays in its memory cache and is served from
	// there; that is by design and checked below.)
	wantUnavailable(t, "GET root.json of a repository not in memory", s.get(b.path()+"root.json"))
	wantUnavailable(t, "GET timestamp.key of a new repository", s.get(b.path()+"timestamp.key"))
	wantUnavailable(t, "GET a version not in memory", s.get(a.path()+"1.targets.json"))
	wantUnavailable(t, "GET the changefeed", s.get("/v2/"+a.gun+"/_trust/changefeed?records=10"))
	if r := s.get(a.path() + "targets.json"); r.Status != 200 && r.Status != 503 {
		t.Errorf("GET current targets.json while the database is down: %v, want 200 from memory or 503", r)
	} else {
		t.Logf("GET current targets.json of a cached repository while the database is down: %d", r.Status)
	}
	if r := s.get("/_notary_server/health"); r.Status != 503 {
		t.Errorf("health while the database is down: %v, want 503", r)
	}
	// A publish, twice (the second on a connection pool already emptied).
	for i := range 2 {
		r, err := a.publish(t.Context(), s.Client, s.Base)
		if err != nil {
			t.Fatalf("publish %d while the database is down: %v", i, err)
		}
		if !failedWrite(r) {
			t.Errorf("publish %d while the database is down: %v (Retry-After %q), want 503 UNAVAILABLE with Retry-After or 500 UPDATING", i, r, r.Header.Get("Retry-After"))
		}
		t.Logf("publish %d while the database is down: %d %s", i, r.Status, r.Code())
	}

	s.alive()

	p.setCut(false)
	// Recovery: no restart, and at most the requests that find a pooled
	// connection broken may still fail.
	fails, err := eventually(10*time.Second, func() error {
		if r := s.get("/_notary_server/health"); r.Status != 200 {
			return fmt.Errorf("health: %v", r)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the server did not recover after the database came back: %v", err)
	}
	t.Logf("health failed %d times after the database came back", fails)
	if a.reconcile(t, s) {
		t.Errorf("%s: a publish answered 503 was stored", a.gun)
	}
	a.mustPublish(t, s)
	b.mustPublish(t, s)
	a.mustPublish(t, s)
	a.verify(t, s)
	b.verify(t, s)
	s.alive()
}

// TestDatabaseUnavailableMidStream cuts the database for a second while
// several repositories are being published and read: every answer is 200
// or 503 with Retry-After, every publish is all or nothing (one that got
// 503 may have committed if the connection broke at COMMIT), and the
// stream carries on after the database is back, in the same process.
func TestDatabaseUnavailableMidStream(t *testing.T) {
	s, p, _ := startBehindProxy(t)
	guns := make([]*gunState, 4)
	for i := range guns {
		guns[i] = newGUN(fmt.Sprintf("stream%d", i))
		guns[i].mustPublish(t, s)
	}
	var (
		mu       sync.Mutex
		statuses = map[string]int{}
	)
	count := func(what string) {
		mu.Lock()
		statuses[what]++
		mu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, g := range guns {
		wg.Go(func() {
			failed := false // the pending publish got an error answer
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := g.publish(t.Context(), s.Client, s.Base)
				switch {
				case err != nil:
					t.Errorf("%s: publish: %v", g.gun, err)
					return
				case r.Status == 200:
					count("publish 200")
					failed = false
				case failedWrite(r):
					count(fmt.Sprintf("publish %d %s", r.Status, r.Code()))
					failed = true
					time.Sleep(20 * time.Millisecond)
				case failed && r.Status == 400 && r.Code() == "VERSION":
					// The connection broke at COMMIT, after PostgreSQL
					// committed: the error answer was ambiguous, and
					// reconcile below must find the publish whole.
					count("publish 400 VERSION after an error answer")
					return
				default:
					t.Errorf("%s: publish version %d: %v", g.gun, g.pending.n, r)
					return
				}
			}
		})
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Alternate a cached read and one that goes to the database.
				path := g.path() + "timestamp.json"
				if i%2 == 1 {
					path = fmt.Sprintf("/v2/%s/_trust/changefeed?records=1", g.gun)
				}
				r, err := tufhttp.Do(t.Context(), s.Client, http.MethodGet, s.Base+path, nil, "")
				switch {
				case err != nil:
					t.Errorf("GET %s: %v", path, err)
					return
				case r.Status == 200:
					count("read 200")
				case r.Status == 503 && r.Code() == "UNAVAILABLE" && r.Header.Get("Retry-After") != "":
					count("read 503")
					time.Sleep(20 * time.Millisecond)
				default:
					t.Errorf("GET %s: %v", path, r)
					return
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	p.setCut(true)
	time.Sleep(time.Second)
	p.setCut(false)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("answers: %v", statuses)
	if t.Failed() {
		return
	}
	if statuses["publish 503 UNAVAILABLE"]+statuses["publish 500 UPDATING"] == 0 || statuses["read 503"] == 0 {
		t.Errorf("the cut produced no 503: %v", statuses)
	}
	committed := 0
	for _, g := range guns {
		if g.reconcile(t, s) {
			committed++
		}
		before := g.lastN()
		if _, err := eventually(10*time.Second, func() error {
			r, err := g.publish(t.Context(), s.Client, s.Base)
			if err != nil || r.Status != 200 {
				return fmt.Errorf("publish: %v %v", r, err)
			}
			return nil
		}); err != nil {
			t.Fatalf("%s: no publish after the database came back: %v", g.gun, err)
		}
		if g.lastN() != before+1 {
			t.Fatalf("%s: version %d after %d", g.gun, g.lastN(), before)
		}
		g.verify(t, s)
	}
	t.Logf("publishes answered with an error but committed (connection cut at COMMIT): %d", committed)
	s.alive()
}

// TestDatabaseSlow puts latency between the server and its database:
// with a moderate delay requests succeed, only slower; with a delay longer
// than the client waits, the client times out and the repository is left
// whole; once the delay is gone publishing works again, in the same
// process.
func TestDatabaseSlow(t *testing.T) {
	s, p, _ := startBehindProxy(t)
	a, b := newGUN("a"), newGUN("b")
	a.mustPublish(t, s)

	p.setDelay(25 * time.Millisecond)
	start := time.Now()
	a.mustPublish(t, s)
	b.mustPublish(t, s)
	if r := s.get(a.path() + "1.targets.json"); r.Status != 200 {
		t.Fatalf("slow database: GET 1.targets.json: %v", r)
	}
	t.Logf("25ms per chunk: two publishes, a key and an uncached read took %v", time.Since(start).Round(time.Millisecond))

	// Slower than the client is willing to wait.
	p.setDelay(1500 * time.Millisecond)
	impatient := s.newClient(time.Second, false)
	start = time.Now()
	r, err := a.publish(t.Context(), impatient, s.Base)
	if err == nil {
		t.Fatalf("publish against a very slow database answered %v within the client's 1s timeout", r)
	}
	var timeout interface{ Timeout() bool }
	if !errors.As(err, &timeout) || !timeout.Timeout() {
		t.Fatalf("publish against a very slow database: %v, want a client timeout", err)
	}
	t.Logf("1.5s per chunk: the client gave up after %v: %v", time.Since(start).Round(time.Millisecond), err)
	_, err = tufhttp.Do(t.Context(), impatient, http.MethodGet, s.Base+a.path()+"2.targets.json", nil, "")
	if err == nil {
		t.Log("an uncached read answered within 1s despite the delay")
	}

	p.setDelay(0)
	// What the abandoned publish left is all or nothing; in-flight
	// statements may hold the GUN's lock for a while, so wait (bounded).
	if _, err := eventually(30*time.Second, func() error {
		if r := s.get("/_notary_server/health"); r.Status != 200 {
			return fmt.Errorf("health: %v", r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	committed := a.reconcile(t, s)
	t.Logf("the abandoned publish committed: %v", committed)
	a.mustPublish(t, s)
	b.mustPublish(t, s)
	a.verify(t, s)
	b.verify(t, s)
	s.alive()
}

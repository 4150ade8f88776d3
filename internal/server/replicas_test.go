package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// syncBuf is a log destination safe for concurrent writers.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// replica starts another Server on e's store and clock, as a second
// signet-server process on the same database would be; mod adjusts its
// configuration. Its log goes to the returned buffer.
func (e *env) replica(mod func(*server.Config)) (*env, *syncBuf) {
	e.t.Helper()
	cust, err := custody.Open(context.Background(), e.store, []byte("test passphrase"), custody.AlgorithmECDSA, e.clock.Now)
	if err != nil {
		e.t.Fatal(err)
	}
	logs := &syncBuf{}
	cfg := server.Config{
		Store: e.store, Custodian: cust, Now: e.clock.Now, MaxUploadBytes: 1 << 20,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	e.t.Cleanup(hs.Close)
	return &env{t: e.t, srv: srv, ts: hs, clock: e.clock, store: e.store}, logs
}

func timestampVersion(t *testing.T, e *env, gun string) int {
	t.Helper()
	r := e.get("/v2/" + gun + "/_trust/tuf/timestamp.json")
	if r.status != 200 {
		t.Fatalf("GET timestamp: %d %s", r.status, r.body)
	}
	m, err := tuf.ParseTimestamp(r.body)
	if err != nil {
		t.Fatal(err)
	}
	return int(m.Signed.Version)
}

// TestReplicaInvalidation: a replica that cached a GUN serves the new
// version once told of the write, and drops everything on "".
func TestReplicaInvalidation(t *testing.T) {
	a := newEnv(t)
	inv := make(chan string, 4)
	b, _ := a.replica(func(c *server.Config) { c.Invalidations = inv })

	r := a.newClientRepo(gun, true)
	r.SignAll()
	if got := a.publish(gun, roles(r, "root", "targets")...); got.status != 200 {
		t.Fatalf("publish: %d %s", got.status, got.body)
	}
	if v := timestampVersion(t, b, gun); v != 1 {
		t.Fatalf("B: timestamp v%d", v)
	}
	a.publish(gun) // re-sign: timestamp v2
	if v := timestampVersion(t, b, gun); v != 1 {
		t.Fatalf("B serves v%d before any invalidation; the test needs it cached", v)
	}
	inv <- gun
	waitFor(t, func() bool { return timestampVersion(t, b, gun) == 2 })

	a.publish(gun) // v3
	inv <- ""
	waitFor(t, func() bool { return timestampVersion(t, b, gun) == 3 })
}

// TestReplicaStalenessBound: without any invalidation, a replica serves the
// new version once its cached copy is older than CacheMaxStale.
func TestReplicaStalenessBound(t *testing.T) {
	a := newEnv(t)
	b, _ := a.replica(func(c *server.Config) { c.CacheMaxStale = 10 * time.Second })
	r := a.newClientRepo(gun, true)
	r.SignAll()
	a.publish(gun, roles(r, "root", "targets")...)
	if v := timestampVersion(t, b, gun); v != 1 {
		t.Fatalf("B: timestamp v%d", v)
	}
	a.publish(gun)
	a.clock.Add(9 * time.Second)
	if v := timestampVersion(t, b, gun); v != 1 {
		t.Fatalf("B served v%d within the bound; the test needs it cached", v)
	}
	a.clock.Add(2 * time.Second)
	if v := timestampVersion(t, b, gun); v != 2 {
		t.Fatalf("B serves timestamp v%d %s after the write, beyond its 10s bound", v, 11*time.Second)
	}
}

// TestReplicasPublishRace: publishes of the same version through two
// replicas: one 200, the other 400 VERSION, and the stored repository is
// the winner's, whole.
func TestReplicasPublishRace(t *testing.T) {
	a := newEnv(t)
	b, _ := a.replica(func(c *server.Config) { c.Invalidations = make(chan string) })
	r := a.newClientRepo(gun, false)
	r.SignAll()
	a.publish(gun, roles(r, "root", "targets", "snapshot")...)
	for round := 2; round <= 6; round++ {
		var wg sync.WaitGroup
		res := make([]resp, 2)
		bodies := make([][]byte, 2)
		next := make([]*tuftest.Repo, 2)
		for i, e := range []*env{a, b} {
			rr := cloneRepo(t, r)
			rr.Bump(tuf.RoleTargets)
			rr.Bump(tuf.RoleSnapshot)
			rr.AddTarget(tuf.RoleTargets, fmt.Sprintf("round %d replica %d", round, i), []byte("x"))
			rr.Sign(tuf.RoleTargets)
			rr.SignSnapshot()
			bodies[i], next[i] = rr.Signed[tuf.RoleTargets], rr
			parts := roles(rr, "targets", "snapshot")
			wg.Go(func() { res[i] = e.publish(gun, parts...) })
		}
		wg.Wait()
		winner := -1
		for i, got := range res {
			if got.status == 200 {
				if winner >= 0 {
					t.Fatalf("round %d: both replicas accepted", round)
				}
				winner = i
				continue
			}
			wantError(t, got, 400, "VERSION", "")
		}
		if winner < 0 {
			t.Fatalf("round %d: neither replica accepted: %s / %s", round, res[0].body, res[1].body)
		}
		if got := a.get("/v2/" + gun + "/_trust/tuf/targets.json"); !bytes.Equal(got.body, bodies[winner]) {
			t.Fatalf("round %d: current targets is not the winner's", round)
		}
		r = next[winner]
		a.verifyRepo(gun)
		b.verifyRepo(gun)
	}
}

// TestReplicasRefresherRace: two replicas re-signing the same expiring
// timestamps at once re-sign each version once, and the loser logs no
// error.
func TestReplicasRefresherRace(t *testing.T) {
	a := newEnv(t)
	b, logsB := a.replica(nil)
	c, logsC := a.replica(nil)
	guns := []string{"example.com/r/1", "example.com/r/2", "example.com/r/3", "example.com/r/4"}
	for _, g := range guns {
		r := a.newClientRepo(g, true)
		r.SignAll()
		if got := a.publish(g, roles(r, "root", "targets")...); got.status != 200 {
			t.Fatalf("publish %s: %d %s", g, got.status, got.body)
		}
	}
	a.clock.Add(8 * 24 * time.Hour)
	var wg sync.WaitGroup
	var n [2]int
	for i, e := range []*env{b, c} {
		wg.Go(func() { n[i] = server.RefreshDue(e.srv, t.Context()) })
	}
	wg.Wait()
	if n[0]+n[1] != len(guns) {
		t.Errorf("replicas re-signed %d + %d timestamps, want %d in all", n[0], n[1], len(guns))
	}
	for _, g := range guns {
		if f, err := a.store.GetCurrent(t.Context(), g, tuf.RoleTimestamp); err != nil || f.Version != 2 {
			t.Errorf("%s: timestamp v%d (%v), want 2", g, f.Version, err)
		}
		cs, err := a.store.Changes(t.Context(), g, 0, 100)
		if err != nil || len(cs) != 2 {
			t.Errorf("%s: %d changes (%v), want 2", g, len(cs), err)
		}
	}
	for _, l := range []string{logsB.String(), logsC.String()} {
		if strings.Contains(l, "level=ERROR") {
			t.Errorf("a replica logged an error:\n%s", l)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReady(t *testing.T) {
	a := newEnv(t)
	if got := a.get("/_signet/ready"); got.status != 200 || string(got.body) != "{}" {
		t.Fatalf("ready: %d %s", got.status, got.body)
	}
	b, _ := a.replica(func(c *server.Config) {
		c.Checks = map[string]func(context.Context) error{
			"DB operational": func(context.Context) error { return fmt.Errorf("connection refused") },
		}
	})
	got := b.get("/_signet/ready")
	if got.status != 503 || !strings.Contains(string(got.body), `"DB operational":"connection refused"`) {
		t.Fatalf("ready with a failing check: %d %s", got.status, got.body)
	}
	a.store.Close()
	got = a.get("/_signet/ready")
	if got.status != 503 || !strings.Contains(string(got.body), `"custodian"`) {
		t.Fatalf("ready with the store closed: %d %s", got.status, got.body)
	}
}

func TestSoonestExpiryMetric(t *testing.T) {
	a := newEnv(t)
	r := a.newClientRepo(gun, true)
	r.SignAll()
	a.publish(gun, roles(r, "root", "targets")...)
	if err := server.UpdateExpiryMetrics(a.srv, t.Context()); err != nil {
		t.Fatal(err)
	}
	m := string(a.get("/metrics").body)
	ts := a.get("/v2/" + gun + "/_trust/tuf/timestamp.json").body
	tm, err := tuf.ParseTimestamp(ts)
	if err != nil {
		t.Fatal(err)
	}
	line := grepLines(m, `signet_server_soonest_expiry_seconds{role="timestamp"}`)
	var got float64
	if _, err := fmt.Sscanf(line, `signet_server_soonest_expiry_seconds{role="timestamp"} %g`, &got); err != nil {
		t.Fatalf("no timestamp gauge (%v):\n%s", err, grepLines(m, "soonest"))
	}
	if want := float64(tm.Signed.Expires.UnixMicro()) / 1e6; got < want-0.001 || got > want+0.001 {
		t.Fatalf("soonest timestamp expiry %f, want %f (%v)", got, want, tm.Signed.Expires)
	}
	for _, role := range []string{"root", "targets", "snapshot"} {
		if !strings.Contains(m, `signet_server_soonest_expiry_seconds{role="`+role+`"}`) {
			t.Errorf("no soonest expiry for %s", role)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRetention publishes many versions, prunes keeping 2, and checks that
// superseded versions are gone, the current repository still verifies
// (every file fetched by checksum), and every root is kept.
func TestRetention(t *testing.T) {
	a := newEnv(t)
	r := a.newClientRepo(gun, true)
	r.SignAll()
	a.publish(gun, roles(r, "root", "targets")...)
	for i := 2; i <= 6; i++ {
		r.Bump(tuf.RoleTargets)
		r.AddTarget(tuf.RoleTargets, fmt.Sprintf("t%d", i), []byte("x"))
		r.Sign(tuf.RoleTargets)
		if got := a.publish(gun, roles(r, "targets")...); got.status != 200 {
			t.Fatalf("publish %d: %d %s", i, got.status, got.body)
		}
	}
	old, err := a.store.GetVersion(t.Context(), gun, tuf.RoleTargets, 1)
	if err != nil {
		t.Fatal(err)
	}
	// targets, snapshot, timestamp v1..4 go: 12 files.
	if n := server.PruneOnce(a.srv, t.Context(), 2); n != 12 {
		t.Fatalf("pruned %d files, want 12", n)
	}
	for _, p := range []string{"1.targets.json", "4.snapshot.json", "4.timestamp.json"} {
		if got := a.get("/v2/" + gun + "/_trust/tuf/" + p); got.status != 404 {
			t.Errorf("%s after pruning: %d", p, got.status)
		}
	}
	sum := sha256.Sum256(old.Data)
	if got := a.get(fmt.Sprintf("/v2/%s/_trust/tuf/targets.%x.json", gun, sum)); got.status != 404 {
		t.Errorf("targets v1 by checksum after pruning: %d", got.status)
	}
	for _, p := range []string{"5.targets.json", "1.root.json", "5.timestamp.json"} {
		if got := a.get("/v2/" + gun + "/_trust/tuf/" + p); got.status != 200 {
			t.Errorf("%s after pruning: %d", p, got.status)
		}
	}
	a.verifyRepo(gun)
	if cs, err := a.store.Changes(t.Context(), gun, 0, 100); err != nil || len(cs) != 6 {
		t.Errorf("changefeed after pruning: %d records, %v; want 6", len(cs), err)
	}
	if n := server.PruneOnce(a.srv, t.Context(), 2); n != 0 {
		t.Errorf("second pass pruned %d", n)
	}
}

package soak

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/e2e/tufhttp"
	"github.com/signet-trust/signet/internal/tuf"
)

// Load shape: each publisher owns gunsPer repositories and publishes a new
// targets version to them in turn; each reader fetches what the notary
// client fetches on `notary list`/`docker pull` (timestamp, snapshot and
// targets by checksum, root) plus current and version-addressed targets,
// a key and the changefeed.
const (
	publishers = 4
	gunsPer    = 2
	readers    = 8
	// maxGrowth bounds the RSS of the last third over the first third.
	maxGrowth = 1.3
)

func soakDuration(t *testing.T) time.Duration {
	long := os.Getenv("SIGNET_SOAK") == "1"
	if testing.Short() && !long {
		t.Skip("soak test skipped with -short (SIGNET_SOAK=1 runs it)")
	}
	d := 30 * time.Second
	if long {
		d = 3 * time.Minute
	}
	if v := os.Getenv("SIGNET_SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d < 10*time.Second {
			t.Fatalf("SIGNET_SOAK_DURATION=%q: want a duration of at least 10s", v)
		}
	}
	return d
}

// latencies collects request durations by kind.
type latencies struct {
	mu sync.Mutex
	m  map[string][]time.Duration
}

func (l *latencies) add(kind string, d time.Duration) {
	l.mu.Lock()
	l.m[kind] = append(l.m[kind], d)
	l.mu.Unlock()
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func median(xs []int64) int64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestSoak runs publishers and readers against one signet-server for a
// bounded time: zero errors, every acknowledged publish current at the end
// and verifiable, and flat memory.
func TestSoak(t *testing.T) {
	duration := soakDuration(t)
	warmup := max(5*time.Second, duration/5)
	s := startServer(t, t.TempDir())

	var guns []*gunState
	for i := range publishers * gunsPer {
		g := &gunState{gun: fmt.Sprintf("example.com/soak/app%d", i)}
		g.init(t, s)
		guns = append(guns, g)
	}

	var (
		errCount atomic.Int64
		errMu    sync.Mutex
		errFirst []string
		lat      = &latencies{m: map[string][]time.Duration{}}
	)
	fail := func(format string, args ...any) {
		if errCount.Add(1) <= 10 {
			errMu.Lock()
			errFirst = append(errFirst, fmt.Sprintf(format, args...))
			errMu.Unlock()
		}
	}
	do := func(kind, method, path string, body []byte, ct string) (tufhttp.Response, bool) {
		start := time.Now()
		r, err := tufhttp.Do(t.Context(), s.Client, method, s.Base+path, body, ct)
		lat.add(kind, time.Since(start))
		if err != nil {
			fail("%s %s: %v", method, path, err)
			return r, false
		}
		if r.Status != 200 {
			fail("%s %s: %v", method, path, r)
			return r, false
		}
		return r, true
	}

	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for p := range publishers {
		mine := guns[p*gunsPer : (p+1)*gunsPer]
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				g := mine[i%len(mine)]
				n, targets, body, ct := g.next()
				if _, ok := do("publish", http.MethodPost, g.path(), body, ct); !ok {
					return // the repository's state is unknown now
				}
				g.version = n
				g.acked.set(n, targets)
			}
		})
	}
	for r := range readers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), uint64(time.Now().UnixNano())))
			for time.Now().Before(deadline) {
				g := guns[rng.IntN(len(guns))]
				n, _ := g.acked.get()
				if n == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				p := g.path()
				ts, ok := do("timestamp", http.MethodGet, p+"timestamp.json", nil, "")
				if !ok {
					continue
				}
				var tsm struct {
					Signed tuf.Timestamp `json:"signed"`
				}
				if err := json.Unmarshal(ts.Body, &tsm); err != nil {
					fail("%s timestamp: %v", g.gun, err)
					continue
				}
				snap, ok := do("snapshot by checksum", http.MethodGet, fmt.Sprintf("%ssnapshot.%x.json", p, tsm.Signed.Meta[tuf.RoleSnapshot].Hashes["sha256"]), nil, "")
				if !ok {
					continue
				}
				var sm struct {
					Signed tuf.Snapshot `json:"signed"`
				}
				if err := json.Unmarshal(snap.Body, &sm); err != nil {
					fail("%s snapshot: %v", g.gun, err)
					continue
				}
				do("targets by checksum", http.MethodGet, fmt.Sprintf("%stargets.%x.json", p, sm.Signed.Meta[tuf.RoleTargets].Hashes["sha256"]), nil, "")
				do("root", http.MethodGet, p+"root.json", nil, "")
				if cur, ok := do("targets current", http.MethodGet, p+"targets.json", nil, ""); ok {
					m, err := tuf.ParseTargets(tuf.RoleTargets, cur.Body)
					if err != nil || int(m.Signed.Version) < n {
						fail("%s: current targets older than acknowledged version %d: %v", g.gun, n, err)
					}
				}
				do("targets by version", http.MethodGet, fmt.Sprintf("%s%d.targets.json", p, 1+rng.IntN(n)), nil, "")
				switch rng.IntN(8) {
				case 0:
					do("timestamp.key", http.MethodGet, p+"timestamp.key", nil, "")
				case 1:
					do("changefeed", http.MethodGet, "/v2/"+g.gun+"/_trust/changefeed?records=10&change_id=-1", nil, "")
				}
			}
		})
	}

	// Sample the server's RSS every second until the load ends.
	type sample struct {
		at  time.Duration
		kib int64
	}
	var samples []sample
	start := time.Now()
	tick := time.NewTicker(time.Second)
	for now := range tick.C {
		kib, err := s.rssKiB()
		if err != nil {
			t.Fatalf("server RSS: %v", err)
		}
		samples = append(samples, sample{now.Sub(start).Round(time.Second), kib})
		if !now.Before(deadline) {
			break
		}
	}
	tick.Stop()
	wg.Wait()
	elapsed := time.Since(start)

	// Every acknowledged publish is current and the repositories verify.
	for _, g := range guns {
		n, targets := g.acked.get()
		if n == 0 {
			continue
		}
		tr := verifyRepo(t, s, g.gun)
		if got := int(tr.Targets(tuf.RoleTargets).Signed.Version); got != n {
			t.Errorf("%s: verified targets version %d, last acknowledged %d", g.gun, got, n)
		}
		r, err := tufhttp.Do(t.Context(), s.Client, http.MethodGet, s.Base+g.path()+"targets.json", nil, "")
		if err != nil || !bytes.Equal(r.Body, targets) {
			t.Errorf("%s: current targets are not the last acknowledged: %v %v", g.gun, r, err)
		}
	}
	goroutines, _ := s.metric("go_goroutines")
	heap, _ := s.metric("go_memstats_heap_inuse_bytes")

	// Memory: compare the first and last thirds after the warm-up.
	var steady []int64
	for _, sm := range samples {
		if sm.at >= warmup {
			steady = append(steady, sm.kib)
		}
	}
	if len(steady) < 6 {
		t.Fatalf("only %d RSS samples after the warm-up", len(steady))
	}
	third := len(steady) / 3
	first, last := median(steady[:third]), median(steady[len(steady)-third:])
	growth := float64(last) / float64(first)
	peak := slices.Max(steady)

	// Figures.
	lat.mu.Lock()
	kinds := make([]string, 0, len(lat.m))
	total := 0
	for k, ds := range lat.m {
		kinds = append(kinds, k)
		total += len(ds)
	}
	slices.Sort(kinds)
	var rep strings.Builder
	fmt.Fprintf(&rep, "| request | count | per second | p50 | p99 | max |\n|---|---:|---:|---:|---:|---:|\n")
	for _, k := range kinds {
		ds := lat.m[k]
		fmt.Fprintf(&rep, "| %s | %d | %.0f | %v | %v | %v |\n", k, len(ds), float64(len(ds))/elapsed.Seconds(),
			quantile(ds, .5).Round(10*time.Microsecond), quantile(ds, .99).Round(10*time.Microsecond), quantile(ds, 1).Round(10*time.Microsecond))
	}
	lat.mu.Unlock()
	var series strings.Builder
	for i, sm := range samples {
		if i > 0 {
			series.WriteString(" ")
		}
		fmt.Fprintf(&series, "%d", sm.kib/1024)
	}
	verdict := "pass"
	if errCount.Load() > 0 || growth > maxGrowth || t.Failed() {
		verdict = "FAIL"
	}
	summary := fmt.Sprintf("%v of load (warm-up %v), %d publishers × %d repositories, %d readers: %d requests (%.0f/s), %d errors; "+
		"server RSS median %d MiB in the first third after warm-up, %d MiB in the last (×%.2f, limit ×%.1f), peak %d MiB; "+
		"at the end %v goroutines, %.1f MiB heap in use",
		duration, warmup, publishers, gunsPer, readers, total, float64(total)/elapsed.Seconds(), errCount.Load(),
		first/1024, last/1024, growth, maxGrowth, peak/1024, goroutines, heap/(1<<20))
	t.Logf("%s\n%s\nRSS MiB, one sample a second: %s", summary, rep.String(), series.String())
	if path := os.Getenv("SIGNET_SOAK_REPORT"); path != "" {
		writeReport(t, path, verdict, summary, rep.String(), series.String())
	}

	for _, e := range errFirst {
		t.Errorf("error: %s", e)
	}
	if n := errCount.Load(); n > 0 {
		t.Errorf("%d requests failed (first %d shown)", n, len(errFirst))
	}
	if growth > maxGrowth {
		t.Errorf("server RSS grew ×%.2f from the first to the last third of the run (limit ×%.1f)", growth, maxGrowth)
	}
}

func writeReport(t *testing.T, path, verdict, summary, table, series string) {
	t.Helper()
	host, _ := os.Hostname()
	var b strings.Builder
	fmt.Fprintf(&b, `# Soak

Written by `+"`make soak`"+` (internal/e2e/soak, TestSoak with SIGNET_SOAK=1); do not edit by hand.
signet-server on SQLite under a steady load of concurrent publishers and readers on loopback,
bounded in time. Pass criteria: zero failed requests, every acknowledged publish current and
verifiable at the end, and the server's RSS (VmRSS, sampled every second) in the last third
of the run after the warm-up at most ×%.1f the first third.

- Result: **%s**
- When: %s, on %s (%d CPUs, %s/%s, %s)
- %s

%s
RSS of signet-server in MiB, one sample a second from the start of the load:

`+"```"+`
%s
`+"```"+`
`, maxGrowth, verdict, time.Now().UTC().Format("2006-01-02 15:04 UTC"), host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(),
		summary, table, series)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Errorf("soak report: %v", err)
	} else {
		t.Logf("wrote %s", path)
	}
}

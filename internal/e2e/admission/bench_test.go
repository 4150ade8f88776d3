package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/inproc"
	"github.com/signet-trust/signet/internal/e2e/tufhttp"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// TestAdmissionBench measures signet-admission (the binary, over TLS) with
// trust data on an in-process signet-server: cold decisions (the first
// fetch of a repository's trust data), warm decisions at 1 and 32
// concurrent connections, and the memory of the process with
// SIGNET_ADMISSION_BENCH_REPOS (default 10,000) repositories cached. It
// runs only with SIGNET_ADMISSION_BENCH=1 (make bench-admission), and
// writes its figures to SIGNET_ADMISSION_BENCH_REPORT when set.
func TestAdmissionBench(t *testing.T) {
	if os.Getenv("SIGNET_ADMISSION_BENCH") == "" {
		t.Skip("a benchmark: set SIGNET_ADMISSION_BENCH=1 (make bench-admission)")
	}
	repos := 10000
	if v := os.Getenv("SIGNET_ADMISSION_BENCH_REPOS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			t.Fatalf("SIGNET_ADMISSION_BENCH_REPOS=%q: want a number ≥ 100", v)
		}
		repos = n
	}
	dir := t.TempDir()
	ca := e2etest.TestCA(t, filepath.Join(dir, "pki"))
	// Every repository asks for a new timestamp key: far more than the
	// default limit on keys for repositories without metadata.
	cfg := filepath.Join(dir, "signet-server.yaml")
	if err := os.WriteFile(cfg, []byte("limits:\n  new_repository_keys_per_second: -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := inproc.StartServer(t, inproc.ServerOptions{CA: ca, LogLevel: "error", Flags: []string{"--config", cfg}})

	// Publish the repositories: root, targets delegating to targets/alice,
	// alice's role with v1, snapshot; the server signs the timestamp.
	start := time.Now()
	alice := tuftest.NewKey(t)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= repos || t.Failed() {
					return
				}
				gun := benchGUN(i)
				r := tuftest.NewRepo(t, gun, time.Now())
				tsKey, ok := serverTimestampKey(t, srv, gun)
				if !ok {
					return
				}
				r.SetRoleKeys(tuf.RoleTimestamp, tsKey)
				r.Delegate("targets/alice", []string{""}, alice)
				r.AddTarget("targets/alice", "v1", []byte(gun+" v1"))
				r.SignAll()
				body, ct := tufhttp.Upload(
					tufhttp.Part{Role: tuf.RoleRoot, Data: r.Signed[tuf.RoleRoot]},
					tufhttp.Part{Role: tuf.RoleTargets, Data: r.Signed[tuf.RoleTargets]},
					tufhttp.Part{Role: "targets/alice", Data: r.Signed["targets/alice"]},
					tufhttp.Part{Role: tuf.RoleSnapshot, Data: r.Signed[tuf.RoleSnapshot]})
				resp, err := tufhttp.Do(context.Background(), srv.Client, http.MethodPost, srv.URL+"/v2/"+gun+"/_trust/tuf/", body, ct)
				if err != nil || resp.Status != http.StatusOK {
					t.Errorf("publish %s: %v %v", gun, resp, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("published %d repositories in %v", repos, time.Since(start).Round(time.Millisecond))

	policy := fmt.Sprintf(`trust_server: %s
trust_ca: %s
cache: {ttl: 1h, max_entries: %d}
namespaces:
  - name: bench
    rules:
      - images: "bench.example/**"
        dct: {signers: [alice]}
`, srv.URL, srv.CAFile, repos+1000)
	wh := startWebhook(t, ca, filepath.Join(dir, "webhook"), policy, "--revalidate-interval", "0", "--log-level", "warn")
	pid := wh.proc.Cmd.Process.Pid
	rssIdle := rssKB(t, pid)

	body := func(i int) []byte {
		b, err := json.Marshal(newReview(t, "", "Pod", "bench", pod("web", benchGUN(i)+":v1"), "bench"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	bodies := make([][]byte, repos)
	for i := range bodies {
		bodies[i] = body(i)
	}

	// Cold: the first decision about each repository fetches and verifies
	// its trust data (root, timestamp, snapshot, targets, targets/alice).
	coldN := min(500, repos)
	client := benchClient(t, ca.CAFile)
	cold := make([]time.Duration, 0, coldN)
	for i := 0; i < coldN; i++ {
		d := decide(t, client, wh.url, bodies[i])
		cold = append(cold, d)
	}
	// Fill the rest of the cache, 8 connections at a time.
	fillStart := time.Now()
	run(t, ca.CAFile, wh.url, 8, func(i int) ([]byte, bool) {
		if i+coldN >= repos {
			return nil, false
		}
		return bodies[i+coldN], true
	}, 0)
	fillTime := time.Since(fillStart)
	if n := wh.metric(t, "signet_admission_cached_repositories"); int(n) != repos {
		t.Fatalf("%v repositories cached, want %d", n, repos)
	}
	rssFull := rssKB(t, pid)
	heap := wh.metric(t, "go_memstats_heap_inuse_bytes")

	// Warm: cached trust data, one connection, then 32.
	warm := func(conns int, d time.Duration) ([]time.Duration, float64) {
		var n atomic.Int64
		lat, elapsed := run(t, ca.CAFile, wh.url, conns, func(int) ([]byte, bool) {
			return bodies[int(n.Add(1))%repos], true
		}, d)
		return lat, float64(len(lat)) / elapsed.Seconds()
	}
	warm(4, 2*time.Second) // connections and caches warmed up
	w1, r1 := warm(1, 10*time.Second)
	w32, r32 := warm(32, 10*time.Second)

	load, _ := os.ReadFile("/proc/loadavg")
	report := fmt.Sprintf(`# Benchmarks: signet-admission

Measured by `+"`make bench-admission`"+` (internal/e2e/admission TestAdmissionBench) on this machine
(2 cores, shared by the webhook, the in-process signet-server and the load generator): the
signet-admission binary over TLS (keep-alive connections), one Pod with one image per
AdmissionReview, POST /validate, a DCT rule requiring targets/alice; %d repositories published
to signet-server (SQLite). Load average at the end of the run: %s (other work on the machine
counts: figures are an upper bound on what the webhook needs).

| measure | figure |
|---|---|
| cold decision (first fetch and verification of a repository's trust data), 1 connection, %d repositories | p50 %s, p99 %s |
| filling the cache with the other %d repositories, 8 connections | %.0f decisions/s |
| warm decision, 1 connection | p50 %s, p99 %s, %.0f decisions/s |
| warm decision, 32 connections | p50 %s, p99 %s, %.0f decisions/s |
| memory, idle (RSS) | %.1f MiB |
| memory with %d repositories cached (RSS; Go heap in use) | %.1f MiB; %.1f MiB |
`, repos, strings.Join(strings.Fields(string(load))[:3], " "), coldN, pct(cold, 50), pct(cold, 99), repos-coldN, float64(repos-coldN)/fillTime.Seconds(),
		pct(w1, 50), pct(w1, 99), r1, pct(w32, 50), pct(w32, 99), r32,
		float64(rssIdle)/1024, repos, float64(rssFull)/1024, heap/(1<<20))
	t.Log("\n" + report)
	if f := os.Getenv("SIGNET_ADMISSION_BENCH_REPORT"); f != "" {
		if err := os.WriteFile(f, []byte(report), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func benchGUN(i int) string { return fmt.Sprintf("bench.example/app/r%05d", i) }

// serverTimestampKey is the timestamp key the server holds for gun; on
// failure it marks the test failed and reports false (it runs in the
// publishing goroutines, which must not call t.Fatal).
func serverTimestampKey(t *testing.T, srv *inproc.Server, gun string) (tuftest.Key, bool) {
	resp, err := tufhttp.Do(t.Context(), srv.Client, http.MethodGet, srv.URL+"/v2/"+gun+"/_trust/tuf/timestamp.key", nil, "")
	if err != nil || resp.Status != http.StatusOK {
		t.Errorf("timestamp.key: %v %v", resp, err)
		return tuftest.Key{}, false
	}
	var k keys.PublicKey
	if err := json.Unmarshal(resp.Body, &k); err != nil {
		t.Error(err)
		return tuftest.Key{}, false
	}
	return tuftest.Key{Key: &k}, true
}

// benchClient keeps its TLS connection open between requests.
func benchClient(t *testing.T, caFile string) *http.Client {
	c := e2etest.HTTPSClient(t, caFile)
	tr := c.Transport.(*http.Transport).Clone()
	tr.DisableKeepAlives = false
	tr.MaxIdleConnsPerHost = 1
	c.Transport = tr
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

var allowedRE = regexp.MustCompile(`"allowed":true`)

// decide posts one review and returns how long the answer took; a
// refusal fails the test.
func decide(t *testing.T, c *http.Client, url string, body []byte) time.Duration {
	start := time.Now()
	resp, err := c.Post(url+"/validate", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0
	}
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if resp.StatusCode != http.StatusOK || !allowedRE.Match(b.Bytes()) {
		t.Errorf("HTTP %d: %.300s", resp.StatusCode, b.String())
	}
	return d
}

// run sends reviews over conns connections (one client each), taking
// bodies from next until it says stop or d passes (d = 0: no limit).
func run(t *testing.T, caFile, url string, conns int, next func(i int) ([]byte, bool), d time.Duration) ([]time.Duration, time.Duration) {
	var mu sync.Mutex
	var all []time.Duration
	var i atomic.Int64
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := benchClient(t, caFile)
			var mine []time.Duration
			for !t.Failed() && (d == 0 || time.Now().Before(deadline)) {
				b, ok := next(int(i.Add(1)) - 1)
				if !ok {
					break
				}
				mine = append(mine, decide(t, client, url, b))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, time.Since(start)
}

func pct(ds []time.Duration, p int) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	d := s[i]
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
}

func rssKB(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

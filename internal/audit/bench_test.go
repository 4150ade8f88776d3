package audit_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/audit/auditclient"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

// Benchmarks of the audit log. `make bench` runs TestAuditBenchmark
// (audit_bench_report_test.go), which measures with fixed counts and
// durations and writes the "Audit log" section of docs/benchmarks.md; the
// Benchmark functions measure the same things under go test's b.N:
//
//	go test -run '^$' -bench . -benchtime 20000x ./internal/audit/
//	SIGNET_AUDIT_BENCH_ENTRIES=1000000 go test -run '^$' -bench Verify -benchtime 1x -timeout 30m ./internal/audit/
//
// Nothing here asserts on speed.

func benchDBs() []struct {
	name string
	url  func(testing.TB) string
} {
	return []struct {
		name string
		url  func(testing.TB) string
	}{
		{"SQLite", sqliteURL},
		{"PostgreSQL", func(t testing.TB) string { return e2etest.PostgresDB(t, "signet_audit_bench_") }},
	}
}

// appendResult is one run of durable appends.
type appendResult struct {
	appended, integrated time.Duration // until the last Append returned; until a checkpoint covered all
	perBatch             float64
}

// measureAppends appends n events from callers concurrent callers (each
// Append returns once its entry is durably stored, group-committed with
// the others), with the integrator running, then waits until a checkpoint
// covers them all.
func measureAppends(t testing.TB, l *audit.Log, s audit.Store, n, callers int) appendResult {
	t.Helper()
	var last, next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	start := time.Now()
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				a, err := l.Append(context.Background(), event(int(i)))
				if err != nil {
					errs <- err
					return
				}
				for {
					cur := last.Load()
					if a.ID <= cur || last.CompareAndSwap(cur, a.ID) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	appended := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitIntegrated(t, l, s, last.Load())
	r := appendResult{appended: appended, integrated: time.Since(start)}
	if st := l.Status(); st.Batches > 0 {
		r.perBatch = float64(st.Integrated) / float64(st.Batches)
	}
	return r
}

// waitIntegrated waits until entry id and everything pending is under a
// signed checkpoint.
func waitIntegrated(t testing.TB, l *audit.Log, s audit.Store, id int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if id > 0 {
		if _, _, err := l.Await(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	for {
		n, err := s.PendingCount(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 && st.CheckpointSize == st.Size {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// appendToCheckpoint appends one event and returns the time from the
// call to Append until a signed checkpoint covers it.
func appendToCheckpoint(t testing.TB, l *audit.Log, i int) time.Duration {
	t.Helper()
	start := time.Now()
	a, err := l.Append(context.Background(), event(i))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Await(context.Background(), a.ID); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkAppend: durable appends per second from 64 concurrent callers
// (group-committed), with the integrator running; then the time until a
// checkpoint covers them all.
func BenchmarkAppend(b *testing.B) {
	for _, db := range benchDBs() {
		b.Run(db.name, func(b *testing.B) {
			s := openStore(b, db.url(b)).AuditLog()
			l := newLog(b, s, newKey(b))
			run(b, l)
			b.ResetTimer()
			r := measureAppends(b, l, s, b.N, 64)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/r.appended.Seconds(), "appends/s")
			b.ReportMetric(float64(b.N)/r.integrated.Seconds(), "integrated/s")
			b.ReportMetric(r.perBatch, "entries/batch")
		})
	}
}

// BenchmarkAppendToCheckpoint: the time from an append to a signed
// checkpoint covering it, one append at a time.
func BenchmarkAppendToCheckpoint(b *testing.B) {
	for _, db := range benchDBs() {
		b.Run(db.name, func(b *testing.B) {
			s := openStore(b, db.url(b)).AuditLog()
			l := newLog(b, s, newKey(b), func(c *audit.Config) { c.Poll = 100 * time.Millisecond })
			run(b, l)
			var lat []time.Duration
			b.ResetTimer()
			for i := range b.N {
				lat = append(lat, appendToCheckpoint(b, l, i))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(msOf(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(msOf(lat[len(lat)*99/100]), "p99-ms")
			b.ReportMetric(msOf(lat[len(lat)-1]), "max-ms")
		})
	}
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// tileBench is a log of 32 full tiles (8,192 entries) served over TLS on
// loopback by the audit handler, with and without its tile cache, and by
// a bare Go TLS server answering the same paths with the same bytes and
// headers: the ceiling of this machine and client.
type tileBench struct {
	signet, signetNoCache, bare string
	paths                       []string // 32 level-0 tiles and 32 entry bundles
	client                      *http.Client
	tileBytes, bundleBytes      int // body bytes of one level-0 tile and (on average) of one entry bundle as sent
}

func newTileBench(t testing.TB) *tileBench {
	t.Helper()
	s := openStore(t, sqliteURL(t)).AuditLog()
	l := newLog(t, s, newKey(t))
	stop := run(t, l)
	awaitAll(t, l, appendN(t, l, 256*32))
	stop()
	tb := &tileBench{}
	for k := range 32 {
		tb.paths = append(tb.paths,
			"/audit/"+audit.Tile{Level: 0, Index: uint64(k), Width: 256}.Path(),
			"/audit/"+audit.Tile{Level: audit.EntriesLevel, Index: uint64(k), Width: 256}.Path())
	}
	serveTLS := func(h http.Handler) (string, *http.Client) {
		srv := httptest.NewTLSServer(h)
		t.Cleanup(srv.Close)
		return srv.URL, srv.Client()
	}
	for _, cache := range []int{64 << 20, 0} {
		h, err := audit.NewHandler(audit.HandlerConfig{Store: s, VerifierKey: l.VerifierKey(), CacheBytes: cache})
		if err != nil {
			t.Fatal(err)
		}
		u, c := serveTLS(http.StripPrefix("/audit", h))
		if cache > 0 {
			tb.signet = u
			// Every httptest TLS server presents the same certificate.
			tr := c.Transport.(*http.Transport).Clone()
			tr.MaxIdleConnsPerHost = 64
			tb.client = &http.Client{Transport: tr}
		} else {
			tb.signetNoCache = u
		}
	}
	// The bare server answers with the bytes and headers signet sent to a
	// client accepting gzip (as Go's client does).
	type answer struct {
		header http.Header
		body   []byte
	}
	answers := map[string]answer{}
	for _, p := range tb.paths {
		req, _ := http.NewRequest("GET", tb.signet+p, nil)
		req.Header.Set("Accept-Encoding", "gzip") // set by hand: the body stays as sent
		resp, err := tb.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %v", p, resp.Status, err)
		}
		answers[p] = answer{resp.Header.Clone(), body}
		if strings.Contains(p, "/entries/") {
			tb.bundleBytes += len(body)
		} else {
			tb.tileBytes = len(body)
		}
	}
	tb.bundleBytes /= 32
	tb.bare, _ = serveTLS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		for _, k := range []string{"Content-Type", "Cache-Control", "Content-Encoding", "Vary"} {
			if v := a.header.Get(k); v != "" {
				w.Header().Set(k, v)
			}
		}
		w.Write(a.body)
	}))
	return tb
}

// get fetches path from base and reads the whole body.
func (tb *tileBench) get(base, path string) error {
	resp, err := tb.client.Get(base + path)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return nil
}

// measure runs conns closed-loop clients against base for d and returns
// completed requests per second.
func (tb *tileBench) measure(t testing.TB, base string, conns int, d time.Duration) float64 {
	t.Helper()
	var n, k atomic.Int64
	var failed atomic.Value
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				p := tb.paths[int(k.Add(1))%len(tb.paths)]
				if err := tb.get(base, p); err != nil {
					failed.Store(err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	return float64(n.Load()) / time.Since(start).Seconds()
}

// BenchmarkTileGET: full tiles and entry bundles (half each) served per
// second to concurrent clients over TLS on loopback, by signet's handler
// with and without its tile cache and by a bare Go TLS server serving the
// same bytes (the ceiling), in the same run.
func BenchmarkTileGET(b *testing.B) {
	tb := newTileBench(b)
	for _, srv := range []struct{ name, url string }{
		{"signet/cache=64MiB", tb.signet},
		{"signet/cache=0", tb.signetNoCache},
		{"bare-TLS", tb.bare},
	} {
		b.Run(srv.name, func(b *testing.B) {
			var k atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := tb.get(srv.url, tb.paths[int(k.Add(1))%len(tb.paths)]); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}

// verifyBench is a log of a given size served over TLS on loopback, and
// signet's client for it (what `signet audit verify` runs).
type verifyBench struct {
	l      *audit.Log
	s      audit.Store
	client *auditclient.Client
	fill   time.Duration
}

func newVerifyBench(t testing.TB, total int) *verifyBench {
	t.Helper()
	s := openStore(t, sqliteURL(t)).AuditLog()
	l := newLog(t, s, newKey(t), func(c *audit.Config) { c.MaxBatch = 16384 })
	run(t, l)
	start := time.Now()
	bulkAppend(t, l, s, 0, total)
	vb := &verifyBench{l: l, s: s, fill: time.Since(start)}
	h, err := audit.NewHandler(audit.HandlerConfig{Store: s, VerifierKey: l.VerifierKey(), CacheBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.StripPrefix("/audit", h))
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	if vb.client, err = auditclient.New(srv.URL+"/audit", l.VerifierKey(), &http.Client{Transport: tr}); err != nil {
		t.Fatal(err)
	}
	return vb
}

// verify runs the client from prev (nil: from scratch) and returns the new
// state, its report and the time it took.
func (vb *verifyBench) verify(t testing.TB, prev *auditclient.State) (*auditclient.State, auditclient.Report, time.Duration) {
	t.Helper()
	start := time.Now()
	st, rep, err := vb.client.Verify(context.Background(), prev)
	if err != nil {
		t.Fatal(err)
	}
	return st, rep, time.Since(start)
}

func verifyEntries() int {
	total := 100_000
	if v := os.Getenv("SIGNET_AUDIT_BENCH_ENTRIES"); v != "" {
		fmt.Sscan(v, &total)
	}
	return total
}

// BenchmarkVerify: signet's client verifying a log of
// SIGNET_AUDIT_BENCH_ENTRIES entries (default 100,000) over TLS on
// loopback: "full" from scratch, "incremental" from the previous
// checkpoint after 1,000 more entries (appended outside the timer).
func BenchmarkVerify(b *testing.B) {
	total := verifyEntries()
	vb := newVerifyBench(b, total)
	b.Logf("filled %d entries in %v", total, vb.fill)
	var st *auditclient.State
	b.Run("full", func(b *testing.B) {
		for range b.N {
			var rep auditclient.Report
			st, rep, _ = vb.verify(b, nil)
			b.ReportMetric(float64(rep.Requests), "requests")
			b.ReportMetric(float64(rep.Size), "entries")
		}
	})
	next := total
	b.Run("incremental", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			bulkAppend(b, vb.l, vb.s, next, 1000)
			next += 1000
			b.StartTimer()
			var rep auditclient.Report
			st, rep, _ = vb.verify(b, st)
			b.ReportMetric(float64(rep.Requests), "requests")
			b.ReportMetric(float64(rep.Checked), "entries")
		}
	})
}

// bulkAppend appends n events (numbered from first) in large batches and
// waits until a checkpoint covers them.
func bulkAppend(t testing.TB, l *audit.Log, s audit.Store, first, n int) {
	t.Helper()
	ctx := context.Background()
	const batch = 5000
	for done := 0; done < n; done += batch {
		m := min(batch, n-done)
		entries := make([][]byte, m)
		for i := range entries {
			e := event(first + done + i)
			e.Time = time.Now()
			var err error
			if entries[i], err = e.Encode(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.AddPending(ctx, entries); err != nil {
			t.Fatal(err)
		}
		l.Kick()
	}
	waitIntegrated(t, l, s, 0)
}

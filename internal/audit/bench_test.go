package audit_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/audit/auditclient"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

// Benchmarks of the audit log (figures for docs/benchmarks.md):
//
//	go test -run '^$' -bench . -benchtime 20000x ./internal/audit/
//	SIGNET_AUDIT_BENCH_ENTRIES=1000000 go test -run '^$' -bench Verify -benchtime 1x -timeout 30m ./internal/audit/

func benchDBs(b *testing.B) []struct {
	name string
	url  func(testing.TB) string
} {
	return []struct {
		name string
		url  func(testing.TB) string
	}{
		{"SQLite", sqliteURL},
		{"Postgres", func(t testing.TB) string { return e2etest.PostgresDB(t, "signet_audit_bench_") }},
	}
}

// BenchmarkAppend: durable appends per second from 64 concurrent callers
// (group-committed), with the integrator running; then the time until a
// checkpoint covers them all.
func BenchmarkAppend(b *testing.B) {
	for _, db := range benchDBs(b) {
		b.Run(db.name, func(b *testing.B) {
			s := openStore(b, db.url(b)).AuditLog()
			l := newLog(b, s, newKey(b))
			run(b, l)
			var last atomic.Int64
			var i atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					a, err := l.Append(context.Background(), event(int(i.Add(1))))
					if err != nil {
						b.Error(err)
						return
					}
					for {
						cur := last.Load()
						if a.ID <= cur || last.CompareAndSwap(cur, a.ID) {
							break
						}
					}
				}
			})
			appended := time.Since(start)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if _, _, err := l.Await(ctx, last.Load()); err != nil {
				b.Fatal(err)
			}
			for {
				n, _ := s.PendingCount(ctx)
				st, _ := s.State(ctx)
				if n == 0 && st.CheckpointSize == st.Size {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			all := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/appended.Seconds(), "appends/s")
			b.ReportMetric(float64(b.N)/all.Seconds(), "integrated/s")
			st := l.Status()
			if st.Batches > 0 {
				b.ReportMetric(float64(st.Integrated)/float64(st.Batches), "entries/batch")
			}
		})
	}
}

// BenchmarkAppendToCheckpoint: the time from an append's return to a
// signed checkpoint covering it, one append at a time.
func BenchmarkAppendToCheckpoint(b *testing.B) {
	for _, db := range benchDBs(b) {
		b.Run(db.name, func(b *testing.B) {
			s := openStore(b, db.url(b)).AuditLog()
			l := newLog(b, s, newKey(b), func(c *audit.Config) { c.Poll = 100 * time.Millisecond })
			run(b, l)
			var lat []time.Duration
			b.ResetTimer()
			for i := range b.N {
				a, err := l.Append(context.Background(), event(i))
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if _, _, err := l.Await(context.Background(), a.ID); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
		})
	}
}

// BenchmarkTileGET: full tiles served per second (a mix of hash tiles and
// entry bundles), 32 concurrent clients over loopback HTTP.
func BenchmarkTileGET(b *testing.B) {
	s := openStore(b, sqliteURL(b)).AuditLog()
	l := newLog(b, s, newKey(b))
	stop := run(b, l)
	awaitAll(b, l, appendN(b, l, 256*32))
	stop()
	for _, cache := range []int{0, 64 << 20} {
		b.Run(fmt.Sprintf("cache=%dMiB", cache>>20), func(b *testing.B) {
			h, err := audit.NewHandler(audit.HandlerConfig{Store: s, VerifierKey: l.VerifierKey(), CacheBytes: cache})
			if err != nil {
				b.Fatal(err)
			}
			srv := serveHandler(b, h)
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			hc := &http.Client{Transport: tr}
			defer tr.CloseIdleConnections()
			var n atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := n.Add(1)
					path := audit.Tile{Level: 0, Index: uint64(k % 32), Width: 256}.Path()
					if k%2 == 0 {
						path = audit.Tile{Level: audit.EntriesLevel, Index: uint64(k % 32), Width: 256}.Path()
					}
					resp, err := hc.Get(srv + "/audit/" + path)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("GET %s: %s", path, resp.Status)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}

// BenchmarkVerify: signet's client verifying a log of
// SIGNET_AUDIT_BENCH_ENTRIES entries (default 100,000) over loopback HTTP,
// from scratch and then incrementally after 1,000 more.
func BenchmarkVerify(b *testing.B) {
	total := 100_000
	if v := os.Getenv("SIGNET_AUDIT_BENCH_ENTRIES"); v != "" {
		fmt.Sscan(v, &total)
	}
	s := openStore(b, sqliteURL(b)).AuditLog()
	l := newLog(b, s, newKey(b), func(c *audit.Config) { c.MaxBatch = 16384 })
	stop := run(b, l)
	fill := time.Now()
	bulkAppend(b, l, s, total)
	b.Logf("filled %d entries in %v", total, time.Since(fill))
	checkStart := time.Now()
	if err := l.Check(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Logf("self-check of %d entries: %v", total, time.Since(checkStart))
	h, err := audit.NewHandler(audit.HandlerConfig{Store: s, VerifierKey: l.VerifierKey(), CacheBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	srv := serveHandler(b, h)
	c, err := auditclient.New(srv+"/audit", l.VerifierKey(), &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		st, rep, err := c.Verify(context.Background(), nil)
		if err != nil {
			b.Fatal(err)
		}
		full := time.Since(start)
		b.StopTimer()
		bulkAppend(b, l, s, 1000)
		b.StartTimer()
		start = time.Now()
		_, rep2, err := c.Verify(context.Background(), st)
		if err != nil {
			b.Fatal(err)
		}
		incr := time.Since(start)
		b.ReportMetric(full.Seconds(), "full-s")
		b.ReportMetric(float64(rep.Requests), "full-requests")
		b.ReportMetric(incr.Seconds()*1000, "incremental-ms")
		b.ReportMetric(float64(rep2.Requests), "incremental-requests")
		b.ReportMetric(float64(rep.Size), "entries")
	}
	b.StopTimer()
	stop()
}

// bulkAppend appends n events in large batches and waits until a
// checkpoint covers them.
func bulkAppend(b *testing.B, l *audit.Log, s audit.Store, n int) {
	b.Helper()
	ctx := context.Background()
	const batch = 5000
	for done := 0; done < n; done += batch {
		m := min(batch, n-done)
		entries := make([][]byte, m)
		for i := range entries {
			e := event(done + i)
			e.Time = time.Now()
			var err error
			if entries[i], err = e.Encode(); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := s.AddPending(ctx, entries); err != nil {
			b.Fatal(err)
		}
		l.Kick()
	}
	for {
		p, _ := s.PendingCount(ctx)
		st, _ := s.State(ctx)
		if p == 0 && st.CheckpointSize == st.Size {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func serveHandler(b *testing.B, h http.Handler) string {
	srv := newHTTPServer(b, http.StripPrefix("/audit", h))
	return srv
}

package audit_test

import (
	"bytes"
	"fmt"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// auditBenchHeading starts the section of docs/benchmarks.md that
// TestAuditBenchmark writes.
const auditBenchHeading = "## Audit log:"

// TestAuditBenchmark measures the audit log and writes the "Audit log"
// section of SIGNET_AUDIT_BENCH_REPORT (make bench). It runs only with
// SIGNET_AUDIT_BENCH=1; every part has a fixed count or duration. Knobs:
// SIGNET_AUDIT_BENCH_ENTRIES (log size for verify, default 1,000,000) and
// SIGNET_AUDIT_BENCH_REPS (repetitions, default 3; the full verify of
// 1,000,000 entries runs once per repetition too).
func TestAuditBenchmark(t *testing.T) {
	if os.Getenv("SIGNET_AUDIT_BENCH") == "" {
		t.Skip("set SIGNET_AUDIT_BENCH=1 (make bench) to measure the audit log")
	}
	const (
		appends    = 20_000
		callers    = 64
		latSamples = 200
		getConns   = 32
		getFor     = 5 * time.Second
	)
	reps := envInt("SIGNET_AUDIT_BENCH_REPS", 3)
	total := envInt("SIGNET_AUDIT_BENCH_ENTRIES", 1_000_000)
	loadBefore := e2etest.LoadAverage()

	// Appends/s and append→checkpoint latency, per database.
	type dbRow struct {
		name                  string
		appendRate, integRate []float64
		perBatch              []float64
		p50, p99, max         time.Duration
	}
	var dbRows []dbRow
	for _, db := range benchDBs() {
		r := dbRow{name: db.name}
		for rep := range reps {
			s := openStore(t, db.url(t)).AuditLog()
			l := newLog(t, s, newKey(t))
			stop := run(t, l)
			res := measureAppends(t, l, s, appends, callers)
			stop()
			r.appendRate = append(r.appendRate, appends/res.appended.Seconds())
			r.integRate = append(r.integRate, appends/res.integrated.Seconds())
			r.perBatch = append(r.perBatch, res.perBatch)
			t.Logf("%s appends rep %d: %.0f/s appended, %.0f/s integrated, %.0f entries/batch",
				db.name, rep+1, appends/res.appended.Seconds(), appends/res.integrated.Seconds(), res.perBatch)
		}
		s := openStore(t, db.url(t)).AuditLog()
		l := newLog(t, s, newKey(t)) // default Poll: the latency comes from Append's kick
		stop := run(t, l)
		appendToCheckpoint(t, l, -1) // warm-up
		var lat []time.Duration
		for i := range latSamples {
			lat = append(lat, appendToCheckpoint(t, l, i))
		}
		stop()
		slices.Sort(lat)
		r.p50, r.p99, r.max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
		t.Logf("%s append→checkpoint: p50 %.1f ms, p99 %.1f ms, max %.1f ms", db.name, msOf(r.p50), msOf(r.p99), msOf(r.max))
		dbRows = append(dbRows, r)
	}

	// Tile GETs against the bare TLS ceiling, interleaved.
	tb := newTileBench(t)
	gets := map[string][]float64{}
	servers := []struct{ name, url string }{
		{"signet, tile cache 64 MiB (default)", tb.signet},
		{"signet, no tile cache", tb.signetNoCache},
		{"bare Go TLS, same bytes", tb.bare},
	}
	tb.measure(t, tb.signet, getConns, time.Second) // warm-up: connections, cache
	tb.measure(t, tb.bare, getConns, time.Second)
	for rep := range reps {
		for _, srv := range servers {
			rate := tb.measure(t, srv.url, getConns, getFor)
			gets[srv.name] = append(gets[srv.name], rate)
			t.Logf("tile GET rep %d, %s: %.0f req/s", rep+1, srv.name, rate)
		}
	}

	// Verify: from scratch, then incrementally after 1,000 more entries.
	vb := newVerifyBench(t, total)
	t.Logf("filled %d entries in %v", total, vb.fill)
	var full, incr []time.Duration
	var fullReq, incrReq, fullBytes, incrBytes int64
	next := total
	for rep := range reps {
		st, r, d := vb.verify(t, nil)
		full = append(full, d)
		fullReq, fullBytes = r.Requests, r.Bytes
		t.Logf("verify rep %d: full %d entries in %v (%d requests, %d bytes)", rep+1, r.Size, d, r.Requests, r.Bytes)
		bulkAppend(t, vb.l, vb.s, next, 1000)
		next += 1000
		_, r, d = vb.verify(t, st)
		incr = append(incr, d)
		incrReq, incrBytes = r.Requests, r.Bytes
		t.Logf("verify rep %d: incremental %d→%d in %v (%d requests, %d bytes)", rep+1, r.OldSize, r.Size, d, r.Requests, r.Bytes)
	}
	loadAfter := e2etest.LoadAverage()

	var sec bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&sec, format, args...) }
	p("%s appends/s, append to checkpoint, tile GETs, verify\n\n", auditBenchHeading)
	p("Written by `make bench` (`SIGNET_AUDIT_BENCH=1 go test -run TestAuditBenchmark ./internal/audit/`) on %s, %d cores, %s;\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.Version())
	p("load average %s before and %s after (other work on the machine shares its cores: the figures are what the\n", loadBefore, loadAfter)
	p("log got, not what it needs). Medians of %d repetitions; the log's own code (`internal/audit`) in one process\n", reps)
	p("with SQLite in a file (WAL, synchronous=FULL) or PostgreSQL on loopback (`SIGNET_TEST_POSTGRES_URL`).\n\n")
	p("**Appends** (aim ≥ 5,000/s batched): %s events appended by %d concurrent callers; `Append` returns once the\n", thousands(appends), callers)
	p("entry is committed to the database (callers arriving during a commit share the next one), with the integrator\n")
	p("running beside them. *Appended/s* counts until the last `Append` returned, *checkpointed/s* until a signed\n")
	p("checkpoint covered all of them. Then **append → checkpoint**: %d appends one at a time, each from the call to\n", latSamples)
	p("`Append` until `Await` sees a signed checkpoint covering it (integration, tiles, signature, all stored).\n\n")
	p("| database | appended/s | all runs | checkpointed/s | vs 5,000/s | entries/batch | append → checkpoint p50 / p99 / max ms |\n")
	p("|---|---:|---|---:|---:|---:|---:|\n")
	for _, r := range dbRows {
		a := median(r.appendRate)
		p("| %s | %.0f | %s | %.0f | %.2f× | %.0f | %.1f / %.1f / %.1f |\n", r.name, a, joinRates(r.appendRate), median(r.integRate), a/5000,
			median(r.perBatch), msOf(r.p50), msOf(r.p99), msOf(r.max))
	}
	p("\n**Tile GETs**: a log of 8,192 entries (32 full tiles); %d keep-alive clients over TLS (HTTP/1.1, the same\n", getConns)
	p("certificate for every server) fetch its 32 level-0 tiles and 32 entry bundles in turn (entry bundles gzip, as\n")
	p("accepted by Go's client; %s bytes per tile, %s per bundle on average), %s per server, interleaved. The bare\n",
		thousands(tb.tileBytes), thousands(tb.bundleBytes), getFor)
	p("server is a plain Go `net/http` TLS server answering the same paths with the bytes and headers signet sent: the\n")
	p("ceiling of this machine and client. The clients run in the same process as the servers, on the same 2 cores.\n\n")
	p("| server | req/s | all runs | vs bare |\n|---|---:|---|---:|\n")
	bare := median(gets[servers[2].name])
	for _, srv := range servers {
		m := median(gets[srv.name])
		p("| %s | %.0f | %s | %.2f× |\n", srv.name, m, joinRates(gets[srv.name]), m/bare)
	}
	p("\n**Verify**: signet's client (`auditclient.Verify`, what `signet audit verify` runs) against a log of %s\n", thousands(total))
	p("entries served over TLS on loopback (tile cache 64 MiB): *full* from no remembered checkpoint (checkpoint signature,\n")
	p("every entry bundle against its level-0 tile, every tile against the ones below, the root against the checkpoint);\n")
	p("*incremental* from the checkpoint of the previous run after 1,000 more entries (new tiles and a consistency\n")
	p("proof only). Each repetition runs both, one after the other, on the same log; filling it (5,000 entries per\n")
	p("insert, integrated in batches of up to 16,384) took %.0f s. The time is the client's and the server's\n", vb.fill.Seconds())
	p("together (same process, same cores); requests and bytes are of the last run.\n\n")
	p("| run | entries | time (median) | all runs | requests | body bytes (decompressed) |\n|---|---:|---:|---|---:|---:|\n")
	if len(full) > 1 {
		// The first run is reported apart: it was consistently slower (cold
		// database pages and heap), and a user's first verify is like it.
		p("| full, first run | %s | %.2f s | %s | %d | %s |\n", thousands(total), full[0].Seconds(), joinDur(full[:1], "s"), fullReq, thousands(int(fullBytes)))
		p("| full, runs 2–%d | %s | %.2f s | %s | %d | %s |\n", len(full), thousands(total), median(secs(full[1:])), joinDur(full[1:], "s"), fullReq, thousands(int(fullBytes)))
	} else {
		p("| full | %s | %.2f s | %s | %d | %s |\n", thousands(total), median(secs(full)), joinDur(full, "s"), fullReq, thousands(int(fullBytes)))
	}
	p("| incremental | +1,000 | %.1f ms | %s | %d | %s |\n\n", median(secs(incr))*1000, joinDur(incr, "ms"), incrReq, thousands(int(incrBytes)))
	if out := os.Getenv("SIGNET_AUDIT_BENCH_REPORT"); out != "" {
		e2etest.WriteReportSection(t, out, auditBenchHeading, sec.Bytes())
	}
	t.Log("\n" + sec.String())
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func secs(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

func joinRates(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(parts, ", ")
}

func joinDur(ds []time.Duration, unit string) string {
	var parts []string
	for _, d := range ds {
		if unit == "ms" {
			parts = append(parts, fmt.Sprintf("%.1f", msOf(d)))
		} else {
			parts = append(parts, fmt.Sprintf("%.2f", d.Seconds()))
		}
	}
	return strings.Join(parts, ", ") + " " + unit
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

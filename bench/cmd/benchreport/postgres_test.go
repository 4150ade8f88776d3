package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-trust/signet/bench/internal/result"
)

// TestPostgresSection: -only postgres adds or replaces its section, keeps
// the rest, and judges growth by the exponent of latency against size.
func TestPostgresSection(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, recs ...result.Record) string {
		var b bytes.Buffer
		for _, r := range recs {
			r.Write(&b)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	report := filepath.Join(dir, "b.md")
	main := write("main.jsonl", result.Record{Kind: result.KindPublish, Target: "reference", Workload: "init+publish", PerSecond: 50, Completed: true})
	get := func(target, w string, ps, p50 float64, body int64) result.Record {
		return result.Record{Kind: result.KindGet, Target: target, Workload: w, PerSecond: ps, P50Ms: p50, P99Ms: 2 * p50, BodyBytes: body, Completed: true}
	}
	pgRecs := write("pg.jsonl",
		get("signet", "timestamp", 10000, 1, 495), get("reference", "timestamp", 1000, 5, 495),
		result.Record{Kind: result.KindPublish, Target: "signet", Workload: "init+publish", PerSecond: 60, Verified: 600, Completed: true},
		result.Record{Kind: result.KindPublish, Target: "reference", Workload: "init+publish", PerSecond: 30, Verified: 300, Completed: true},
		get("replicas-1", "timestamp", 10000, 1, 495), get("replicas-3", "timestamp", 12000, 1, 495),
		get("repos-1000", "timestamp", 9000, 1, 495), get("repos-100000", "timestamp", 8000, 1.2, 495),
		get("repos-1000", "targets", 9000, 1, 2150), get("repos-100000", "targets", 100, 1000, 2150),
		get("tags-1000", "targets", 1000, 1, 94000), get("tags-100000", "targets", 10, 100, 9400000))
	run := func(args ...string) string {
		t.Helper()
		var stderr bytes.Buffer
		if code := Main(append(args, "-out", report), &stderr, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, &stderr)
		}
		b, _ := os.ReadFile(report)
		return string(b)
	}
	run("-in", main)
	md := run("-in", pgRecs, "-only", "postgres", "-pg-note", "a note")
	for _, want := range []string{"| reference | 50.0 |", postgresHeading, "| `timestamp` | 495 | 10000 | 1000 | 10.00× |",
		"signet/reference publishes/s: 2.00×", "| 3 | 12000 |", "1.20×", "GET timestamp, random repository: flat",
		"GET targets, random repository: **super-linear**", "- GET targets: linear or better (k = 1.00)", "- a note"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	md = run("-in", main) // a full report of the other parts keeps the section
	if strings.Count(md, postgresHeading) != 1 || !strings.Contains(md, "| 3 | 12000 |") {
		t.Errorf("full report dropped or doubled the PostgreSQL section:\n%s", md)
	}
	md = run("-in", pgRecs, "-only", "postgres")
	if strings.Count(md, postgresHeading) != 1 || !strings.Contains(md, "| reference | 50.0 |") || strings.Contains(md, "a note") {
		t.Errorf("second -only postgres:\n%s", md)
	}
	if k := exponent(1, 100, 1000, 100000); math.Abs(k-1) > 1e-9 {
		t.Errorf("exponent = %v, want 1", k)
	}
}

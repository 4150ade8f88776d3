package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-trust/signet/bench/internal/result"
)

func TestReportMediansAndRatios(t *testing.T) {
	var in bytes.Buffer
	for i, rps := range []float64{900, 1000, 5000} { // median 1000, not the mean
		result.Record{Kind: result.KindGet, Target: "signet", Workload: "timestamp", Rep: i + 1, PerSecond: rps, BodyBytes: 495, Completed: true}.Write(&in)
	}
	for i, rps := range []float64{500, 400, 600} {
		result.Record{Kind: result.KindGet, Target: "reference", Workload: "timestamp", Rep: i + 1, PerSecond: rps, Completed: true}.Write(&in)
	}
	result.Record{Kind: result.KindGet, Target: "bare", Workload: "timestamp", PerSecond: 4000, Completed: true}.Write(&in)
	result.Record{Kind: result.KindPublish, Target: "reference", Workload: "init+publish", PerSecond: 50, Verified: 500, Completed: true}.Write(&in)

	dir := t.TempDir()
	src, dst := filepath.Join(dir, "r.jsonl"), filepath.Join(dir, "b.md")
	if err := os.WriteFile(src, in.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := Main([]string{"-in", src, "-out", dst, "-nproc", "2", "-note", "hello"}, &stderr, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	md, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| `timestamp` | 495 | 1000 | 500 | 4000 | 2.00× | 0.25× | 0.12× |",
		"| signet | — |",
		"| reference | 50.0 |",
		"- hello",
		"| `timestamp` | 900, 1000, 5000 | 500, 400, 600 | 4000 |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

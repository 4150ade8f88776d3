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
	result.Record{Kind: result.KindPublish, Target: "reference", Workload: "init+publish", PerSecond: 50, Requests: 500, ServerCPUMs: 2000, Verified: 500, Completed: true}.Write(&in)
	for i, cpu := range []float64{100, 150, 900} { // 1, 1.5, 9 ms per publish: median 1.5
		result.Record{Kind: result.KindPublish, Target: "signet", Workload: "init+publish", Rep: i + 1, PerSecond: 10, Requests: 100, ServerCPUMs: cpu, Verified: 100, Completed: true}.Write(&in)
	}

	// GETs on new connections: server CPU 0.1, 0.2 and 0.08 ms per connection.
	for srv, cpu := range map[string]float64{"signet": 100, "reference": 200, "bare": 80} {
		result.Record{Kind: result.KindConnect, Target: srv, Workload: "timestamp", PerSecond: 700, Requests: 1000, ServerCPUMs: cpu, Completed: true}.Write(&in)
	}

	dir := t.TempDir()
	src, dst := filepath.Join(dir, "r.jsonl"), filepath.Join(dir, "b.md")
	if err := os.WriteFile(src, in.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	findings := filepath.Join(dir, "findings.md")
	if err := os.WriteFile(findings, []byte("TLS handshakes cost most.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := Main([]string{"-in", src, "-out", dst, "-nproc", "2", "-note", "hello", "-findings", findings}, &stderr, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	md, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| `timestamp` | 495 | 1000 | 500 | 4000 | 2.00× | 0.25× | 0.12× |",
		"| signet | 10.0 | 0.00 / 0.00 | 1.50 | 0 | 0 | 300 / 0 |",
		"| reference | 50.0 | 0.00 / 0.00 | 4.00 |",
		"signet/reference server CPU per publish: 0.38×",
		"(signet: 1.00, 1.50, 9.00; reference: 4.00 ms per publish)",
		"\n## Profile findings\n\nTLS handshakes cost most.\n",
		"- hello",
		"| `timestamp` | 900, 1000, 5000 | 500, 400, 600 | 4000 |",
		"| signet | 700 | 100 |\n| reference | 700 | 200 |\n| bare | 700 | 80 |",
		"that is 0.40 ms of server CPU per publish",
		"0.10× the reference's CPU per publish",
		"signet spends 1.00 ms per publish",
		"and the reference 3.00 ms.",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func clientRecords(t *testing.T) []byte {
	t.Helper()
	var in bytes.Buffer
	for i, ms := range []float64{120, 100, 900, 110, 105} { // median 110
		result.Record{Kind: result.KindClient, Target: "signet", Workload: "signet list", Rep: i + 1, WallMs: ms, CPUMs: ms, MaxRSSKB: 40 << 10, Tags: 10000, Completed: true}.Write(&in)
		result.Record{Kind: result.KindClient, Target: "signet", Workload: "notary list", Rep: i + 1, WallMs: 2 * ms, Tags: 10000, Completed: true}.Write(&in)
		result.Record{Kind: result.KindClient, Target: "signet", Workload: "signet trust inspect", Rep: i + 1, WallMs: ms, Tags: 10000, Completed: true}.Write(&in)
		result.Record{Kind: result.KindClient, Target: "signet", Workload: "docker trust inspect", Rep: i + 1, WallMs: ms, Tags: 10000, Completed: true}.Write(&in)
	}
	result.Record{Kind: result.KindClient, Target: "signet", Workload: "docker trust inspect", Rep: 6, Errors: 1, FirstErr: "boom | bang"}.Write(&in)
	return in.Bytes()
}

func TestClientSection(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "r.jsonl"), filepath.Join(dir, "b.md")
	if err := os.WriteFile(src, clientRecords(t), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := Main([]string{"-in", src, "-out", dst, "-client-tags", "10000", "-client-reps", "5"}, &stderr, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	md, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\n## Client: 10,000 tags\n",
		"| signet | 110, 40 MB | 220, 0 MB | 0.50× | 110, 0 MB | 110 (1 failed), 0 MB | 1.00× |",
		"Aim (issue 12): signet at most 0.25× the time of the client it replaces. Not met by `signet list` on signet (0.50×), `signet trust inspect` on signet (1.00×).",
		"| `signet list` | signet | 110 | 110 | 40 | 120, 100, 900, 110, 105 | 0 |",
		"- first error, docker trust inspect on signet: boom \\| bang",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Index(string(md), "## Client:") > strings.Index(string(md), "## Raw figures") {
		t.Error("client section after the raw figures")
	}
}

func TestOnlyClientKeepsTheRest(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "r.jsonl"), filepath.Join(dir, "b.md")
	if err := os.WriteFile(src, clientRecords(t), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, doc string }{
		{"absent", "# B\n\n## Publish\n\npub\n\n## Notes\n\n- n\n\n## Raw figures\n\nraw\n"},
		{"present", "# B\n\n## Publish\n\npub\n\n## Client: 5 tags\n\nOLDFIG\n\n## Notes\n\n- n\n\n## Raw figures\n\nraw\n"},
		{"last", "# B\n\n## Publish\n\npub\n\n## Notes\n\n- n\n\n## Raw figures\n\nraw\n\n## Client: 5 tags\n\nOLDFIG\n"},
	} {
		if err := os.WriteFile(dst, []byte(tc.doc), 0o600); err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		if code := Main([]string{"-in", src, "-out", dst, "-only", "client", "-client-tags", "10000"}, &stderr, &stderr); code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.name, code, stderr.String())
		}
		md, _ := os.ReadFile(dst)
		s := string(md)
		if strings.Contains(s, "OLDFIG") || strings.Count(s, "## Client:") != 1 || !strings.Contains(s, "## Client: 10,000 tags\n\nWall time") {
			t.Errorf("%s: client section not replaced:\n%s", tc.name, s)
		}
		for _, keep := range []string{"# B\n\n## Publish\n\npub\n\n", "## Notes\n\n- n\n\n", "## Raw figures\n\nraw\n"} {
			if !strings.Contains(s, keep) {
				t.Errorf("%s: lost %q:\n%s", tc.name, keep, s)
			}
		}
		if tc.name != "last" && !(strings.Index(s, "## Client:") < strings.Index(s, "## Notes")) {
			t.Errorf("%s: client section not before the notes:\n%s", tc.name, s)
		}
	}
}

// TestFullReportKeepsOtherBenchmarks: a report of the server loads keeps
// the sections the other benchmarks wrote (an earlier version dropped the
// audit log's and the dashboard's).
func TestFullReportKeepsOtherBenchmarks(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "r.jsonl"), filepath.Join(dir, "b.md")
	var in bytes.Buffer
	result.Record{Kind: result.KindGet, Target: "signet", Workload: "timestamp", PerSecond: 1000, Completed: true}.Write(&in)
	if err := os.WriteFile(src, in.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var old strings.Builder
	old.WriteString("# Benchmarks\n\n## Publish\n\nOLD\n")
	sections := []string{"## Signer: s\n\nSIGNER\n", "## PostgreSQL: p\n\nPOSTGRES\n", "## Signing service: x\n\nSERVICE\n",
		"## Audit log: a\n\nAUDIT\n", "## Web dashboard: d\n\nDASHBOARD\n"}
	for _, sec := range sections {
		old.WriteString("\n" + sec)
	}
	if err := os.WriteFile(dst, []byte(old.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := Main([]string{"-in", src, "-out", dst, "-nproc", "2"}, &stderr, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	md, _ := os.ReadFile(dst)
	for _, sec := range sections {
		if !strings.Contains(string(md), sec) {
			t.Errorf("the report lost %q:\n%s", sec, md)
		}
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-trust/signet/bench/internal/result"
)

// TestSignerSection: -only signer adds or replaces its section and keeps
// the rest; a full report without signer figures keeps the section.
func TestSignerSection(t *testing.T) {
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
	sig := write("sig.jsonl",
		result.Record{Kind: result.KindSign, Target: "software", Workload: "ecdsa", PerSecond: 4000, Completed: true},
		result.Record{Kind: result.KindSign, Target: "softhsm", Workload: "ecdsa", PerSecond: 1000, Completed: true},
		result.Record{Kind: result.KindPublish, Target: "embedded", Workload: "init+publish", PerSecond: 20, Completed: true},
		result.Record{Kind: result.KindPublish, Target: "remote", Workload: "init+publish", PerSecond: 18, Completed: true})
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
	md := run("-in", sig, "-only", "signer")
	for _, want := range []string{"| reference | 50.0 |", signerHeading, "| software | ecdsa | 4000 |", "ECDSA softhsm/software: 0.25×", "remote/embedded publishes/s: 0.90×"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	md = run("-in", main) // a full report of the other parts keeps the signer section
	if !strings.Contains(md, "| software | ecdsa | 4000 |") || strings.Count(md, signerHeading) != 1 {
		t.Errorf("full report dropped or doubled the signer section:\n%s", md)
	}
	md = run("-in", sig, "-only", "signer")
	if strings.Count(md, signerHeading) != 1 || !strings.Contains(md, "| reference | 50.0 |") {
		t.Errorf("second -only signer:\n%s", md)
	}
}

package e2etest

import (
	"os"
	"strings"
	"testing"
)

// LoadAverage returns the 1, 5 and 15 minute load averages of the machine
// ("0.52 0.61 0.70"), or "unknown": benchmark reports print it before and
// after a run, since other work on a shared machine moves every figure.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if err != nil || len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// WriteReportSection puts sec into the Markdown file at path as the
// section that starts with the line beginning with heading (a "## "
// heading), replacing that section up to the next "## " heading, or
// appending it when the file has none; a missing file is created. The
// benchmarks of `make bench` write their sections of docs/benchmarks.md
// with it.
func WriteReportSection(t testing.TB, path, heading string, sec []byte) {
	t.Helper()
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, SpliceSection(old, heading, sec), 0o644); err != nil {
		t.Fatal(err)
	}
}

// SpliceSection is WriteReportSection on bytes: doc with the section
// starting at the line that begins with heading replaced by sec (up to
// the next "## " heading), or sec appended after a blank line.
func SpliceSection(doc []byte, heading string, sec []byte) []byte {
	lines := strings.SplitAfter(string(doc), "\n")
	start, end := -1, len(lines)
	for i, l := range lines {
		if start < 0 && strings.HasPrefix(l, heading) {
			start = i
			continue
		}
		if start >= 0 && strings.HasPrefix(l, "## ") {
			end = i
			break
		}
	}
	if start < 0 {
		out := strings.TrimRight(string(doc), "\n")
		if out != "" {
			out += "\n\n"
		}
		return []byte(out + string(sec))
	}
	return []byte(strings.Join(lines[:start], "") + string(sec) + strings.Join(lines[end:], ""))
}

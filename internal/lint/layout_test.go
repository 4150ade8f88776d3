package lint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeLayoutNamesEveryPackage: the README's "Repository layout"
// block names every package of the module under internal/ and cmd/, and
// nothing that is not one, so a newcomer's map of the code is complete and
// current.
func TestReadmeLayoutNamesEveryPackage(t *testing.T) {
	t.Parallel()
	const rule = "README.md's Repository layout block lists every package under internal/ and cmd/ at the start of a line"
	const why = "the README is where a newcomer finds their way (STYLE.md: keep the README honest); a package missing from it is code no one was told about"
	m, err := modInfo()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(m.Dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), "## Repository layout\n")
	if !ok {
		t.Fatal(violation("README.md", "has no \"## Repository layout\" section", rule, why))
	}
	_, block, ok := strings.Cut(after, "```text\n")
	if !ok {
		t.Fatal(violation("README.md", "has no ```text block under Repository layout", rule, why))
	}
	block, _, _ = strings.Cut(block, "```")
	listed := map[string]bool{}
	for _, line := range strings.Split(block, "\n") {
		if f := strings.Fields(line); len(f) > 0 && (under(f[0], "internal") || under(f[0], "cmd")) {
			listed[f[0]] = true
		}
	}
	have := map[string]bool{}
	for _, p := range modulePackages(t) {
		r := rel(t, p.ImportPath)
		if !under(r, "internal") && !under(r, "cmd") {
			continue
		}
		have[r] = true
		if !listed[r] {
			t.Error(violation(r, "is not in README.md's Repository layout", rule, why))
		}
	}
	for p := range listed {
		if !have[p] {
			t.Error(violation(p, "is in README.md's Repository layout but is not a package of the module", rule, why))
		}
	}
}

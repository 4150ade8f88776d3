package lint

import (
	"path"
	"strconv"
	"strings"
	"testing"
)

// TestPackageDocComments: every package under internal/ and cmd/ has a doc
// comment in at least one non-test file, "// Package x ..." for libraries
// and "// Command x ..." for commands.
func TestPackageDocComments(t *testing.T) {
	t.Parallel()
	const why = "every package has a doc comment stating what it is for and the invariants it keeps (STYLE.md, Habits); go doc and reviewers read it first"
	for _, p := range modulePackages(t) {
		r := rel(t, p.ImportPath)
		if !under(r, "internal") && !under(r, "cmd") {
			continue
		}
		want := "Package " + p.Name
		if p.Name == "main" {
			want = "Command " + path.Base(r)
		}
		rule := "package " + r + " has a `// " + want + " ...` doc comment in a non-test file"
		files := parse(t, p)
		if len(files) == 0 {
			t.Error(violation(r, "has no non-test Go files to hold the package comment; add a doc.go", rule, why))
			continue
		}
		found := false
		var other []string
		for _, pf := range files {
			if pf.file.Doc == nil {
				continue
			}
			text := pf.file.Doc.Text()
			if text == want || strings.HasPrefix(text, want+" ") || strings.HasPrefix(text, want+"\n") {
				found = true
				break
			}
			first, _, _ := strings.Cut(text, "\n")
			other = append(other, pf.name+": "+strings.TrimSpace(first))
		}
		if !found {
			what := "has no package doc comment"
			if len(other) > 0 {
				what = "has package comments that do not start with " + strconv.Quote(want) + ": " + strings.Join(other, "; ")
			}
			t.Error(violation(r, what, rule, why))
		}
	}
}

package e2etest

import "testing"

func TestSpliceSection(t *testing.T) {
	doc := "# Benchmarks\n\n## A\nold a\n\n## B\nold b\n"
	for _, tc := range []struct{ name, heading, sec, want string }{
		{"replaces a middle section", "## A", "## A\nnew a\n\n", "# Benchmarks\n\n## A\nnew a\n\n## B\nold b\n"},
		{"replaces the last section", "## B", "## B\nnew b\n", "# Benchmarks\n\n## A\nold a\n\n## B\nnew b\n"},
		{"appends a missing section", "## C", "## C\nc\n", doc[:len(doc)-1] + "\n\n## C\nc\n"},
	} {
		if got := string(SpliceSection([]byte(doc), tc.heading, []byte(tc.sec))); got != tc.want {
			t.Errorf("%s:\n%q\nwant\n%q", tc.name, got, tc.want)
		}
	}
	if got := string(SpliceSection(nil, "## A", []byte("## A\n"))); got != "## A\n" {
		t.Errorf("into an empty file: %q", got)
	}
}

package tuf

import (
	"errors"
	"strings"
	"testing"
)

func TestParseGUN(t *testing.T) {
	for _, ok := range []string{"example.com/org/app", "docker.io/library/alpine", "127.0.0.1:5000/a", "a", "a.b/c..d/e.", "x/.hidden", strings.Repeat("a", MaxGUNLength), "ünïcode/app"} {
		if g, err := ParseGUN(ok); err != nil || g.String() != ok {
			t.Errorf("ParseGUN(%q) = %q, %v", ok, g, err)
		}
	}
	for _, bad := range []string{"", "..", ".", "../x", "a/..", "a/../b", "a/./b", "./a", "/abs", "a/", "a//b", `a\b`, `..\x`, "a*", "a\x00b", "a\nb", "a\x1b[2J", "a\u0085b", "\xff", strings.Repeat("a", MaxGUNLength+1)} {
		if g, err := ParseGUN(bad); !errors.Is(err, ErrInvalidGUN) {
			t.Errorf("ParseGUN(%q) = %q, %v; want ErrInvalidGUN", bad, g, err)
		}
	}
}

func FuzzParseGUN(f *testing.F) {
	for _, s := range []string{"example.com/a", "../x", "a//b", "a/./b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGUN(s)
		if err != nil {
			return
		}
		for _, seg := range strings.Split(string(g), "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("ParseGUN(%q) accepted a %q segment", s, seg)
			}
		}
		if strings.ContainsAny(string(g), "\\*\x00\n") {
			t.Fatalf("ParseGUN(%q) accepted a forbidden character", s)
		}
	})
}

package printable

import (
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "",
		"v1.2.3":             "v1.2.3",
		"latest build":       "latest build",
		"ünïcode-タグ":         "ünïcode-タグ",
		`a "quoted" name`:    `a "quoted" name`,
		"v1\x1b[2J":          `"v1\x1b[2J"`,
		"v2\x1b]0;pwned\x07": `"v2\x1b]0;pwned\a"`,
		"v3\nforged row":     `"v3\nforged row"`,
		"tab\there":          `"tab\there"`,
		"cr\rover":           `"cr\rover"`,
		"\u202eexe.txt":      `"\u202eexe.txt"`,
		"c1\u009b31m":        `"c1\u009b31m"`,
		"nbsp\u00a0":         `"nbsp\u00a0"`,
		"bad\xffutf8":        `"bad\xffutf8"`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestLines(t *testing.T) {
	for in, want := range map[string]string{
		"plain message":                  "plain message",
		"first\nsecond":                  "first\nsecond",
		"server said \x1b[2J\nnext line": "server said \\x1b[2J\nnext line",
		"title \x1b]0;x\x07 and \r back": "title \\x1b]0;x\\a and \\r back",
		"rtl \u202e and \xff and \t tab": "rtl \\u202e and \\xff and \\t tab",
	} {
		if got := Lines(in); got != want {
			t.Errorf("Lines(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"v1", "a\x1bb", "\u202e", "\xff\xfe", "a\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := Quote(s)
		for _, r := range q {
			if !unicode.IsPrint(r) {
				t.Fatalf("Quote(%q) = %q holds %U", s, q, r)
			}
		}
		if q != s {
			if u, err := strconv.Unquote(q); err != nil || u != s {
				t.Fatalf("Quote(%q) = %s does not unquote back: %q %v", s, q, u, err)
			}
		}
		l := Lines(s)
		if !utf8.ValidString(l) {
			t.Fatalf("Lines(%q) is not UTF-8", s)
		}
		for _, r := range strings.ReplaceAll(l, "\n", "") {
			if !unicode.IsPrint(r) {
				t.Fatalf("Lines(%q) = %q holds %U", s, l, r)
			}
		}
		if strings.Count(l, "\n") != strings.Count(s, "\n") {
			t.Fatalf("Lines(%q) changed the line count", s)
		}
	})
}

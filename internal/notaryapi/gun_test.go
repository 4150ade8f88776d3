package notaryapi

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestParseGUN(t *testing.T) {
	for _, ok := range []string{
		"g", "example.com/a", "localhost:5000/x/y", "docker.io/library/alpine", "a/_trust/tuf/b",
		"Example.COM/Upper", "a b", "ünïcödé/名前", "a..b", "a%2fb", strings.Repeat("a", MaxGUNBytes),
		strings.Repeat("é", MaxGUNBytes/2),
	} {
		g, err := ParseGUN(ok)
		if err != nil || g.String() != ok {
			t.Errorf("ParseGUN(%q) = %q, %v; want it accepted", ok, g, err)
		}
	}
	for _, tt := range []struct{ name, gun, reason string }{
		{"empty", "", "empty"},
		{"too long", strings.Repeat("a", MaxGUNBytes+1), "256 bytes long"},
		{"too long in bytes", strings.Repeat("é", MaxGUNBytes/2+1), "bytes long"},
		{"800 KB", strings.Repeat("a", 800<<10), "819200 bytes long"},
		{"NUL", "a\x00b", "U+0000"},
		{"tab", "a\tb", "U+0009"},
		{"newline", "a\nb", "U+000A"},
		{"DEL", "a\x7fb", "U+007F"},
		{"C1 NEL", "a\u0085b", "U+0085"},
		{"bidi override", "example.com/\u202eppa", "U+202E"},
		{"zero-width space", "example.com/a\u200bb", "U+200B"},
		{"BOM", "\ufeffexample.com/a", "U+FEFF"},
		{"line separator", "a\u2028b", "U+2028"},
		{"invalid UTF-8", "a\xffb", "not valid UTF-8"},
		{"truncated UTF-8", "a\xc3", "not valid UTF-8"},
		{"surrogate", "a\xed\xa0\x80b", "not valid UTF-8"},
		{"star", "a*b", "'*'"},
	} {
		g, err := ParseGUN(tt.gun)
		var ge *InvalidGUNError
		if !errors.As(err, &ge) || g != "" || !strings.Contains(ge.Reason, tt.reason) {
			t.Errorf("%s: ParseGUN = %q, %v; want an InvalidGUNError about %q", tt.name, g, err, tt.reason)
		}
		if ge != nil && len(ge.Reason) > 200 {
			t.Errorf("%s: the reason is %d bytes long (it must not quote the name)", tt.name, len(ge.Reason))
		}
	}
}

func FuzzParseGUN(f *testing.F) {
	for _, s := range []string{"g", "example.com/a", "a\x00", "\u202e", "a*", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGUN(s)
		if err != nil {
			if g != "" {
				t.Fatalf("%q: refused but returned %q", s, g)
			}
			return
		}
		if string(g) != s || s == "" || len(s) > MaxGUNBytes || !utf8.ValidString(s) || strings.Contains(s, "*") {
			t.Fatalf("%q accepted", s)
		}
		for _, r := range s {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
				t.Fatalf("%q accepted with %U", s, r)
			}
		}
	})
}

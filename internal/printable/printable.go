// Package printable makes text that came from the network, from metadata
// or from a file someone else wrote safe to show on a terminal. Tag names,
// role names, delegation paths, key headers and server error bodies are
// chosen by whoever signed or served them; printed raw, an escape sequence
// in one can clear the screen, retitle the terminal or hide what follows,
// and a newline or a tab can forge a row of a table.
//
// Quote is for values (a cell of a table, a name inside a sentence): a
// value made only of printable characters is returned unchanged, so
// ordinary output is byte-for-byte what notary and docker print; any other
// value is shown in Go's double-quoted form, every control character,
// escape, newline, tab, Unicode format character (bidirectional overrides
// included) and invalid UTF-8 byte spelled out. Lines is for whole
// messages whose own line breaks are meant (an error that explains what to
// do next): it escapes everything Quote would except the newline, as a
// last line of defence after the untrusted parts went through Quote.
//
// Invariants: the output of Quote contains only printable characters; the
// output of Lines only printable characters and newlines; both are pure
// functions. JSON output needs neither (encoding/json escapes control
// characters itself).
package printable

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Quote returns s unchanged when every character of it is printable
// (unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the
// ASCII space), and strconv.Quote(s) otherwise.
func Quote(s string) string {
	if isPrintable(s) {
		return s
	}
	return strconv.Quote(s)
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Lines returns s with every character that is not printable escaped as
// strconv.Quote would (\x1b, \t, \u202e, \xff), except newlines, which
// are kept.
func Lines(s string) string {
	if isPrintable(strings.ReplaceAll(s, "\n", "")) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\n' || (r != utf8.RuneError && unicode.IsPrint(r)):
			b.WriteString(s[i : i+n])
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

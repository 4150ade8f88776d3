package tuf

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// GUN is a repository's Globally Unique Name ("example.com/org/app"),
// validated by ParseGUN. Clients turn GUNs into directories
// (tuf/<GUN>/metadata) and into URL paths (/v2/<GUN>/_trust/tuf/), so a
// GUN holds only segments that name a directory below the one it is
// joined to.
type GUN string

// MaxGUNLength is the longest GUN accepted, in bytes: the reference
// server's column width, and Docker's limit on a repository name.
const MaxGUNLength = 255

// ErrInvalidGUN reports a name ParseGUN refuses.
var ErrInvalidGUN = errors.New("tuf: invalid repository name (GUN)")

// ParseGUN validates a repository name. The reference server accepts any
// name without "*"; ParseGUN also refuses, because every client makes a
// path of it, an empty name, an empty, "." or ".." segment between slashes
// (so a leading or trailing slash too), a backslash, a control character,
// invalid UTF-8 and a name longer than MaxGUNLength bytes. The notary client 0.7
// accepts ".." segments and writes and deletes outside its trust
// directory; Signet does not (docs/notary-compat.md).
func ParseGUN(s string) (GUN, error) {
	switch {
	case s == "":
		return "", fmt.Errorf("%w: the name is empty", ErrInvalidGUN)
	case len(s) > MaxGUNLength:
		return "", fmt.Errorf("%w: the name is %d bytes, more than %d", ErrInvalidGUN, len(s), MaxGUNLength)
	case strings.Contains(s, "*"):
		return "", fmt.Errorf("%w: %q holds a \"*\"", ErrInvalidGUN, s)
	case strings.Contains(s, `\`):
		return "", fmt.Errorf("%w: %q holds a backslash", ErrInvalidGUN, s)
	case !utf8.ValidString(s):
		return "", fmt.Errorf("%w: %q is not UTF-8", ErrInvalidGUN, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return "", fmt.Errorf("%w: %q holds a control character", ErrInvalidGUN, s)
		}
	}
	for _, seg := range strings.Split(s, "/") {
		switch seg {
		case "":
			return "", fmt.Errorf("%w: %q has an empty segment (a leading, trailing or doubled \"/\")", ErrInvalidGUN, s)
		case ".", "..":
			return "", fmt.Errorf("%w: %q has a %q segment", ErrInvalidGUN, s, seg)
		}
	}
	return GUN(s), nil
}

// String returns the name.
func (g GUN) String() string { return string(g) }

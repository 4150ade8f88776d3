package notaryapi

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// GUN is the name of a repository (Notary's Globally Unique Name) that the
// API accepts. Only ParseGUN makes one from outside input (ParsePath calls
// it for the GUN of every path), so code holding a GUN may store, log and
// display it without checking it again.
//
// The reference server takes any name without '*' and leaves the rest to
// its database: a NUL byte or invalid UTF-8 is a 500 with PostgreSQL's
// message, a name longer than its varchar(255) column a 500 from the
// signer, and control characters are stored. Signet refuses all of these
// up front (docs/notary-compat.md, "GUNs").
type GUN string

// MaxGUNBytes is the longest GUN in bytes: the reference schema's
// varchar(255) (notary-v1.md §5.2), counted in bytes so that no database
// or key store can find it too long.
const MaxGUNBytes = 255

// InvalidGUNError says why a name is not a GUN the API accepts. Reason is
// a sentence for the client; it never quotes the name.
type InvalidGUNError struct {
	Reason string
}

func (e *InvalidGUNError) Error() string { return "notaryapi: invalid GUN: " + e.Reason }

// ParseGUN checks a repository name: 1 to MaxGUNBytes bytes of valid
// UTF-8, without '*' (the reference's route pattern), without control
// characters (C0, DEL, C1), without invisible format characters (such as
// the bidirectional overrides and zero-width spaces that make one name
// look like another) and without line or paragraph separators.
func ParseGUN(s string) (GUN, error) {
	if s == "" {
		return "", &InvalidGUNError{"the GUN is empty"}
	}
	if len(s) > MaxGUNBytes {
		return "", &InvalidGUNError{fmt.Sprintf("the GUN is %d bytes long; the limit is %d", len(s), MaxGUNBytes)}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf { // the common case, without table lookups
			switch {
			case c == '*':
				return "", &InvalidGUNError{"the GUN contains '*'"}
			case c < 0x20 || c == 0x7f:
				return "", badChar(rune(c), i)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return "", &InvalidGUNError{"the GUN is not valid UTF-8"}
		}
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			return "", badChar(r, i)
		}
		i += n
	}
	return GUN(s), nil
}

func badChar(r rune, at int) error {
	return &InvalidGUNError{fmt.Sprintf("the GUN contains the character %U (at byte %d), which names may not hold", r, at)}
}

// String returns the GUN as a string.
func (g GUN) String() string { return string(g) }

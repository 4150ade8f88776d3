package cjson

import (
	"bytes"
	"unicode/utf8"
)

// maxDepth bounds the nesting IsCanonical follows; deeper documents take
// the slow path (Canonicalize), which has its own limit.
const maxDepth = 1000

// IsCanonical reports whether data is already in canonical form, that is,
// whether Canonicalize(data) would return exactly data. It reads data once
// and allocates nothing, so that verifying a signature over a file Notary
// wrote (whose signed value is always canonical) costs no re-encoding.
//
// It answers true only for documents it can prove canonical: compact, keys
// strictly increasing (so no duplicates) and free of escapes, strings that
// are valid UTF-8 with no escape but \" and \\, integers of at most 15
// digits (exact in a float64) and no "-0". Anything else — including
// canonical documents outside that subset — answers false, and the caller
// re-encodes with Canonicalize, which decides.
func IsCanonical(data []byte) bool {
	s := checker{b: data}
	return s.value(0) && s.i == len(s.b)
}

type checker struct {
	b []byte
	i int
}

func (s *checker) value(depth int) bool {
	if s.i >= len(s.b) || depth > maxDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		_, ok := s.str(false)
		return ok
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

func (s *checker) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	return true
}

func (s *checker) object(depth int) bool {
	s.i++ // '{'
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	var prev []byte
	for first := true; ; first = false {
		key, ok := s.str(true)
		if !ok || (!first && bytes.Compare(prev, key) >= 0) {
			return false
		}
		prev = key
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		if !s.value(depth + 1) {
			return false
		}
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

func (s *checker) array(depth int) bool {
	s.i++ // '['
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		if !s.value(depth + 1) {
			return false
		}
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// str reads a string and returns its contents (between the quotes). Object
// keys (key=true) may hold no escape at all, so that their bytes compare as
// their decoded values do.
func (s *checker) str(key bool) ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			out := s.b[start:s.i]
			s.i++
			return out, true
		case c == '\\':
			if key || s.i+1 >= len(s.b) || (s.b[s.i+1] != '"' && s.b[s.i+1] != '\\') {
				return nil, false
			}
			s.i += 2
		case c < 0x20:
			return nil, false
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size == 1 {
				return nil, false
			}
			s.i += size
		}
	}
	return nil, false
}

func (s *checker) number() bool {
	start := s.i
	if s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	n := s.i - digits
	switch {
	case n == 0 || n > exactDigits:
		return false
	case s.b[digits] == '0' && (n > 1 || digits > start): // leading zero, or "-0"
		return false
	case s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E'):
		return false
	}
	return true
}

// CanonicalPrefix reports whether data begins with a value that IsCanonical
// would prove canonical, and its length; what follows the value is not
// read. It lets a caller find the end of a canonical value inside a larger
// document in the same single pass that proves it canonical.
func CanonicalPrefix(data []byte) (n int, ok bool) {
	s := checker{b: data}
	if !s.value(0) {
		return 0, false
	}
	return s.i, true
}

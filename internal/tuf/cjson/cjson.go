// Package cjson produces the canonical JSON that Notary signs: object keys
// sorted bytewise, no insignificant whitespace, strings with only '"' and '\'
// escaped (every other byte, control characters and non-ASCII included,
// written as is), and integers only.
//
// The output is byte-identical to MarshalCanonical of github.com/docker/go's
// canonical/json for every value a TUF document can hold; a differential test
// checks that. Signatures in Notary metadata are made and checked over these
// bytes, so every signature in Signet goes through this package.
package cjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ErrNotCanonical reports a value canonical JSON cannot represent, such as a
// number with a fraction.
var ErrNotCanonical = errors.New("cjson: value has no canonical form")

// Marshal returns the canonical encoding of v. Struct fields follow their
// encoding/json tags; []byte becomes padded standard base64 and time.Time
// RFC 3339 with nanoseconds, as with encoding/json.
func Marshal(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("cjson: %w", err)
	}
	return Canonicalize(raw)
}

// Canonicalize re-encodes a JSON document canonically. Duplicate object keys
// keep the last value, as encoding/json does.
func Canonicalize(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("cjson: %w", err)
	}
	if len(bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n")) != 0 {
		return nil, fmt.Errorf("cjson: trailing data after JSON value")
	}
	buf := make([]byte, 0, len(data))
	return appendValue(buf, v)
}

func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case string:
		return AppendString(b, v), nil
	case json.Number:
		return appendNumber(b, v)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, v[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	default:
		return nil, fmt.Errorf("%w: unexpected %T", ErrNotCanonical, v)
	}
}

// exactDigits is how many decimal digits an integer may have and still be
// exactly a float64 (10^15 < 2^53).
const exactDigits = 15

// appendNumber writes a number as Notary's verifier does: it decodes every
// number into a float64 and writes int64 of it. So 1e3 and 1000.0 are the
// integer 1000, an integer beyond 2^53 becomes the nearest float64 (2^53+1
// is written 9007199254740992), and a number with a fraction, or one at or
// beyond ±2^63 (whose conversion Go leaves to the platform), is refused.
func appendNumber(b []byte, n json.Number) ([]byte, error) {
	s := string(n)
	if digits := strings.TrimPrefix(s, "-"); len(digits) <= exactDigits && !strings.ContainsAny(digits, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return strconv.AppendInt(b, i, 10), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || math.Floor(f) != f ||
		f >= math.MaxInt64 || f < math.MinInt64 {
		return nil, fmt.Errorf("%w: number %s is not an integer notary can represent", ErrNotCanonical, s)
	}
	return strconv.AppendInt(b, int64(f), 10), nil
}

// AppendString appends s as a canonical JSON string: only '"' and '\' are
// escaped.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', c)
			start = i + 1
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

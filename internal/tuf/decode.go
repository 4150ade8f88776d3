package tuf

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"

	"github.com/signet-trust/signet/internal/tuf/cjson"
)

// This file is the fast path of parse, for the files Notary writes: an
// envelope {"signed":V,"signatures":S} whose signed value V is canonical
// JSON. It gives exactly the result encoding/json gives (the slow path, and
// what notary decodes with) or declines, and parse then takes the slow
// path: it never decides on its own that a file is invalid. Declining is
// always safe, so the fast path handles only what it can prove to decode
// identically:
//
//   - the envelope is exactly those two keys, in that order, with no
//     whitespace but after the closing brace; S is decoded by
//     encoding/json;
//   - V is proven canonical in one pass (cjson.CanonicalPrefix), so its
//     object keys are unique, strictly increasing and free of escapes, and
//     its strings are valid UTF-8: none of encoding/json's rules for
//     duplicate keys, escapes or invalid UTF-8 comes into play;
//   - a targets object's "targets" map is decoded by hand, and only entries
//     whose keys are exactly "custom", "hashes" and "length" (encoding/json
//     matches struct fields case-insensitively: any other key declines)
//     with a non-null custom value, an object of base64 strings without
//     escapes as hashes, and an integer length; every other field of the
//     signed value is decoded by encoding/json from its own bytes, which is
//     what decoding the whole object does with unique keys. A key of the
//     signed object that is not one of the fields declines too.
//
// FuzzParseFast checks the two paths against each other.

// splitEnvelope returns the signed value and the signatures of a file in
// the shape Notary writes, the signed value proven canonical; ok is false
// when the file has another shape (the slow path decides then).
func splitEnvelope(raw []byte) (signed []byte, sigs []Signature, ok bool) {
	const head, mid = `{"signed":`, `,"signatures":`
	if !bytes.HasPrefix(raw, []byte(head)) {
		return nil, nil, false
	}
	rest := raw[len(head):]
	n, ok := cjson.CanonicalPrefix(rest)
	if !ok || !bytes.HasPrefix(rest[n:], []byte(mid)) {
		return nil, nil, false
	}
	signed = rest[:n:n]
	if string(signed) == "null" {
		return nil, nil, false
	}
	s := bytes.TrimRight(rest[n+len(mid):], " \t\r\n")
	if len(s) == 0 || s[len(s)-1] != '}' {
		return nil, nil, false
	}
	// S is one JSON value (and whitespace) or Unmarshal refuses it.
	if err := json.Unmarshal(s[:len(s)-1], &sigs); err != nil {
		return nil, nil, false
	}
	return signed, sigs, true
}

// decodeCanonical decodes the canonical signed value into out as
// json.Unmarshal would, or reports false (out may then be partly filled).
func decodeCanonical[T any](signed []byte, out *T) bool {
	if t, isTargets := any(out).(*Targets); isTargets {
		return decodeTargets(signed, t)
	}
	return json.Unmarshal(signed, out) == nil
}

// canon reads a canonical document: no whitespace, keys without escapes.
type canon struct {
	b []byte
	i int
}

func (c *canon) next(ch byte) bool {
	if c.i < len(c.b) && c.b[c.i] == ch {
		c.i++
		return true
	}
	return false
}

// key reads an object key and its colon (a canonical key has no escapes).
func (c *canon) key() ([]byte, bool) {
	if !c.next('"') {
		return nil, false
	}
	end := bytes.IndexByte(c.b[c.i:], '"')
	if end < 0 {
		return nil, false
	}
	k := c.b[c.i : c.i+end]
	c.i += end + 1
	return k, c.next(':')
}

// value skips one (canonical) value and returns its bytes.
func (c *canon) value() ([]byte, bool) {
	n, ok := cjson.CanonicalPrefix(c.b[c.i:])
	if !ok {
		return nil, false
	}
	v := c.b[c.i : c.i+n]
	c.i += n
	return v, true
}

// objectEnd reads the ',' before another member (true, true) or the
// closing '}' (false, true).
func (c *canon) objectEnd() (more, ok bool) {
	if c.next(',') {
		return true, true
	}
	return false, c.next('}')
}

// members reads the members of an object whose '{' has been read, up to
// and including its '}': for each, its key, then member reads the value.
// False on anything member refuses or that is not canonical.
func (c *canon) members(member func(k []byte) bool) bool {
	if c.next('}') {
		return true
	}
	for {
		k, ok := c.key()
		if !ok || !member(k) {
			return false
		}
		more, ok := c.objectEnd()
		if !ok {
			return false
		}
		if !more {
			return true
		}
	}
}

func decodeTargets(signed []byte, t *Targets) bool {
	c := &canon{b: signed}
	if !c.next('{') {
		return false
	}
	return c.members(func(k []byte) bool {
		var field any
		switch string(k) {
		case "_type":
			field = &t.Type
		case "delegations":
			field = &t.Delegations
		case "expires":
			field = &t.Expires
		case "version":
			field = &t.Version
		case "targets":
			return c.targets(t)
		default:
			return false
		}
		v, ok := c.value()
		return ok && json.Unmarshal(v, field) == nil
	}) && c.i == len(c.b)
}

// targets decodes the "targets" map of a targets object (null is left
// out, as encoding/json leaves a nil map nil).
func (c *canon) targets(t *Targets) bool {
	if bytes.HasPrefix(c.b[c.i:], []byte("null")) {
		c.i += len("null")
		t.Targets = nil
		return true
	}
	if !c.next('{') {
		return false
	}
	// An entry as Notary writes it (a name, a sha256 and a length) takes
	// some 90 bytes: sizing the map from the bytes left spares rehashing
	// it as it grows, at the cost of some unused room.
	t.Targets = make(map[string]FileMeta, (len(c.b)-c.i)/80)
	// The hashes of every entry share one backing array (each a full
	// slice expression of it, so that appending to one cannot reach the
	// next).
	var slab []byte
	return c.members(func(k []byte) bool {
		var fm FileMeta
		if !c.fileMeta(&fm, &slab) {
			return false
		}
		t.Targets[string(k)] = fm
		return true
	})
}

func (c *canon) fileMeta(fm *FileMeta, slab *[]byte) bool {
	if !c.next('{') {
		return false
	}
	return c.members(func(k []byte) bool {
		switch string(k) {
		case "custom":
			v, ok := c.value()
			if !ok || string(v) == "null" {
				return false
			}
			raw := json.RawMessage(bytes.Clone(v))
			fm.Custom = &raw
			return true
		case "hashes":
			return c.hashes(fm, slab)
		case "length":
			v, ok := c.value()
			if !ok || len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
				return false
			}
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return false
			}
			fm.Length = n
			return true
		}
		return false
	})
}

// hashes decodes a hashes object of base64 strings (a fresh map, as
// encoding/json makes one for a nil map).
func (c *canon) hashes(fm *FileMeta, slab *[]byte) bool {
	if !c.next('{') {
		return false
	}
	fm.Hashes = make(map[string][]byte, 1)
	return c.members(func(k []byte) bool {
		if !c.next('"') {
			return false
		}
		end := bytes.IndexByte(c.b[c.i:], '"')
		if end < 0 {
			return false
		}
		s := c.b[c.i : c.i+end]
		c.i += end + 1
		if bytes.IndexByte(s, '\\') >= 0 {
			return false
		}
		size := base64.StdEncoding.DecodedLen(len(s))
		if cap(*slab)-len(*slab) < size {
			*slab = make([]byte, 0, max(size, 4096))
		}
		buf := (*slab)[len(*slab) : len(*slab)+size]
		n, err := base64.StdEncoding.Decode(buf, s)
		if err != nil {
			return false
		}
		*slab = (*slab)[:len(*slab)+n]
		var alg string
		switch string(k) {
		case "sha256":
			alg = "sha256"
		case "sha512":
			alg = "sha512"
		default:
			alg = string(k)
		}
		fm.Hashes[alg] = buf[:n:n]
		return true
	})
}

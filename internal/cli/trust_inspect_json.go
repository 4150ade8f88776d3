package cli

import (
	"encoding/json"
)

// appendInspectJSON appends what json.MarshalIndent(repos, "", "    ")
// gives, byte for byte, without reflection: on a repository of 10,000
// tags, MarshalIndent (which encodes, then indents a copy) was an eighth
// of `signet trust inspect`'s time. TestInspectJSONMatchesMarshalIndent
// and FuzzInspectJSON hold the two together.
func appendInspectJSON(b []byte, repos []trustRepoJSON) []byte {
	w := indentWriter{b: b}
	w.list(repos == nil, len(repos), func(i int) {
		r := &repos[i]
		w.object(func() {
			w.field("Name", true)
			w.str(r.Name)
			w.field("SignedTags", false)
			w.list(r.SignedTags == nil, len(r.SignedTags), func(i int) {
				t := &r.SignedTags[i]
				w.object(func() {
					w.field("SignedTag", true)
					w.str(t.SignedTag)
					w.field("Digest", false)
					w.str(t.Digest)
					w.field("Signers", false)
					w.list(t.Signers == nil, len(t.Signers), func(i int) { w.str(t.Signers[i]) })
				})
			})
			w.field("Signers", false)
			w.signers(r.Signers)
			w.field("AdministrativeKeys", false)
			w.signers(r.AdministrativeKeys)
		})
	})
	return w.b
}

// indentWriter writes JSON indented by four spaces per level, as
// json.MarshalIndent with prefix "" does.
type indentWriter struct {
	b     []byte
	depth int
}

func (w *indentWriter) newline() {
	w.b = append(w.b, '\n')
	for range w.depth {
		w.b = append(w.b, "    "...)
	}
}

// list writes null, [] or the n elements each(i) writes.
func (w *indentWriter) list(isNil bool, n int, each func(i int)) {
	switch {
	case isNil:
		w.b = append(w.b, "null"...)
		return
	case n == 0:
		w.b = append(w.b, "[]"...)
		return
	}
	w.b = append(w.b, '[')
	w.depth++
	for i := range n {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.newline()
		each(i)
	}
	w.depth--
	w.newline()
	w.b = append(w.b, ']')
}

// object writes {, the fields body writes, and }; every object here has
// fields.
func (w *indentWriter) object(body func()) {
	w.b = append(w.b, '{')
	w.depth++
	body()
	w.depth--
	w.newline()
	w.b = append(w.b, '}')
}

// field writes a member's name (a plain ASCII name) and its colon.
func (w *indentWriter) field(name string, first bool) {
	if !first {
		w.b = append(w.b, ',')
	}
	w.newline()
	w.b = append(w.b, '"')
	w.b = append(w.b, name...)
	w.b = append(w.b, `": `...)
}

func (w *indentWriter) signers(ss []trustSignerJSON) {
	w.list(ss == nil, len(ss), func(i int) {
		s := &ss[i]
		w.object(func() {
			w.field("Name", true)
			w.str(s.Name)
			w.field("Keys", false)
			w.list(s.Keys == nil, len(s.Keys), func(i int) {
				w.object(func() {
					w.field("ID", true)
					w.str(s.Keys[i].ID)
				})
			})
		})
	})
}

// str writes s as encoding/json does: printable ASCII other than the
// characters it escapes goes as is; anything else (control characters,
// HTML-sensitive characters, non-ASCII and invalid UTF-8) is left to
// encoding/json itself.
func (w *indentWriter) str(s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			w.b = append(w.b, q...)
			return
		}
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, s...)
	w.b = append(w.b, '"')
}

// inspectJSONSize estimates the output's size, so that it is written
// into one buffer.
func inspectJSONSize(repos []trustRepoJSON) int {
	n := 64
	for _, r := range repos {
		n += 256 + len(r.Name)
		for _, t := range r.SignedTags {
			n += 160 + len(t.SignedTag) + len(t.Digest)
			for _, s := range t.Signers {
				n += 24 + len(s)
			}
		}
		n += 512 * (len(r.Signers) + len(r.AdministrativeKeys))
	}
	return n
}

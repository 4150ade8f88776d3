package tuftest

// Byte-level mutations for differential tests: a signed value decoded into
// generic JSON (numbers kept as written), edited, written back in one of
// several forms and signed over the bytes a careful or a careless signer
// would sign.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/cjson"
)

// Form is how a signed value is written into a file.
type Form int

const (
	// FormSorted is compact with sorted keys and numbers as written: the
	// canonical form of every value Notary writes.
	FormSorted Form = iota
	// FormIndented is FormSorted with two-space indentation.
	FormIndented
	// FormReversed is compact with every object's keys in reverse order.
	FormReversed
	// FormEscaped is FormSorted with every non-ASCII character, '/' and
	// '<' written as \u escapes.
	FormEscaped
)

// Forms lists every Form.
var Forms = []Form{FormSorted, FormIndented, FormReversed, FormEscaped}

func (f Form) String() string {
	return [...]string{"sorted", "indented", "reversed", "escaped"}[f]
}

// Decode decodes JSON into a generic value with json.Number numbers.
func Decode(t testing.TB, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("tuftest: decode: %v", err)
	}
	return v
}

// SignedValue returns the signed value of a metadata file as a generic
// object.
func SignedValue(t testing.TB, file []byte) map[string]any {
	t.Helper()
	var env struct{ Signed json.RawMessage }
	if err := json.Unmarshal(file, &env); err != nil {
		t.Fatal(err)
	}
	m, ok := Decode(t, env.Signed).(map[string]any)
	if !ok {
		t.Fatal("tuftest: signed value is not an object")
	}
	return m
}

// Encode writes a generic value (as Decode returns) in form.
func Encode(v any, form Form) []byte {
	var b bytes.Buffer
	encode(&b, v, form, 0)
	return b.Bytes()
}

func encode(b *bytes.Buffer, v any, form Form, depth int) {
	nl := func(d int) {
		if form == FormIndented {
			b.WriteByte('\n')
			for range d {
				b.WriteString("  ")
			}
		}
	}
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case json.Number:
		b.WriteString(string(v))
	case float64:
		b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	case int:
		b.WriteString(strconv.Itoa(v))
	case string:
		writeString(b, v, form == FormEscaped)
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(depth + 1)
			encode(b, e, form, depth+1)
		}
		if len(v) > 0 {
			nl(depth)
		}
		b.WriteByte(']')
	case map[string]any:
		ks := make([]string, 0, len(v))
		for k := range v {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		if form == FormReversed {
			slices.Reverse(ks)
		}
		b.WriteByte('{')
		for i, k := range ks {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(depth + 1)
			writeString(b, k, form == FormEscaped)
			b.WriteByte(':')
			if form == FormIndented {
				b.WriteByte(' ')
			}
			encode(b, v[k], form, depth+1)
		}
		if len(v) > 0 {
			nl(depth)
		}
		b.WriteByte('}')
	default:
		panic(fmt.Sprintf("tuftest: cannot encode %T", v))
	}
}

func writeString(b *bytes.Buffer, s string, escape bool) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteByte(s[i])
		case r < 0x20:
			fmt.Fprintf(b, `\u%04x`, r)
		case escape && (r >= utf8.RuneSelf || r == '/' || r == '<'):
			if r > 0xFFFF {
				r1, r2 := (r-0x10000)>>10+0xD800, (r-0x10000)&0x3FF+0xDC00
				fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
			} else {
				fmt.Fprintf(b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}

// Over says what a signer signs.
type Over int

const (
	// OverNotary signs Notary's canonical form of the written value (what
	// notary verifies; what a correct signer signs).
	OverNotary Over = iota
	// OverWritten signs the written bytes themselves.
	OverWritten
)

func (o Over) String() string { return [...]string{"over-notary-canonical", "over-written-bytes"}[o] }

// SignValue writes signed in form and signs it with ks (over what over
// says), returning the metadata file. A value Notary cannot canonicalize
// is signed over its written bytes.
func SignValue(t testing.TB, signed any, form Form, over Over, ks ...Key) []byte {
	t.Helper()
	written := Encode(signed, form)
	msg := written
	if over == OverNotary {
		if c, err := cjson.Canonicalize(written); err == nil {
			msg = c
		}
	}
	sigs := make([]tuf.Signature, 0, len(ks))
	for _, k := range ks {
		method, sig, err := keys.Sign(k.Signer, msg)
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, tuf.Signature{KeyID: k.Key.ID(), Method: method, Sig: sig})
	}
	return tuf.Envelope(written, sigs)
}

// EditSignatures decodes a file's signatures, lets edit change them (as
// generic JSON objects) and writes the file back with its signed value
// untouched.
func EditSignatures(t testing.TB, file []byte, edit func(sigs []any) []any) []byte {
	t.Helper()
	var env struct {
		Signed     json.RawMessage `json:"signed"`
		Signatures json.RawMessage `json:"signatures"`
	}
	if err := json.Unmarshal(file, &env); err != nil {
		t.Fatal(err)
	}
	sigs, _ := Decode(t, env.Signatures).([]any)
	out := edit(sigs)
	var b bytes.Buffer
	b.WriteString(`{"signed":`)
	b.Write(env.Signed)
	b.WriteString(`,"signatures":`)
	b.Write(Encode(out, FormSorted))
	b.WriteString(`}`)
	return b.Bytes()
}

package cjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	dockerjson "github.com/docker/go/canonical/json"
)

// The types below mirror the shapes of Notary metadata so that the reference
// encoder walks structs, maps, slices, []byte and time.Time as it does there.
type diffKey struct {
	Type  string `json:"keytype"`
	Value struct {
		Public  []byte `json:"public"`
		Private []byte `json:"private"`
	} `json:"keyval"`
}

type diffRole struct {
	KeyIDs    []string `json:"keyids"`
	Name      string   `json:"name"`
	Paths     []string `json:"paths,omitempty"`
	Threshold int      `json:"threshold"`
}

type diffFileMeta struct {
	Length int64             `json:"length"`
	Hashes map[string][]byte `json:"hashes"`
}

type diffDoc struct {
	Type        string                  `json:"_type"`
	Expires     time.Time               `json:"expires"`
	Version     int                     `json:"version"`
	Keys        map[string]diffKey      `json:"keys"`
	Roles       []diffRole              `json:"roles"`
	Targets     map[string]diffFileMeta `json:"targets"`
	Consistent  bool                    `json:"consistent_snapshot"`
	Tags        map[string]any          `json:"tags,omitempty"`
	Description string                  `json:"description"`
}

func randString(r *rand.Rand) string {
	alphabet := []rune("abcXYZ09 _-/.:\"\\\n\t\x00\x1f<>&\u00e9\u2028\U0001F600")
	n := r.IntN(12)
	out := make([]rune, n)
	for i := range out {
		out[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(out)
}

func randBytes(r *rand.Rand) []byte {
	b := make([]byte, r.IntN(40))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randDoc(r *rand.Rand) diffDoc {
	d := diffDoc{
		Type:        []string{"Root", "Targets", "Snapshot", "Timestamp"}[r.IntN(4)],
		Expires:     time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(time.FixedZone("x", (r.IntN(25)-12)*3600)),
		Version:     r.IntN(1 << 20),
		Keys:        map[string]diffKey{},
		Targets:     map[string]diffFileMeta{},
		Consistent:  r.IntN(2) == 0,
		Description: randString(r),
	}
	for range r.IntN(4) {
		var k diffKey
		k.Type = randString(r)
		k.Value.Public = randBytes(r)
		d.Keys[randString(r)] = k
	}
	for range r.IntN(3) {
		d.Roles = append(d.Roles, diffRole{KeyIDs: []string{randString(r)}, Name: randString(r), Threshold: r.IntN(5)})
	}
	for range r.IntN(5) {
		d.Targets[randString(r)] = diffFileMeta{Length: r.Int64N(1 << 40), Hashes: map[string][]byte{"sha256": randBytes(r), randString(r): randBytes(r)}}
	}
	if r.IntN(2) == 0 {
		d.Tags = map[string]any{randString(r): r.IntN(100), randString(r): []any{randString(r), true, nil}}
	}
	return d
}

// TestMarshalMatchesDockerCanonical compares Marshal with the encoder Notary
// 0.7 signs with, on random metadata-shaped values.
func TestMarshalMatchesDockerCanonical(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		d := randDoc(r)
		want, err := dockerjson.MarshalCanonical(d)
		if err != nil {
			t.Fatalf("reference encoder: %v", err)
		}
		got, err := Marshal(d)
		if err != nil {
			t.Fatalf("case %d: Marshal: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d differs:\ngot  %q\nwant %q", i, got, want)
		}
	}
}

// TestCanonicalizeMatchesNotaryVerify checks Canonicalize against what Notary
// does when it verifies a signature: decode into interface{} with its own
// decoder, then MarshalCanonical.
func TestCanonicalizeMatchesNotaryVerify(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		// Non-canonical, HTML-escaped input. It is made with encoding/json:
		// docker/go caches a struct's field order per type whichever mode
		// asked first, so its own Marshal would make MarshalCanonical of the
		// same type unsorted in the other test.
		raw, err := json.Marshal(randDoc(r))
		if err != nil {
			t.Fatal(err)
		}
		var generic any
		if err := dockerjson.Unmarshal(raw, &generic); err != nil {
			t.Fatal(err)
		}
		want, err := dockerjson.MarshalCanonical(generic)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Canonicalize(raw)
		if err != nil {
			t.Fatalf("case %d: Canonicalize: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d differs:\ngot  %q\nwant %q", i, got, want)
		}
	}
}

// notaryCanonical is what Notary 0.7 verifies a signature over: the signed
// value decoded into interface{} by its decoder (numbers as float64), then
// MarshalCanonical.
func notaryCanonical(raw []byte) ([]byte, error) {
	var generic map[string]any
	if err := dockerjson.Unmarshal(raw, &generic); err != nil {
		return nil, err
	}
	return dockerjson.MarshalCanonical(generic)
}

func randNumber(r *rand.Rand) string {
	switch r.IntN(6) {
	case 0: // around 2^53
		return strconv.FormatInt(1<<53+r.Int64N(2000)-1000, 10)
	case 1: // up to just below 2^63
		return strconv.FormatInt(r.Int64N(1<<62)*2+r.Int64N(2), 10)
	case 2:
		return "-" + strconv.FormatInt(r.Int64N(1<<62), 10)
	case 3: // exponents and fractions
		return fmt.Sprintf("%d.%de%d", r.IntN(100), r.IntN(10), r.IntN(25))
	case 4:
		return fmt.Sprintf("%de%d", r.IntN(1000), r.IntN(16))
	default:
		return strconv.Itoa(r.IntN(1 << 20))
	}
}

// TestNumbersMatchNotaryVerify compares Canonicalize with Notary's verify
// path on numbers: wherever Notary's result is portable (|n| < 2^63) the
// bytes agree, and a number Notary refuses is refused.
func TestNumbersMatchNotaryVerify(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 20000 {
		num := randNumber(r)
		raw := []byte(`{"version":` + num + `,"x":[` + num + `]}`)
		want, werr := notaryCanonical(raw)
		got, gerr := Canonicalize(raw)
		f, _ := strconv.ParseFloat(num, 64)
		portable := f < 1<<63 && f >= -(1<<63)
		switch {
		case werr != nil && gerr == nil:
			t.Fatalf("case %d %s: notary refuses (%v), Canonicalize gives %s", i, num, werr, got)
		case werr == nil && gerr != nil && portable:
			t.Fatalf("case %d %s: notary gives %s, Canonicalize refuses: %v", i, num, want, gerr)
		case werr == nil && gerr == nil && !bytes.Equal(got, want):
			t.Fatalf("case %d %s: got %s, notary %s", i, num, got, want)
		}
	}
}

// TestIsCanonicalMatchesNotary checks, on the canonical encodings of random
// metadata-shaped documents and on their indented and HTML-escaped forms,
// that IsCanonical only ever accepts what Notary's verify path reproduces
// byte for byte.
func TestIsCanonicalMatchesNotary(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	accepted := 0
	for i := range 3000 {
		doc := randDoc(r)
		canon, err := Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		escaped, _ := json.Marshal(doc)
		var indented bytes.Buffer
		_ = json.Indent(&indented, escaped, "", "  ")
		for _, raw := range [][]byte{canon, escaped, indented.Bytes()} {
			if !IsCanonical(raw) {
				continue
			}
			accepted++
			want, err := notaryCanonical(raw)
			if err != nil || !bytes.Equal(want, raw) {
				t.Fatalf("case %d: IsCanonical accepted %q, notary verifies over %q (%v)", i, raw, want, err)
			}
		}
	}
	// Most random documents hold control characters, which canonical form
	// writes raw and which no JSON parser accepts in a file; the rest must
	// have been checked.
	if accepted == 0 {
		t.Fatal("IsCanonical accepted none of the canonical documents")
	}
}

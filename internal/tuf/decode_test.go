package tuf

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/tuf/cjson"
)

// checkFast decodes data as a T by parse's fast path and, when it takes
// it, checks that encoding/json (the slow path, notary's decoder) accepts
// the file and decodes exactly the same thing.
func checkFast[T any](t *testing.T, data []byte) (fast bool) {
	t.Helper()
	signed, sigs, ok := splitEnvelope(data)
	if !ok {
		return false
	}
	if !cjson.IsCanonical(signed) {
		t.Fatalf("splitEnvelope took a signed value that is not canonical: %q", signed)
	}
	var got T
	if !decodeCanonical(signed, &got) {
		return false
	}
	var want Meta[T]
	if err := decodeSlow("targets", data, &want); err != nil {
		t.Fatalf("fast path decoded %T, encoding/json refuses it: %v\n%.500q", got, err, data)
	}
	if !reflect.DeepEqual(got, want.Signed) {
		t.Fatalf("fast path decoded %T differently:\nfast %#v\njson %#v\n%.500q", got, got, want.Signed, data)
	}
	if !reflect.DeepEqual(sigs, want.Signatures) || string(signed) != string(want.SignedRaw) || string(want.canonical) != string(signed) {
		t.Fatalf("fast path split the envelope differently:\nfast %q %#v\njson %q %#v", signed, sigs, want.SignedRaw, want.Signatures)
	}
	return true
}

func addDecodeSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*/*.json")
	more, _ := filepath.Glob("testdata/*/*/targets/*.json")
	for _, name := range append(files, more...) {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		`{"signed":{"_type":"Targets","delegations":{"keys":{},"roles":[]},"expires":"2030-01-01T00:00:00Z","targets":{"a":{"custom":{"x":1},"hashes":{"sha256":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","sha512":""},"length":3}},"version":2},"signatures":[{"keyid":"k","method":"ecdsa","sig":"AA=="}]}`,
		`{"signed":{"targets":{"a":{},"b":{"hashes":{}},"c":{"hashes":{"SHA256":"AA=="},"length":-1}}},"signatures":null}` + "\n",
		`{"signed":{"targets":{"a":{"Length":1}}},"signatures":[]}`,
		`{"signed":{"targets":{"a":{"hashes":{"sha256":"A\\u0041=="}}}},"signatures":[]}`,
		`{"signed":{"targets":null,"version":1},"signatures":[]}`,
		`{"signed":{"targets":{"a":{"custom":null}}},"signatures":[]}`,
		`{"signed":null,"signatures":[]}`,
		`{"signed":{"Targets":{}},"signatures":[]}`,
		`{"signed":{"_type":"Root","consistent_snapshot":false,"expires":"2030-01-01T00:00:00Z","keys":{},"roles":{},"version":1},"signatures":[]}`,
		`{"signed":{"_type":"Snapshot","expires":"2030-01-01T00:00:00Z","meta":{"root":{"hashes":{"sha256":"AA=="},"length":1}},"version":1},"signatures":[]}`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzParseFast checks parse's fast path (decode.go) against encoding/json:
// whatever it decodes, encoding/json decodes identically. (What it
// declines, the slow path decodes.)
func FuzzParseFast(f *testing.F) {
	addDecodeSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFast[Targets](t, data)
		checkFast[Root](t, data)
		checkFast[Snapshot](t, data)
		checkFast[Timestamp](t, data)
	})
}

// TestParseFastTaken checks that the fast path takes the files Notary
// writes (else it would be correct and useless).
func TestParseFastTaken(t *testing.T) {
	files, _ := filepath.Glob("testdata/*/*/targets*.json")
	more, _ := filepath.Glob("testdata/*/*/targets/*.json")
	files = append(files, more...)
	if len(files) == 0 {
		t.Fatal("no targets files in testdata")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !checkFast[Targets](t, b) {
			t.Errorf("%s: the fast path declined a file notary wrote", name)
		}
	}
	big := NewFileMeta([]byte("x"))
	tg := &Targets{Common: Common{Type: TypeTargets, Version: 3, Expires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}, Targets: map[string]FileMeta{}}
	for i := range 100 {
		tg.Targets[fmt.Sprintf("v1.%d.0 é", i)] = big
	}
	b, err := Sign(tg)
	if err != nil {
		t.Fatal(err)
	}
	if !checkFast[Targets](t, b) {
		t.Errorf("the fast path declined a file Sign wrote: %.300q", b)
	}
}

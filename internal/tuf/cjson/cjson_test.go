package cjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestCanonicalize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"sorted keys", `{"b":1,"a":2,"_type":"Root"}`, `{"_type":"Root","a":2,"b":1}`},
		{"whitespace", " {\n \"a\" : [ 1 , 2 ] ,\"b\":{ } } ", `{"a":[1,2],"b":{}}`},
		{"escapes only quote and backslash", `{"s":"a\"b\\c\n\u003c\u00e9\t"}`, "{\"s\":\"a\\\"b\\\\c\n<\u00e9\t\"}"},
		{"exponent integer", `{"v":1e3}`, `{"v":1000}`},
		{"integral float", `{"v":2.0}`, `{"v":2}`},
		{"negative", `{"v":-7}`, `{"v":-7}`},
		{"literals", `[true,false,null]`, `[true,false,null]`},
		{"bytewise key order", `{"b":0,"B":0,"é":0,"a":0}`, `{"B":0,"a":0,"b":0,"é":0}`},
		{"duplicate keys keep last", `{"a":1,"a":2}`, `{"a":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonicalize([]byte(tt.in))
			if err != nil {
				t.Fatalf("Canonicalize: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestCanonicalizeRejects(t *testing.T) {
	for _, in := range []string{`{"v":1.5}`, `{"v":1e400}`, `{`, `{"a":1} x`, ``, `NaN`} {
		if got, err := Canonicalize([]byte(in)); err == nil {
			t.Errorf("Canonicalize(%q) = %s, want error", in, got)
		}
	}
	if _, err := Canonicalize([]byte(`{"v":0.5}`)); !errors.Is(err, ErrNotCanonical) {
		t.Errorf("fraction: err = %v, want ErrNotCanonical", err)
	}
}

func TestMarshalStruct(t *testing.T) {
	type meta struct {
		Version int       `json:"version"`
		Type    string    `json:"_type"`
		Expires time.Time `json:"expires"`
		Sig     []byte    `json:"sig"`
		Opt     string    `json:"opt,omitempty"`
		Private *string   `json:"private"`
	}
	v := meta{Version: 3, Type: "Targets", Expires: time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC), Sig: []byte{1, 2, 3, 4}}
	got, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"_type":"Targets","expires":"2030-01-02T03:04:05.0000006Z","private":null,"sig":"AQIDBA==","version":3}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,"x",{"z":null,"y":[true]}]`, `"\u0000\\"`, `{"signed":{"_type":"Root","version":1}}`, `1e2`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c1, err := Canonicalize(data)
		if err != nil {
			return
		}
		// Canonical form writes control characters raw, which strict JSON
		// parsers (this package's included) refuse; only check the rest.
		if bytes.ContainsFunc(c1, func(r rune) bool { return r < 0x20 }) {
			return
		}
		if !json.Valid(c1) {
			t.Fatalf("output is not valid JSON: %q", c1)
		}
		c2, err := Canonicalize(c1)
		if err != nil {
			t.Fatalf("canonical output does not re-canonicalize: %v", err)
		}
		if !bytes.Equal(c1, c2) {
			t.Fatalf("not idempotent:\n%q\n%q", c1, c2)
		}
	})
}

// Numbers are read as Notary's verifier reads them: as float64.
func TestCanonicalizeNumbersAsNotary(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"v":9007199254740993}`, `{"v":9007199254740992}`}, // 2^53+1 rounds to even
		{`{"v":9007199254740995}`, `{"v":9007199254740996}`},
		{`{"v":123456789012345678}`, `{"v":123456789012345680}`},
		{`{"v":-9223372036854775808}`, `{"v":-9223372036854775808}`},
		{`{"v":999999999999999}`, `{"v":999999999999999}`},
		{`{"v":-0}`, `{"v":0}`},
		{`{"v":1E2}`, `{"v":100}`},
	}
	for _, tt := range tests {
		got, err := Canonicalize([]byte(tt.in))
		if err != nil {
			t.Errorf("Canonicalize(%s): %v", tt.in, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("Canonicalize(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	// 2^63 and beyond have no portable int64 conversion: refused.
	for _, in := range []string{`{"v":9223372036854775807}`, `{"v":9223372036854775808}`, `{"v":1e19}`, `{"v":-1e19}`} {
		if got, err := Canonicalize([]byte(in)); !errors.Is(err, ErrNotCanonical) {
			t.Errorf("Canonicalize(%s) = %s, %v; want ErrNotCanonical", in, got, err)
		}
	}
}

func TestIsCanonical(t *testing.T) {
	yes := []string{
		`{}`, `[]`, `{"a":1}`, `{"_type":"Root","a":[1,-2,true,false,null],"b":{"c":"d"}}`,
		`"x"`, `0`, `-1`, `999999999999999`, `{"s":"a\"b\\c"}`, "{\"s\":\"\u00e9\U0001F600\ufffd\"}",
		`{"A":0,"B":0,"a":0}`,
	}
	no := []string{
		``, ` {}`, `{} `, `{ }`, `{"a": 1}`, `{"b":1,"a":2}`, `{"a":1,"a":1}`, `[1, 2]`,
		`{"s":"\n"}`, `{"s":"\u0041"}`, `{"s":"\/"}`, `{"s":"<\u003c"}`, "{\"s\":\"\n\"}",
		`{"v":1.0}`, `{"v":1e3}`, `{"v":-0}`, `{"v":01}`, `{"v":1234567890123456}`,
		"{\"s\":\"\xff\"}", "{\"s\":\"\xed\xa0\x80\"}", `{"a\"":1}`, `{"a":1`, `{"a":1}}`, `tru`, `nul`,
	}
	for _, in := range yes {
		if !IsCanonical([]byte(in)) {
			t.Errorf("IsCanonical(%q) = false, want true", in)
		}
		if got, err := Canonicalize([]byte(in)); err != nil || string(got) != in {
			t.Errorf("test case %q is not canonical: %q, %v", in, got, err)
		}
	}
	for _, in := range no {
		if IsCanonical([]byte(in)) {
			t.Errorf("IsCanonical(%q) = true, want false", in)
		}
	}
}

// FuzzIsCanonical checks the one property the verifier relies on: whatever
// IsCanonical accepts, Canonicalize returns unchanged.
func FuzzIsCanonical(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":[1,"x",{"b":null}],"c":true}`, `{"s":"a\"b"}`, `{"v":-12}`, `[{"a":{}}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !IsCanonical(data) {
			return
		}
		got, err := Canonicalize(data)
		if err != nil {
			t.Fatalf("IsCanonical accepted %q, which does not canonicalize: %v", data, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("IsCanonical accepted %q, canonical form is %q", data, got)
		}
	})
}

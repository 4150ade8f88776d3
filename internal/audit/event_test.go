package audit

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

var at = time.Date(2027, 1, 2, 3, 4, 5, 678901234, time.FixedZone("X", 3600))

func publishEvent() Event {
	return Event{
		Type:    TUFPublish,
		Time:    at,
		Actor:   Actor{Kind: ActorUser, Name: "alice"},
		Subject: Subject{GUN: "example.com/app"},
		Roles: []RoleVersion{
			{Role: "targets", Version: 3, SHA256: strings.Repeat("ab", 32)},
			{Role: "snapshot", Version: 3, SHA256: strings.Repeat("cd", 32)},
		},
	}
}

func TestEventEncodeIsDeterministic(t *testing.T) {
	e := publishEvent()
	e.Origin = map[string]string{"z": "<&>", "a": "1"}
	b1, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"type":"tuf.publish","time":"2027-01-02T02:04:05.678901Z","actor":{"kind":"user","name":"alice"},"subject":{"gun":"example.com/app"},"roles":[{"role":"targets","version":3,"sha256":"abababababababababababababababababababababababababababababababab"},{"role":"snapshot","version":3,"sha256":"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"}],"origin":{"a":"1","z":"<&>"}}`
	if string(b1) != want {
		t.Fatalf("Encode =\n%s\nwant\n%s", b1, want)
	}
	for range 20 {
		b2, _ := e.Encode()
		if !bytes.Equal(b1, b2) {
			t.Fatal("Encode is not deterministic")
		}
	}
	back, err := ParseEvent(b1)
	if err != nil {
		t.Fatal(err)
	}
	if b3, _ := back.Encode(); !bytes.Equal(b1, b3) {
		t.Fatalf("parse and encode again changed the bytes:\n%s", b3)
	}
}

func TestEventValidate(t *testing.T) {
	ok := []Event{
		publishEvent(),
		{Type: TUFResign, Time: at, Actor: System, Subject: Subject{GUN: "g"}, Roles: []RoleVersion{{"timestamp", 9, strings.Repeat("0", 64)}}},
		{Type: TUFDelete, Time: at, Actor: Actor{Kind: ActorUser, Name: "admin"}, Subject: Subject{GUN: "g"}},
		{Type: RequestSubmit, Time: at, Actor: Actor{Kind: ActorCI, Issuer: "https://ci.example", Subject: "repo:x:ref:main"}, Subject: Subject{RequestID: "r1", GUN: "g", Tag: "v1"}, Origin: map[string]string{"repository": "x"}},
		{Type: RequestDeny, Time: at, Actor: Actor{Kind: ActorUser, Name: "bob"}, Subject: Subject{RequestID: "r1"}, Comment: "no"},
		{Type: RequestSign, Time: at, Actor: System, Subject: Subject{RequestID: "r1", GUN: "g", Tag: "v1", Digest: "sha256:" + strings.Repeat("1", 64)}, Roles: []RoleVersion{{"targets/releases", 4, strings.Repeat("2", 64)}}},
		{Type: KeyRotate, Time: at, Actor: Actor{Kind: ActorUser, Name: "admin"}, Subject: Subject{KeyID: "k", GUN: "g", Role: "timestamp"}},
		{Type: AdmissionBreakGlass, Time: at, Actor: Actor{Kind: ActorUser, Name: "webhook"}, Subject: Subject{Image: "registry/app@sha256:1", Namespace: "prod"}, Comment: "incident 42"},
		{Type: UserCreate, Time: at, Actor: Actor{Kind: ActorUser, Name: "admin"}, Subject: Subject{User: "carol"}},
		{Type: PolicyUpdate, Time: at, Actor: Actor{Kind: ActorUser, Name: "admin"}, Subject: Subject{Policy: "p", Project: "x"}, Changes: []string{"threshold"}},
	}
	for _, e := range ok {
		if _, err := e.Encode(); err != nil {
			t.Errorf("%s: %v", e.Type, err)
		}
	}
	bad := map[string]func(*Event){
		"unknown type":         func(e *Event) { e.Type = "tuf.frobnicate" },
		"no time":              func(e *Event) { e.Time = time.Time{} },
		"no actor":             func(e *Event) { e.Actor = Actor{} },
		"user without name":    func(e *Event) { e.Actor = Actor{Kind: ActorUser} },
		"ci without subject":   func(e *Event) { e.Actor = Actor{Kind: ActorCI, Issuer: "i"} },
		"system with issuer":   func(e *Event) { e.Actor = Actor{Kind: ActorSystem, Issuer: "i"} },
		"no GUN":               func(e *Event) { e.Subject.GUN = "" },
		"no roles":             func(e *Event) { e.Roles = nil },
		"role without version": func(e *Event) { e.Roles[0].Version = 0 },
		"uppercase sha256":     func(e *Event) { e.Roles[0].SHA256 = strings.Repeat("AB", 32) },
		"short sha256":         func(e *Event) { e.Roles[0].SHA256 = "abcd" },
		"unnamed origin":       func(e *Event) { e.Origin = map[string]string{"": "x"} },
		"too large":            func(e *Event) { e.Comment = strings.Repeat("x", MaxEntrySize) },
	}
	for name, mutate := range bad {
		e := publishEvent()
		mutate(&e)
		if _, err := e.Encode(); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: Encode = %v, want ErrInvalidEvent", name, err)
		}
	}
	// The formats of a signing: DCT needs its role versions, cosign its
	// signatures.
	d1 := "sha256:" + strings.Repeat("1", 64)
	cos := []CosignSignature{
		{Digest: d1, Form: CosignBundle, Ref: "sha256:" + strings.Repeat("3", 64), KeyID: "k"},
		{Digest: d1, Form: CosignLegacy, Ref: "sha256-" + strings.Repeat("1", 64) + ".sig", KeyID: "k", Existing: true},
	}
	sign := func() Event {
		return Event{Type: RequestSign, Time: at, Actor: System, Subject: Subject{RequestID: "r1", GUN: "g", Tag: "v1", Digest: d1},
			Roles: []RoleVersion{{"targets/releases", 4, strings.Repeat("2", 64)}}, Formats: []string{FormatDCT, FormatCosign}, Cosign: cos}
	}
	okSign := map[string]func(*Event){
		"dct and cosign": func(*Event) {},
		"cosign alone":   func(e *Event) { e.Formats, e.Roles = []string{FormatCosign}, nil },
		"dct alone":      func(e *Event) { e.Formats, e.Cosign = []string{FormatDCT}, nil },
		"fail after dct": func(e *Event) {
			e.Type, e.Formats, e.Cosign, e.Reason = RequestFail, []string{FormatDCT}, nil, "cosign refused"
		},
	}
	for name, mutate := range okSign {
		e := sign()
		mutate(&e)
		if _, err := e.Encode(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	badSign := map[string]func(*Event){
		"dct without roles":    func(e *Event) { e.Roles = nil },
		"no formats, no roles": func(e *Event) { e.Formats, e.Roles = nil, nil },
		"cosign without sigs":  func(e *Event) { e.Cosign = nil },
		"unknown format":       func(e *Event) { e.Formats = append(e.Formats, "notation") },
		"format twice":         func(e *Event) { e.Formats = []string{FormatDCT, FormatDCT, FormatCosign} },
		"cosign bad digest": func(e *Event) {
			e.Cosign = []CosignSignature{{Digest: "sha256:AB", Form: CosignBundle, Ref: "r", KeyID: "k"}}
		},
		"cosign unknown form":     func(e *Event) { e.Cosign = []CosignSignature{{Digest: d1, Form: "attached", Ref: "r", KeyID: "k"}} },
		"cosign without ref":      func(e *Event) { e.Cosign = []CosignSignature{{Digest: d1, Form: CosignBundle, KeyID: "k"}} },
		"cosign without key":      func(e *Event) { e.Cosign = []CosignSignature{{Digest: d1, Form: CosignLegacy, Ref: "r"}} },
		"cosign on another event": func(e *Event) { e.Type, e.Subject = TUFPublish, Subject{GUN: "g"} },
	}
	for name, mutate := range badSign {
		e := sign()
		mutate(&e)
		if _, err := e.Encode(); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: Encode = %v, want ErrInvalidEvent", name, err)
		}
	}
	for _, typ := range EventTypes {
		if !typ.Known() {
			t.Errorf("%s is not Known", typ)
		}
	}
}

func TestDecodeEventIsStrict(t *testing.T) {
	for _, bad := range []string{
		`{"type":"admission.deny","bogus":1}`,
		`{"type":"admission.deny"} {}`,
		`[]`,
		``,
	} {
		if _, err := DecodeEvent(strings.NewReader(bad)); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("DecodeEvent(%q) = %v", bad, err)
		}
	}
	if e, err := DecodeEvent(strings.NewReader(`{"type":"admission.deny","subject":{"image":"x"}}`)); err != nil || e.Subject.Image != "x" {
		t.Errorf("DecodeEvent(good) = %+v, %v", e, err)
	}
}

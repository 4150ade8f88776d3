package oci

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// fixtures are objects the real cosign v3.1.3 wrote (testdata/…/README).
const fixtures = "testdata/cosign-v3.1.3/"

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixtures + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixtureKey(t testing.TB) crypto.PublicKey {
	t.Helper()
	block, _ := pem.Decode(readFixture(t, "cosign.pub"))
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func fixtureWant(t testing.TB, attestation bool) want {
	pub := fixtureKey(t)
	hint, err := KeyHint(pub)
	if err != nil {
		t.Fatal(err)
	}
	return want{digest: string(readFixture(t, "digest")), pub: pub, hint: hint, attestation: attestation}
}

// TestCosignFixtures verifies what cosign wrote, offline, and checks that
// Signet's writer produces the very payload bytes cosign signs.
func TestCosignFixtures(t *testing.T) {
	digest := string(readFixture(t, "digest"))

	// Bundle signature (cosign sign -a team=x).
	raw := readFixture(t, "sign.bundle.json")
	b, err := ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	w := fixtureWant(t, false)
	if b.VerificationMaterial.PublicKey.Hint != w.hint {
		t.Errorf("cosign's key hint %s, ours %s", b.VerificationMaterial.PublicKey.Hint, w.hint)
	}
	o := referrer{source: "fixture", bundle: b}.check(w)
	if o.sig == nil {
		t.Fatalf("cosign's bundle does not verify: %v", o.rej.Reason)
	}
	if o.sig.PredicateType != PredicateTypeSign || o.sig.Annotations["team"] != "x" {
		t.Fatalf("verified %+v", o.sig)
	}
	ours, err := NewStatement(digest, "", PredicateTypeSign, nil, map[string]string{"team": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, b.DSSEEnvelope.Body()) {
		t.Errorf("statement bytes differ:\ncosign %s\nsignet %s", b.DSSEEnvelope.Body(), ours)
	}
	// Our bundle for the same envelope is cosign's byte for byte.
	if again, _ := NewBundle(b.DSSEEnvelope, w.hint); !bytes.Equal(again, raw) {
		t.Errorf("bundle bytes differ:\ncosign %s\nsignet %s", raw, again)
	}

	// Legacy signature (cosign sign --new-bundle-format=false).
	payload := readFixture(t, "sign.payload.json")
	l := legacyLayer{source: "fixture.sig", desc: v1.Descriptor{
		MediaType:   MediaTypeSimpleSigning,
		Annotations: map[string]string{AnnotationSignature: string(readFixture(t, "sign.payload.sig"))},
	}, blob: payload}
	if o := l.check(w); o.sig == nil {
		t.Fatalf("cosign's legacy signature does not verify: %v", o.rej.Reason)
	}
	p, err := ParseSimpleSigning(payload)
	if err != nil {
		t.Fatal(err)
	}
	ours, _ = NewSimpleSigning(p.Critical.Identity.DockerReference, digest, nil)
	if !bytes.Equal(ours, payload) {
		t.Errorf("simple-signing bytes differ:\ncosign %s\nsignet %s", payload, ours)
	}

	// Attestations: the custom bundle and the legacy cyclonedx envelope.
	aw := fixtureWant(t, true)
	b, err = ParseBundle(readFixture(t, "attest-custom.bundle.json"))
	if err != nil {
		t.Fatal(err)
	}
	o = referrer{source: "fixture", bundle: b}.check(aw)
	if o.sig == nil {
		t.Fatalf("cosign's attestation bundle: %v", o.rej)
	}
	custom, _ := PredicateType("custom")
	wantPred, _ := Predicate("custom", []byte("{\"hello\":\"world\"}\n"), testNow)
	if o.sig.PredicateType != custom || !samePredicate(custom, o.sig.Statement.Predicate, wantPred) || o.sig.Statement.Type != StatementTypeV01 {
		t.Fatalf("custom attestation %+v %s", o.sig, o.sig.Statement.Predicate)
	}
	l = legacyLayer{source: "fixture.att", desc: v1.Descriptor{MediaType: MediaTypeDSSE}, blob: readFixture(t, "attest-cyclonedx.dsse.json")}
	o = l.check(aw)
	if o.sig == nil {
		t.Fatalf("cosign's legacy attestation: %v", o.rej)
	}
	if cdx, _ := PredicateType("cyclonedx"); o.sig.PredicateType != cdx || o.sig.Statement.Subject[0].Name != p.Critical.Identity.DockerReference {
		t.Fatalf("cyclonedx attestation %+v", o.sig.Statement)
	}
	// The same with a wrong digest or key is rejected.
	aw.digest = "sha256:" + strings.Repeat("1", 64)
	if o := l.check(aw); o.rej == nil || !strings.Contains(o.rej.Reason.Error(), "does not cover") {
		t.Fatalf("another digest: %+v", o)
	}
	if o := l.check(fixtureWant(t, false)); o.rej == nil {
		t.Fatal("an attestation layer verified as a signature")
	}
}

// TestBundleTampering changes one thing at a time in a bundle cosign wrote
// and checks it is refused, by the parser or by the check.
func TestBundleTampering(t *testing.T) {
	raw := readFixture(t, "sign.bundle.json")
	w := fixtureWant(t, false)
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	env := func(m map[string]any) map[string]any { return m["dsseEnvelope"].(map[string]any) }
	sig0 := func(m map[string]any) map[string]any {
		return env(m)["signatures"].([]any)[0].(map[string]any)
	}
	resign := func(m map[string]any, body []byte) {
		env(m)["payload"] = base64.StdEncoding.EncodeToString(body)
	}
	for name, tc := range map[string]struct {
		bundle []byte
		parse  bool // the parser refuses it (else the check does)
	}{
		"flipped signature": {edit(func(m map[string]any) {
			s, _ := base64.StdEncoding.DecodeString(sig0(m)["sig"].(string))
			s[10] ^= 1
			sig0(m)["sig"] = base64.StdEncoding.EncodeToString(s)
		}), false},
		"other payload": {edit(func(m map[string]any) {
			resign(m, bytes.Replace(readBody(t, raw), []byte(`"team":"x"`), []byte(`"team":"y"`), 1))
		}), false},
		"payload type":    {edit(func(m map[string]any) { env(m)["payloadType"] = "application/json" }), false},
		"two signatures":  {edit(func(m map[string]any) { env(m)["signatures"] = []any{sig0(m), sig0(m)} }), false},
		"no signatures":   {edit(func(m map[string]any) { env(m)["signatures"] = []any{} }), true},
		"bundle v0.2":     {edit(func(m map[string]any) { m["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2" }), true},
		"bundle v0.4":     {edit(func(m map[string]any) { m["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.4+json" }), true},
		"unknown field":   {edit(func(m map[string]any) { m["extra"] = true }), true},
		"no key material": {edit(func(m map[string]any) { m["verificationMaterial"] = map[string]any{} }), true},
		"certificate chain": {edit(func(m map[string]any) {
			m["verificationMaterial"] = map[string]any{"x509CertificateChain": map[string]any{}}
		}), true},
		"tlog without proof": {edit(func(m map[string]any) {
			m["verificationMaterial"].(map[string]any)["tlogEntries"] = []any{map[string]any{"logIndex": "1"}}
		}), true},
		"certificate": {edit(func(m map[string]any) {
			m["verificationMaterial"] = map[string]any{"certificate": map[string]any{"rawBytes": "AAAA"}}
		}), false},
		"message signature": {edit(func(m map[string]any) {
			delete(m, "dsseEnvelope")
			m["messageSignature"] = map[string]any{"signature": sig0(map[string]any{"dsseEnvelope": map[string]any{"signatures": []any{map[string]any{"sig": "AAAA"}}}})["sig"]}
		}), false},
		"both contents": {edit(func(m map[string]any) { m["messageSignature"] = map[string]any{"signature": "AAAA"} }), true},
		"not JSON":      {[]byte(`{"mediaType":`), true},
		"trailing data": {append(append([]byte{}, raw...), []byte(`{}`)...), true},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := ParseBundle(tc.bundle)
			if tc.parse {
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("parsed: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			o := referrer{source: "tampered", bundle: b}.check(w)
			if o.sig != nil || o.rej == nil {
				t.Fatalf("accepted: %+v", o)
			}
		})
	}
}

func readBody(t *testing.T, bundle []byte) []byte {
	b, err := ParseBundle(bundle)
	if err != nil {
		t.Fatal(err)
	}
	return b.DSSEEnvelope.Body()
}

func TestPAE(t *testing.T) {
	// The DSSE specification's test vector.
	got := PAE("http://example.com/HelloWorld", []byte("hello world"))
	if want := "DSSEv1 29 http://example.com/HelloWorld 11 hello world"; string(got) != want {
		t.Fatalf("PAE %q", got)
	}
}

func TestPredicateTypes(t *testing.T) {
	for name, want := range map[string]string{
		"custom":                           "https://cosign.sigstore.dev/attestation/v1",
		"slsaprovenance":                   "https://slsa.dev/provenance/v0.2",
		"slsaprovenance1":                  "https://slsa.dev/provenance/v1",
		"spdxjson":                         "https://spdx.dev/Document",
		"cyclonedx":                        "https://cyclonedx.org/bom",
		"vuln":                             "https://cosign.sigstore.dev/attestation/vuln/v1",
		"https://example.com/predicate/v1": "https://example.com/predicate/v1",
	} {
		if got, err := PredicateType(name); err != nil || got != want {
			t.Errorf("%s: %s %v", name, got, err)
		}
	}
	for _, bad := range []string{"", "slsa", "example.com/x", "provenance"} {
		if _, err := PredicateType(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := Predicate("slsaprovenance1", []byte(`["not","an","object"]`), testNow); err == nil {
		t.Error("a JSON array accepted as a predicate")
	}
	if _, err := Predicate("cyclonedx", []byte(`not json`), testNow); err == nil {
		t.Error("not JSON accepted as a predicate")
	}
	p, err := Predicate("custom", []byte("anything at all"), testNow)
	if err != nil || string(p) != `{"Data":"anything at all","Timestamp":"2026-12-06T12:00:00Z"}` {
		t.Errorf("custom predicate %s %v", p, err)
	}
}

func FuzzParseBundle(f *testing.F) {
	f.Add(readFixture(f, "sign.bundle.json"))
	f.Add(readFixture(f, "attest-custom.bundle.json"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error outside ErrFormat: %v", err)
			}
			return
		}
		// A parsed bundle can be checked without panicking, and only a
		// bundle signed by the fixture key verifies.
		o := referrer{source: "fuzz", bundle: b}.check(fixtureWant(t, false))
		if o.sig != nil && !bytes.Contains(data, []byte(`"sig"`)) {
			t.Fatal("verified without a signature")
		}
	})
}

func FuzzParseSimpleSigning(f *testing.F) {
	f.Add(readFixture(f, "sign.payload.json"))
	f.Add([]byte(`{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"sha256:` + strings.Repeat("a", 64) + `"},"type":"cosign container image signature"},"optional":{"a":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseSimpleSigning(data)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error outside ErrFormat: %v", err)
			}
			return
		}
		if p.Critical.Type != SimpleSigningType || !ValidDigest(p.Critical.Image.DockerManifestDigest) {
			t.Fatalf("accepted %+v", p)
		}
		_ = stringAnnotations(p.Optional)
	})
}

func FuzzParseStatement(f *testing.F) {
	for _, name := range []string{"sign.bundle.json", "attest-custom.bundle.json"} {
		b, err := ParseBundle(readFixture(f, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b.DSSEEnvelope.Body())
	}
	f.Add(readFixture(f, "attest-cyclonedx.dsse.json"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if s, err := ParseStatement(data); err == nil {
			_, _ = s.Covers(string(readFixture(t, "digest")))
		} else if !errors.Is(err, ErrFormat) {
			t.Fatalf("statement: error outside ErrFormat: %v", err)
		}
		if e, err := ParseEnvelope(data); err == nil {
			_ = PAE(e.PayloadType, e.Body())
		} else if !errors.Is(err, ErrFormat) {
			t.Fatalf("envelope: error outside ErrFormat: %v", err)
		}
	})
}

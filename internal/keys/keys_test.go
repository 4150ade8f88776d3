package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func testSigners(t *testing.T) map[string]crypto.Signer {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]crypto.Signer{TypeECDSA: ec, TypeED25519: ed, TypeRSA: rs}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	msg := []byte(`{"_type":"Targets","version":1}`)
	wantMethod := map[string]string{TypeECDSA: MethodECDSA, TypeED25519: MethodEdDSA, TypeRSA: MethodRSAPSS}
	for typ, s := range testSigners(t) {
		t.Run(typ, func(t *testing.T) {
			pub, err := FromCrypto(s.Public())
			if err != nil {
				t.Fatal(err)
			}
			if pub.Type() != typ {
				t.Fatalf("type = %s, want %s", pub.Type(), typ)
			}
			method, sig, err := Sign(s, msg)
			if err != nil {
				t.Fatal(err)
			}
			if method != wantMethod[typ] {
				t.Errorf("method = %s, want %s", method, wantMethod[typ])
			}
			if typ == TypeECDSA && len(sig) != 64 {
				t.Errorf("ecdsa signature is %d bytes, want raw r||s of 64", len(sig))
			}
			if err := pub.Verify(strings.ToUpper(method), msg, sig); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if err := pub.Verify(method, append(msg, ' '), sig); !errors.Is(err, ErrBadSignature) {
				t.Errorf("Verify(tampered) = %v, want ErrBadSignature", err)
			}
			bad := append([]byte(nil), sig...)
			bad[len(bad)/2] ^= 1
			if err := pub.Verify(method, msg, bad); !errors.Is(err, ErrBadSignature) {
				t.Errorf("Verify(bad sig) = %v, want ErrBadSignature", err)
			}
			if err := pub.Verify("md5", msg, sig); !errors.Is(err, ErrBadSignature) {
				t.Errorf("Verify(unknown method) = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestMethodKeyMismatch(t *testing.T) {
	s := testSigners(t)
	ec, _ := FromCrypto(s[TypeECDSA].Public())
	_, sig, _ := Sign(s[TypeED25519], []byte("m"))
	if err := ec.Verify(MethodEdDSA, []byte("m"), sig); err == nil {
		t.Fatal("eddsa signature accepted by an ecdsa key")
	}
}

func TestX509KeyIDs(t *testing.T) {
	s := testSigners(t)[TypeECDSA]
	now := time.Now()
	cert, err := NewRootCertificate(s, "example.com/app", now, now.AddDate(10, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	k, err := FromCertificate(cert)
	if err != nil {
		t.Fatal(err)
	}
	if k.Type() != TypeECDSAX509 {
		t.Fatalf("type %s", k.Type())
	}
	plain, _ := FromCrypto(s.Public())
	if k.CanonicalID() != plain.ID() {
		t.Errorf("canonical ID %s, want the plain key's ID %s", k.CanonicalID(), plain.ID())
	}
	if k.ID() == plain.ID() {
		t.Error("x509 key ID equals plain key ID")
	}
	if !strings.HasPrefix(string(k.Public()), "-----BEGIN CERTIFICATE-----\n") {
		t.Errorf("PEM not Go's encoding: %q", k.Public()[:30])
	}
	if err := CheckCertificate(cert, now); err != nil {
		t.Errorf("CheckCertificate: %v", err)
	}
	if err := CheckCertificate(cert, now.AddDate(11, 0, 0)); !errors.Is(err, ErrBadCertificate) {
		t.Errorf("expired certificate: %v", err)
	}
	if err := CheckCertificate(cert, now.AddDate(0, 0, -3)); !errors.Is(err, ErrBadCertificate) {
		t.Errorf("not yet valid certificate: %v", err)
	}
	c2 := *cert
	c2.SignatureAlgorithm = x509.ECDSAWithSHA1
	if err := CheckCertificate(&c2, now); !errors.Is(err, ErrBadCertificate) {
		t.Errorf("sha1 certificate: %v", err)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	pub, _ := FromCrypto(testSigners(t)[TypeECDSA].Public())
	b, err := json.Marshal(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), `{"keytype":"ecdsa","keyval":{"private":null,"public":"MFkw`) {
		t.Errorf("encoding %s", b)
	}
	var back PublicKey
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.ID() != pub.ID() {
		t.Errorf("ID changed across JSON")
	}
	for _, bad := range []string{
		`{"keytype":"ecdsa","keyval":{"private":null,"public":"AAAA"}}`,
		`{"keytype":"dsa","keyval":{"private":null,"public":"AAAA"}}`,
		`{"keytype":"ed25519","keyval":{"private":null,"public":"AAAA"}}`,
		`{"keytype":"ed25519","keyval":{"private":"AAAA","public":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}`,
		`{"keytype":"ecdsa-x509","keyval":{"private":null,"public":"AAAA"}}`,
	} {
		var k PublicKey
		if err := json.Unmarshal([]byte(bad), &k); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// TestKnownKeyID pins the key ID rule to a value computed by hand:
// sha256 of {"keytype":"ed25519","keyval":{"private":null,"public":"<b64>"}}.
func TestKnownKeyID(t *testing.T) {
	k, err := New(TypeED25519, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if got := k.ID(); got != knownZeroEd25519ID {
		t.Errorf("ID = %s, want %s", got, knownZeroEd25519ID)
	}
}

// Computed with: printf '{"keytype":"ed25519","keyval":{"private":null,"public":"AAAA…A="}}' | sha256sum
const knownZeroEd25519ID = "06256955f08f0df5598a5d102b828847052eddce612c559400d7e9b7c329f594"

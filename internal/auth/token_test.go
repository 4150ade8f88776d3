package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// pki is a root CA, an intermediate, a leaf under it, and a self-signed
// certificate nobody trusts.
type pki struct {
	rootKey, interKey, leafKey, strangerKey *ecdsa.PrivateKey
	root, inter, leaf, stranger             *x509.Certificate
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newCert(t testing.TB, cn string, pub crypto.PublicKey, parent *x509.Certificate, signer crypto.Signer, ca bool) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: ca,
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newPKI(t testing.TB) *pki {
	p := &pki{rootKey: newKey(t), interKey: newKey(t), leafKey: newKey(t), strangerKey: newKey(t)}
	p.root = newCert(t, "root", p.rootKey.Public(), nil, p.rootKey, true)
	p.inter = newCert(t, "inter", p.interKey.Public(), p.root, p.rootKey, true)
	p.leaf = newCert(t, "leaf", p.leafKey.Public(), p.inter, p.interKey, false)
	p.stranger = newCert(t, "stranger", p.strangerKey.Public(), nil, p.strangerKey, true)
	return p
}

func x5c(certs ...*x509.Certificate) []string {
	var out []string
	for _, c := range certs {
		out = append(out, base64.StdEncoding.EncodeToString(c.Raw))
	}
	return out
}

func goodClaims() Claims {
	return Claims{
		Issuer: "test-issuer", Subject: "alice", Audience: Audience{"test-service"},
		Expiry: NumericDate(t0.Add(5 * time.Minute).Unix()), NotBefore: NumericDate(t0.Unix()), IssuedAt: NumericDate(t0.Unix()),
		Access: []ResourceActions{{Type: "repository", Name: "example.com/a", Actions: []string{"pull", "push"}}},
	}
}

func mustSign(t testing.TB, s crypto.Signer, h Header, c Claims) string {
	t.Helper()
	tok, err := SignToken(s, h, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signRaw signs an arbitrary claims object (for wire shapes Claims cannot
// produce, such as aud arrays of one or fractional times).
func signRaw(t testing.TB, s crypto.Signer, h Header, claims string) string {
	t.Helper()
	hb, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	signed := b64(hb) + "." + b64([]byte(claims))
	sig, err := signJWS(s, h.Algorithm, []byte(signed))
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + b64(sig)
}

func verifierFor(t testing.TB, p *pki) *Verifier {
	t.Helper()
	keys := NewTrustedKeys()
	if err := keys.AddCertificate(p.root); err != nil {
		t.Fatal(err)
	}
	return &Verifier{Issuer: "test-issuer", Audience: "test-service", Keys: keys}
}

func TestVerify(t *testing.T) {
	p := newPKI(t)
	v := verifierFor(t, p)
	rootKID, err := LibtrustKeyID(p.rootKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	rootTP, err := Thumbprint(p.rootKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	chain := Header{Algorithm: "ES256", X5C: x5c(p.leaf, p.inter)}
	with := func(f func(*Claims)) Claims { c := goodClaims(); f(&c); return c }
	tests := []struct {
		name  string
		token string
		now   time.Time
		want  error // nil: valid
	}{
		{"x5c chain through an intermediate", mustSign(t, p.leafKey, chain, goodClaims()), t0, nil},
		{"x5c of the root itself", mustSign(t, p.rootKey, Header{Algorithm: "ES256", X5C: x5c(p.root)}, goodClaims()), t0, nil},
		{"kid: libtrust key ID of a bundle certificate", mustSign(t, p.rootKey, Header{Algorithm: "ES256", KeyID: rootKID}, goodClaims()), t0, nil},
		{"kid: RFC 7638 thumbprint of a bundle certificate", mustSign(t, p.rootKey, Header{Algorithm: "ES256", KeyID: rootTP}, goodClaims()), t0, nil},
		{"kid unknown", mustSign(t, p.leafKey, Header{Algorithm: "ES256", KeyID: "ABCD:EFGH"}, goodClaims()), t0, ErrUntrustedKey},
		{"kid of an untrusted key", mustSign(t, p.leafKey, Header{Algorithm: "ES256", KeyID: mustKID(t, p.leafKey.Public())}, goodClaims()), t0, ErrUntrustedKey},
		{"no key in header", mustSign(t, p.rootKey, Header{Algorithm: "ES256"}, goodClaims()), t0, ErrUntrustedKey},
		{"x5c not chaining to the bundle", mustSign(t, p.strangerKey, Header{Algorithm: "ES256", X5C: x5c(p.stranger)}, goodClaims()), t0, ErrUntrustedKey},
		{"x5c leaf without its intermediate", mustSign(t, p.leafKey, Header{Algorithm: "ES256", X5C: x5c(p.leaf)}, goodClaims()), t0, ErrUntrustedKey},
		{"x5c chain expired", mustSign(t, p.leafKey, chain, with(func(c *Claims) { c.Expiry = NumericDate(t0.Add(48 * time.Hour).Unix()) })), t0.Add(30 * time.Hour), ErrUntrustedKey},
		{"x5c trusted but signed by another key", mustSign(t, p.strangerKey, chain, goodClaims()), t0, ErrSignature},
		{"wrong issuer", mustSign(t, p.leafKey, chain, with(func(c *Claims) { c.Issuer = "other" })), t0, ErrIssuer},
		{"wrong audience", mustSign(t, p.leafKey, chain, with(func(c *Claims) { c.Audience = Audience{"registry"} })), t0, ErrAudience},
		{"no audience", mustSign(t, p.leafKey, chain, with(func(c *Claims) { c.Audience = nil })), t0, ErrAudience},
		{"aud array holding the service", mustSign(t, p.leafKey, chain, with(func(c *Claims) { c.Audience = Audience{"registry", "test-service"} })), t0, nil},
		{"aud array without the service", mustSign(t, p.leafKey, chain, with(func(c *Claims) { c.Audience = Audience{"registry", "other"} })), t0, ErrAudience},
		{"aud array of one", signRaw(t, p.leafKey, chain, `{"iss":"test-issuer","aud":["test-service"],"exp":`+fmt.Sprint(t0.Unix()+60)+`,"access":[]}`), t0, nil},
		{"fractional exp", signRaw(t, p.leafKey, chain, `{"iss":"test-issuer","aud":"test-service","exp":`+fmt.Sprint(t0.Unix()+60)+`.5,"access":[]}`), t0, nil},
		{"expired within leeway", mustSign(t, p.leafKey, chain, goodClaims()), t0.Add(5*time.Minute + 59*time.Second), nil},
		{"expired at the end of leeway", mustSign(t, p.leafKey, chain, goodClaims()), t0.Add(5*time.Minute + 60*time.Second), nil},
		{"expired beyond leeway", mustSign(t, p.leafKey, chain, goodClaims()), t0.Add(5*time.Minute + 61*time.Second), ErrExpired},
		{"no exp", mustSign(t, p.leafKey, chain, with(func(c *Claims) { c.Expiry = 0 })), t0, ErrExpired},
		{"nbf within leeway", mustSign(t, p.leafKey, chain, goodClaims()), t0.Add(-59 * time.Second), nil},
		{"nbf beyond leeway", mustSign(t, p.leafKey, chain, goodClaims()), t0.Add(-61 * time.Second), ErrNotYetValid},
		{"garbage", "not-a-token", t0, ErrMalformedToken},
		{"bad base64", "a.b.c!", t0, ErrMalformedToken},
		{"claims not JSON", b64([]byte(`{"alg":"ES256"}`)) + "." + b64([]byte("nope")) + "." + b64([]byte("sig")), t0, ErrMalformedToken},
		{"aud of the wrong type", signRaw(t, p.leafKey, chain, `{"iss":"test-issuer","aud":5}`), t0, ErrMalformedToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(tc.token, tc.now)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v, want valid", err)
				}
				if c.Issuer != "test-issuer" {
					t.Errorf("claims issuer %q", c.Issuer)
				}
				return
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
}

func mustKID(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	id, err := LibtrustKeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestVerifySignatureTampering(t *testing.T) {
	p := newPKI(t)
	v := verifierFor(t, p)
	tok := mustSign(t, p.leafKey, Header{Algorithm: "ES256", X5C: x5c(p.leaf, p.inter)}, goodClaims())
	parts := strings.Split(tok, ".")

	// A changed claim (more access) breaks the signature.
	c := goodClaims()
	c.Access[0].Actions = []string{"*"}
	cb, _ := json.Marshal(c)
	forged := parts[0] + "." + b64(cb) + "." + parts[2]
	if _, err := v.Verify(forged, t0); !errors.Is(err, ErrSignature) {
		t.Errorf("forged claims: %v, want ErrSignature", err)
	}
	// A flipped signature bit.
	sig, _ := b64url(parts[2])
	sig[5] ^= 1
	if _, err := v.Verify(parts[0]+"."+parts[1]+"."+b64(sig), t0); !errors.Is(err, ErrSignature) {
		t.Errorf("flipped signature: %v, want ErrSignature", err)
	}
	// No signature.
	if _, err := v.Verify(parts[0]+"."+parts[1]+".", t0); !errors.Is(err, ErrSignature) {
		t.Errorf("empty signature: %v, want ErrSignature", err)
	}
	// alg none and HMAC are refused whatever the key.
	for _, alg := range []string{"none", "HS256", "ES384", "RS256"} {
		h := Header{Algorithm: alg, X5C: x5c(p.leaf, p.inter)}
		hb, _ := json.Marshal(h)
		tok := b64(hb) + "." + parts[1] + "." + parts[2]
		if _, err := v.Verify(tok, t0); !errors.Is(err, ErrSignature) {
			t.Errorf("alg %s: %v, want ErrSignature", alg, err)
		}
	}
}

func TestVerifyJWK(t *testing.T) {
	p := newPKI(t)
	v := verifierFor(t, p)
	jwkOf := func(k *ecdsa.PublicKey, chain []string) json.RawMessage {
		b, _ := k.Bytes()
		m := map[string]any{"kty": "EC", "crv": "P-256", "x": b64(b[1:33]), "y": b64(b[33:])}
		if chain != nil {
			m["x5c"] = chain
		}
		raw, _ := json.Marshal(m)
		return raw
	}
	ok := mustSign(t, p.leafKey, Header{Algorithm: "ES256", JWK: jwkOf(&p.leafKey.PublicKey, x5c(p.leaf, p.inter))}, goodClaims())
	if _, err := v.Verify(ok, t0); err != nil {
		t.Errorf("jwk with chain: %v", err)
	}
	root := mustSign(t, p.rootKey, Header{Algorithm: "ES256", JWK: jwkOf(&p.rootKey.PublicKey, nil)}, goodClaims())
	if _, err := v.Verify(root, t0); err != nil {
		t.Errorf("jwk of a trusted key: %v", err)
	}
	bad := mustSign(t, p.strangerKey, Header{Algorithm: "ES256", JWK: jwkOf(&p.strangerKey.PublicKey, nil)}, goodClaims())
	if _, err := v.Verify(bad, t0); !errors.Is(err, ErrUntrustedKey) {
		t.Errorf("untrusted jwk: %v, want ErrUntrustedKey", err)
	}
	swapped := mustSign(t, p.strangerKey, Header{Algorithm: "ES256", JWK: jwkOf(&p.strangerKey.PublicKey, x5c(p.leaf, p.inter))}, goodClaims())
	if _, err := v.Verify(swapped, t0); !errors.Is(err, ErrUntrustedKey) {
		t.Errorf("jwk differing from its certificate: %v, want ErrUntrustedKey", err)
	}
}

func TestVerifyJWKS(t *testing.T) {
	ec := newKey(t)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecb, _ := ec.PublicKey.Bytes()
	jwks := fmt.Sprintf(`{"keys":[
		{"kty":"EC","kid":"ec-1","crv":"P-256","x":%q,"y":%q,"use":"sig"},
		{"kty":"RSA","kid":"rsa-1","n":%q,"e":"AQAB"},
		{"kty":"OKP","crv":"Ed25519","x":%q}]}`,
		b64(ecb[1:33]), b64(ecb[33:]), b64(rk.N.Bytes()), b64(edPub))
	set, err := ParseJWKS([]byte(jwks))
	if err != nil {
		t.Fatal(err)
	}
	edTP, _ := Thumbprint(edPub)
	keys := NewTrustedKeys()
	for id, k := range set {
		if err := keys.AddKey(id, k); err != nil {
			t.Fatal(err)
		}
	}
	v := &Verifier{Issuer: "test-issuer", Audience: "test-service", Keys: keys}
	for _, tc := range []struct {
		kid string
		s   crypto.Signer
		alg string
	}{{"ec-1", ec, "ES256"}, {"rsa-1", rk, "RS256"}, {edTP, edPriv, "EdDSA"}} {
		tok := mustSign(t, tc.s, Header{Algorithm: tc.alg, KeyID: tc.kid}, goodClaims())
		if _, err := v.Verify(tok, t0); err != nil {
			t.Errorf("kid %s (%s): %v", tc.kid, tc.alg, err)
		}
	}
	// The EC key under the RSA key's kid: wrong key, refused.
	tok := mustSign(t, ec, Header{Algorithm: "ES256", KeyID: "rsa-1"}, goodClaims())
	if _, err := v.Verify(tok, t0); !errors.Is(err, ErrSignature) {
		t.Errorf("EC token under an RSA kid: %v, want ErrSignature", err)
	}

	for name, bad := range map[string]string{
		"private":   `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + b64(edPub) + `","d":"AAAA"}]}`,
		"empty":     `{"keys":[]}`,
		"off curve": `{"keys":[{"kty":"EC","crv":"P-256","x":"` + b64(make([]byte, 32)) + `","y":"` + b64(make([]byte, 32)) + `"}]}`,
		"small rsa": `{"keys":[{"kty":"RSA","n":"` + b64(make([]byte, 128)) + `","e":"AQAB"}]}`,
		"dup kid":   `{"keys":[{"kty":"OKP","kid":"a","crv":"Ed25519","x":"` + b64(edPub) + `"},{"kty":"OKP","kid":"a","crv":"Ed25519","x":"` + b64(edPub) + `"}]}`,
	} {
		if _, err := ParseJWKS([]byte(bad)); err == nil {
			t.Errorf("ParseJWKS(%s): no error", name)
		}
	}
}

// TestLibtrustKeyID checks the format libtrust gives key IDs, and the value
// against an independent computation (the e2e test checks it against a
// real docker-registry).
func TestLibtrustKeyID(t *testing.T) {
	k := newKey(t)
	id := mustKID(t, k.Public())
	if !regexp.MustCompile(`^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$`).MatchString(id) {
		t.Fatalf("key ID %q is not twelve base32 groups", id)
	}
	der, _ := x509.MarshalPKIXPublicKey(k.Public())
	h := crypto.SHA256.New()
	h.Write(der)
	want := base32.StdEncoding.EncodeToString(h.Sum(nil)[:30]) // 240 bits: 48 characters, no padding
	if got := strings.ReplaceAll(id, ":", ""); got != want {
		t.Errorf("key ID %s, want %s", got, want)
	}
}

// TestThumbprintRFC7638 checks the RSA example of RFC 7638 §3.1.
func TestThumbprintRFC7638(t *testing.T) {
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	got, err := Thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("thumbprint %s, want %s", got, want)
	}
}

func TestAudienceJSON(t *testing.T) {
	for in, want := range map[string]int{`"a"`: 1, `["a","b"]`: 2, `null`: 0, `[]`: 0} {
		var a Audience
		if err := json.Unmarshal([]byte(in), &a); err != nil || len(a) != want {
			t.Errorf("%s: %v %v", in, a, err)
		}
	}
	if b, _ := json.Marshal(Audience{"a"}); string(b) != `"a"` {
		t.Errorf("one audience marshals as %s, want a string", b)
	}
}

func FuzzVerify(f *testing.F) {
	p := newPKI(f)
	v := verifierFor(f, p)
	f.Add(mustSign(f, p.leafKey, Header{Algorithm: "ES256", X5C: x5c(p.leaf, p.inter)}, goodClaims()))
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok, t0)
		if err == nil && c == nil {
			t.Fatal("nil claims without error")
		}
		if err != nil && !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("error %v does not wrap ErrInvalidToken", err)
		}
	})
}

package jose_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/jose"
)

func keys(t testing.TB) map[string]crypto.Signer {
	t.Helper()
	out := map[string]crypto.Signer{}
	for name, curve := range map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = k
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, ek, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	out["RS256"], out["PS256"], out["RS512"], out["PS384"], out["EdDSA"] = rk, rk, rk, rk, ek
	return out
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	ks := keys(t)
	msg := []byte("header.payload")
	for alg, k := range ks {
		sig, err := jose.Sign(k, alg, msg)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if err := jose.Verify(alg, k.Public(), msg, sig); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
		if err := jose.Verify(alg, k.Public(), []byte("header.payloaX"), sig); !errors.Is(err, jose.ErrSignature) || errors.Is(err, jose.ErrAlgorithm) {
			t.Errorf("%s over other bytes: %v", alg, err)
		}
		bad := append([]byte(nil), sig...)
		bad[len(bad)-1] ^= 1
		if err := jose.Verify(alg, k.Public(), msg, bad); !errors.Is(err, jose.ErrSignature) {
			t.Errorf("%s flipped bit: %v", alg, err)
		}
	}
	if alg, _ := jose.AlgorithmFor(ks["ES384"].Public()); alg != "ES384" {
		t.Errorf("AlgorithmFor P-384: %s", alg)
	}
}

// TestAlgorithmConfusion: none, HMAC and algorithms that do not fit the key
// are refused whatever the signature.
func TestAlgorithmConfusion(t *testing.T) {
	t.Parallel()
	ks := keys(t)
	msg := []byte("header.payload")
	rsaPub := ks["RS256"].Public()
	mac := hmac.New(sha256.New, rsaPub.(*rsa.PublicKey).N.Bytes())
	mac.Write(msg)
	esSig, _ := jose.Sign(ks["ES256"], "ES256", msg)
	for _, c := range []struct {
		alg string
		key crypto.PublicKey
		sig []byte
	}{
		{"none", rsaPub, nil},
		{"HS256", rsaPub, mac.Sum(nil)},
		{"HS512", ks["ES256"].Public(), esSig},
		{"ES384", ks["ES256"].Public(), esSig}, // P-256 key under ES384
		{"RS256", ks["ES256"].Public(), esSig},
		{"ES256", rsaPub, esSig},
		{"EdDSA", rsaPub, esSig},
		{"ES256", ks["EdDSA"].Public(), esSig},
		{"", rsaPub, esSig},
	} {
		if _, err := jose.Sign(ks["ES256"], c.alg, msg); c.alg != "ES256" && c.alg != "ES384" && c.alg != "RS256" && c.alg != "EdDSA" && err == nil {
			t.Errorf("Sign(%q) worked", c.alg)
		}
		if err := jose.Verify(c.alg, c.key, msg, c.sig); !errors.Is(err, jose.ErrAlgorithm) {
			t.Errorf("Verify(%q, %T): %v, want ErrAlgorithm", c.alg, c.key, err)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	h := jose.B64Encode([]byte(`{"alg":"ES256","kid":"k"}`))
	p := jose.B64Encode([]byte(`{"a":1}`))
	c, err := jose.Parse(h+"."+p+".c2ln", 1024)
	if err != nil {
		t.Fatal(err)
	}
	if c.Header.Algorithm != "ES256" || c.Header.KeyID != "k" || string(c.Payload) != `{"a":1}` || string(c.Signature) != "sig" || string(c.SigningInput) != h+"."+p {
		t.Errorf("parsed %+v", c)
	}
	for name, raw := range map[string]string{
		"too long":   h + "." + p + "." + strings.Repeat("A", 1024),
		"two parts":  h + "." + p,
		"four parts": h + "." + p + ".a.b",
		"bad b64":    h + ".!." + "c2ln",
		"no alg":     jose.B64Encode([]byte(`{"kid":"k"}`)) + "." + p + ".c2ln",
		"alg number": jose.B64Encode([]byte(`{"alg":1}`)) + "." + p + ".c2ln",
		"crit":       jose.B64Encode([]byte(`{"alg":"ES256","crit":["exp"]}`)) + "." + p + ".c2ln",
		"not JSON":   jose.B64Encode([]byte(`alg`)) + "." + p + ".c2ln",
	} {
		if _, err := jose.Parse(raw, 1024); !errors.Is(err, jose.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestJWKRoundTrip(t *testing.T) {
	t.Parallel()
	var set []jose.JWK
	for alg, k := range keys(t) {
		set = append(set, jose.JWK{KeyID: alg, Use: "sig", Algorithm: alg, Key: k.Public()})
	}
	b, err := json.Marshal(map[string]any{"keys": set})
	if err != nil {
		t.Fatal(err)
	}
	got, err := jose.ParseJWKSet(b, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(set) {
		t.Fatalf("%d keys, want %d", len(got), len(set))
	}
	for i, k := range got {
		want := set[i]
		if k.KeyID != want.KeyID || k.Use != "sig" || k.Algorithm != want.Algorithm || !k.Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(want.Key) {
			t.Errorf("key %d: %+v, want %+v", i, k, want)
		}
	}
}

func TestParseJWKRefusals(t *testing.T) {
	t.Parallel()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good, _ := json.Marshal(jose.JWK{Key: k.Public()})
	var m map[string]string
	_ = json.Unmarshal(good, &m)
	mod := func(kv ...string) []byte {
		c := map[string]string{}
		for k, v := range m {
			c[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			c[kv[i]] = kv[i+1]
		}
		b, _ := json.Marshal(c)
		return b
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallJWK, _ := json.Marshal(jose.JWK{Key: small.Public()})
	for name, c := range map[string]struct {
		b           []byte
		unsupported bool
	}{
		"private member": {mod("d", "AAAA"), false},
		"oct":            {[]byte(`{"kty":"oct","k":"c2VjcmV0"}`), false},
		"oct without k":  {[]byte(`{"kty":"oct"}`), false},
		"off the curve":  {mod("y", m["x"]), false},
		"short x":        {mod("x", "AAAA"), false},
		"small RSA":      {smallJWK, false},
		"RSA exponent 1": {[]byte(`{"kty":"RSA","n":"` + jose.B64Encode(new(big.Int).Lsh(big.NewInt(1), 2047).Bytes()) + `","e":"AQ"}`), false},
		"secp256k1":      {mod("crv", "secp256k1"), true},
		"X25519":         {[]byte(`{"kty":"OKP","crv":"X25519","x":"` + jose.B64Encode(make([]byte, 32)) + `"}`), true},
		"unknown kty":    {[]byte(`{"kty":"PQC"}`), true},
	} {
		_, err := jose.ParseJWK(c.b)
		if err == nil || errors.Is(err, jose.ErrUnsupportedKey) != c.unsupported {
			t.Errorf("%s: %v (unsupported %v)", name, err, c.unsupported)
		}
		set := []byte(`{"keys":[` + string(good) + `,` + string(c.b) + `]}`)
		got, err := jose.ParseJWKSet(set, true)
		if c.unsupported && (err != nil || len(got) != 1) {
			t.Errorf("%s: set skipping unsupported keys: %v %d", name, err, len(got))
		}
		if !c.unsupported && err == nil {
			t.Errorf("%s: set with a refused key parsed", name)
		}
		if _, err := jose.ParseJWKSet(set, false); err == nil {
			t.Errorf("%s: strict set parsed", name)
		}
	}
	if _, err := jose.ParseJWKSet([]byte(`{"keys":[]}`), true); err == nil {
		t.Error("empty set parsed")
	}
}

// TestThumbprintRFC7638 checks the RSA example of RFC 7638 §3.1.
func TestThumbprintRFC7638(t *testing.T) {
	t.Parallel()
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	got, err := jose.Thumbprint(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("thumbprint %s, want %s", got, want)
	}
}

func TestClaimTypesJSON(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{`"a"`: 1, `["a","b"]`: 2, `null`: 0, `[]`: 0} {
		var a jose.Audience
		if err := json.Unmarshal([]byte(in), &a); err != nil || len(a) != want {
			t.Errorf("%s: %v %v", in, a, err)
		}
	}
	var a jose.Audience
	if err := json.Unmarshal([]byte(`[1]`), &a); err == nil {
		t.Error("numeric audience accepted")
	}
	if b, _ := json.Marshal(jose.Audience{"a"}); string(b) != `"a"` {
		t.Errorf("one audience marshals as %s, want a string", b)
	}
	for in, want := range map[string]int64{`12`: 12, `12.9`: 12, `1e3`: 1000, `null`: 0} {
		var d jose.NumericDate
		if err := json.Unmarshal([]byte(in), &d); err != nil || int64(d) != want {
			t.Errorf("%s: %d %v", in, d, err)
		}
	}
	for _, in := range []string{`"12"`, `1e300`, `true`} {
		var d jose.NumericDate
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("%s accepted as a NumericDate", in)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("eyJhbGciOiJFUzI1NiJ9.e30.c2ln")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := jose.Parse(raw, 4096)
		if err != nil {
			if !errors.Is(err, jose.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if c.Header.Algorithm == "" || len(c.Header.Critical) > 0 || !strings.HasPrefix(raw, string(c.SigningInput)+".") {
			t.Fatalf("accepted %q as %+v", raw, c)
		}
	})
}

package compat

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// delegationKey is a key pair for a notary delegation: notary's
// `delegation add` wants an X.509 certificate, `key import` a PKCS#8 key.
type delegationKey struct {
	certFile, keyFile string
	id                string // canonical key ID, as `delegation list` prints it
}

func newDelegationKey(t testing.TB, dir, name string) delegationKey {
	t.Helper()
	key := newECKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	d := delegationKey{
		certFile: filepath.Join(dir, name+".crt"),
		keyFile:  filepath.Join(dir, name+".key"),
		id:       canonicalKeyID(t, key.Public()),
	}
	writePEM(t, d.certFile, "CERTIFICATE", der, 0o644)
	writePEM(t, d.keyFile, "PRIVATE KEY", pkcs8(t, key), 0o600)
	return d
}

// canonicalKeyID is notary's canonical ID of an ECDSA public key: the
// SHA-256 of the canonical JSON of the non-x509 TUF key holding the
// DER SubjectPublicKeyInfo. Written out by hand here so that the test
// does not depend on the code it is meant to check.
func canonicalKeyID(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	js := `{"keytype":"ecdsa","keyval":{"private":null,"public":"` + base64.StdEncoding.EncodeToString(der) + `"}}`
	sum := sha256.Sum256([]byte(js))
	return hex.EncodeToString(sum[:])
}

// canonicalKeyIDFromPEM reads a PUBLIC KEY PEM file (docker trust key
// generate's NAME.pub) and returns its canonical key ID.
func canonicalKeyIDFromPEM(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("%s: no PUBLIC KEY PEM block:\n%s", path, b)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return canonicalKeyID(t, pub)
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pkcs8(t testing.TB, k crypto.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func randomSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
}

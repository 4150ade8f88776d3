package e2etest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a throw-away certificate authority (ECDSA P-256) that issues
// certificates for 127.0.0.1 and localhost. Its files live in Dir; its key
// never leaves memory.
type CA struct {
	Dir    string // where the CA and every certificate it issues are written
	CAFile string // Dir/ca.crt, PEM
	Cert   *x509.Certificate
	key    *ecdsa.PrivateKey
}

// validity of every test certificate: from an hour ago (clock skew) for a week.
const certLifetime = 7 * 24 * time.Hour

// NewCA makes a CA and writes its certificate to dir/ca.crt.
func NewCA(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "signet test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(certLifetime),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &CA{Dir: dir, CAFile: filepath.Join(dir, "ca.crt"), Cert: cert, key: key}
	if err := writePEM(ca.CAFile, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	return ca, nil
}

// Issue writes Dir/name.crt and Dir/name.key (PKCS#8, unencrypted): a
// certificate for 127.0.0.1, localhost and name, with the extended key
// usages given (server authentication when none are).
func (ca *CA) Issue(name string, usages ...x509.ExtKeyUsage) (certFile, keyFile string, err error) {
	if len(usages) == 0 {
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, err := randomSerial()
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(certLifetime),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usages,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost", name},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return "", "", err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(ca.Dir, name+".crt"), filepath.Join(ca.Dir, name+".key")
	if err := writePEM(certFile, "CERTIFICATE", der, 0o644); err != nil {
		return "", "", err
	}
	if err := writePEM(keyFile, "PRIVATE KEY", pk, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// TestCA is NewCA for a test: a failure fails it.
func TestCA(t testing.TB, dir string) *CA {
	t.Helper()
	ca, err := NewCA(dir)
	if err != nil {
		t.Fatalf("test CA: %v", err)
	}
	return ca
}

// MustIssue is Issue for a test: a failure fails it.
func (ca *CA) MustIssue(t testing.TB, name string, usages ...x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile, err := ca.Issue(name, usages...)
	if err != nil {
		t.Fatalf("issuing %s: %v", name, err)
	}
	return certFile, keyFile
}

// ServerPKI makes a CA in dir and a server certificate for 127.0.0.1 from
// it, and returns the three files.
func ServerPKI(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	ca := TestCA(t, dir)
	certFile, keyFile = ca.MustIssue(t, "server", x509.ExtKeyUsageServerAuth)
	return ca.CAFile, certFile, keyFile
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

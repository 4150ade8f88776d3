package servercmd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/signet-trust/signet/internal/atomicfile"
)

// localCA is the certificate authority signet-server makes for itself when
// no certificate is given: ca.crt/ca.key and server.crt/server.key under
// <data-dir>/tls. The CA is made once; the server certificate is re-issued
// when it nears expiry or lacks a name the server listens on.
type localCA struct {
	dir     string
	created bool // the CA was made by this start
}

func (c localCA) caCert() string     { return filepath.Join(c.dir, "ca.crt") }
func (c localCA) caKey() string      { return filepath.Join(c.dir, "ca.key") }
func (c localCA) serverCert() string { return filepath.Join(c.dir, "server.crt") }
func (c localCA) serverKey() string  { return filepath.Join(c.dir, "server.key") }

func ensureLocalCA(dir string, hosts []string, now time.Time) (localCA, error) {
	ca := localCA{dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ca, fmt.Errorf("tls directory: %w", err)
	}
	caCert, caKey, err := loadPair(ca.caCert(), ca.caKey())
	if errors.Is(err, os.ErrNotExist) {
		caCert, caKey, err = newCA(now)
		if err != nil {
			return ca, err
		}
		if err := writePair(ca.caCert(), ca.caKey(), caCert, caKey); err != nil {
			return ca, err
		}
		ca.created = true
	} else if err != nil {
		return ca, fmt.Errorf("local CA in %s: %w", dir, err)
	}
	leaf, _, err := loadPair(ca.serverCert(), ca.serverKey())
	if err == nil && leafCovers(leaf, hosts, now) && leaf.CheckSignatureFrom(caCert) == nil {
		return ca, nil
	}
	leaf, leafKey, err := newLeaf(caCert, caKey, hosts, now)
	if err != nil {
		return ca, err
	}
	return ca, writePair(ca.serverCert(), ca.serverKey(), leaf, leafKey)
}

func leafCovers(c *x509.Certificate, hosts []string, now time.Time) bool {
	if now.Add(30 * 24 * time.Hour).After(c.NotAfter) {
		return false
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(c.DNSNames, h) {
			return false
		}
	}
	return true
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

func newCA(now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "signet-server local CA (" + host + ")", Organization: []string{"Signet"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}

func newLeaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: "signet-server", Organization: []string{"Signet"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("create server certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}

func loadPair(certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%s: not an ECDSA key", keyFile)
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	return c, key, err
}

func writePair(certFile, keyFile string, c *x509.Certificate, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return atomicfile.Write(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644)
}

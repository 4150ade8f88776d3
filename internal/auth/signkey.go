package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/signet-trust/signet/internal/atomicfile"
)

// Files of the generated token signing key, under the directory given to
// EnsureSigningKey.
const (
	SigningKeyFile  = "token-signing.key"
	SigningCertFile = "token-signing.crt"
)

// EnsureSigningKey returns the issuer's signing key and self-signed
// certificate kept in dir, making them (ECDSA P-256, certificate valid ten
// years from now) on first use. The certificate is what registries and
// other servers list in their rootcertbundle.
func EnsureSigningKey(dir string, now time.Time) (signer crypto.Signer, chain []*x509.Certificate, created bool, err error) {
	keyFile, certFile := filepath.Join(dir, SigningKeyFile), filepath.Join(dir, SigningCertFile)
	_, kerr := os.Stat(keyFile)
	_, cerr := os.Stat(certFile)
	switch {
	case kerr == nil && cerr == nil:
		signer, chain, err = LoadSigningKey(keyFile, certFile)
		return signer, chain, false, err
	case !errors.Is(kerr, os.ErrNotExist) || !errors.Is(cerr, os.ErrNotExist):
		return nil, nil, false, fmt.Errorf("auth: %s and %s must both exist or both be absent (%v, %v)", keyFile, certFile, kerr, cerr)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, false, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, false, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "signet-server token issuer", Organization: []string{"Signet"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, false, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, false, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, false, err
	}
	if err := atomicfile.Write(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		return nil, nil, false, fmt.Errorf("auth: write %s: %w", keyFile, err)
	}
	if err := atomicfile.Write(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, false, fmt.Errorf("auth: write %s: %w", certFile, err)
	}
	return key, []*x509.Certificate{cert}, true, nil
}

// LoadSigningKey reads a PEM private key (PKCS#8, SEC 1 EC or PKCS#1 RSA)
// and a PEM certificate chain whose first certificate holds its public key.
func LoadSigningKey(keyFile, certFile string) (crypto.Signer, []*x509.Certificate, error) {
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: signing key: %w", err)
	}
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: signing certificate: %w", err)
	}
	block, _ := pem.Decode(kb)
	if block == nil {
		return nil, nil, fmt.Errorf("auth: signing key %s: no PEM block", keyFile)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		err = fmt.Errorf("unsupported PEM type %q", block.Type)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("auth: signing key %s: %w", keyFile, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("auth: signing key %s: %T cannot sign", keyFile, key)
	}
	chain, err := ParseCertBundle(cb)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: signing certificate %s: %w", certFile, err)
	}
	if !sameKey(chain[0].PublicKey, signer.Public()) {
		return nil, nil, fmt.Errorf("auth: %s does not certify the key in %s", certFile, keyFile)
	}
	if _, err := jwsAlgorithm(signer.Public()); err != nil {
		return nil, nil, err
	}
	return signer, chain, nil
}

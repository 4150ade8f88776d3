package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/keys"
)

func rootCert(t *testing.T, gun string) *x509.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, err := keys.NewRootCertificate(k, gun, time.Now(), time.Now().AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTrustPinning(t *testing.T) {
	const gun = "example.com/pinned/app"
	a := newApp(Env{})
	good := rootCert(t, gun)
	other := rootCert(t, gun)
	gk, _ := keys.FromCertificate(good)
	s := &settings{pinning: &notaryConfig{}}

	if a.pinning(s, gun) != nil {
		t.Fatal("no pinning configured should mean trust on first use (nil)")
	}
	s.pinning.TrustPinning.Certs = map[string][]string{"example.com/pinned/*": {gk.CanonicalID()}}
	check := a.pinning(s, gun)
	if err := check([]*x509.Certificate{good}); err != nil {
		t.Errorf("pinned certificate refused: %v", err)
	}
	if err := check([]*x509.Certificate{other}); err == nil {
		t.Error("unpinned certificate accepted")
	}

	// A pinned CA: the root certificate must chain to it. Self-signed roots
	// chain only to themselves, so pin the good one as the CA.
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: good.Raw}), 0o644)
	s.pinning = &notaryConfig{dir: dir}
	s.pinning.TrustPinning.CA = map[string]string{"example.com/": "ca.pem"}
	check = a.pinning(s, gun)
	if err := check([]*x509.Certificate{good}); err != nil {
		t.Errorf("certificate of the pinned CA refused: %v", err)
	}
	if err := check([]*x509.Certificate{other}); err == nil {
		t.Error("certificate outside the pinned CA accepted")
	}

	s.pinning = &notaryConfig{}
	s.pinning.TrustPinning.DisableTOFU = true
	if err := a.pinning(s, gun)([]*x509.Certificate{good}); err == nil {
		t.Error("disable_tofu without pins accepted a root")
	}
}

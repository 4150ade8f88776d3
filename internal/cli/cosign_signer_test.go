package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/signer/signerapi"
)

// TestCosignSignWithSigner: signet cosign sign --key signet-signer://… signs
// with a key held by a real signet-signer (built from ./cmd/signet-signer
// and started on 127.0.0.1), reached over mutual TLS.
func TestCosignSignWithSigner(t *testing.T) {
	dir := t.TempDir()
	bin := os.Getenv("SIGNET_SIGNER_BIN")
	if bin == "" {
		bin = filepath.Join(dir, "signet-signer")
		build := exec.Command("go", "build", "-o", bin, "./cmd/signet-signer")
		build.Dir = filepath.Join("..", "..")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building signet-signer: %v\n%s", err, out)
		}
	}
	pki := writeMTLSPKI(t, dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	logf, err := os.Create(filepath.Join(dir, "signer.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--listen", addr, "--data-dir", filepath.Join(dir, "data"), "--default-alias", "cosign",
		"--tls-cert", pki.serverCert, "--tls-key", pki.serverKey, "--client-ca", pki.ca)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "SIGNET_SIGNER_PASSPHRASE_COSIGN=cosign test passphrase"}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "signer.log"))
			t.Logf("signet-signer log:\n%s", b)
		}
	})

	// A key for the repository, created through the signer's API.
	tc, err := signerapi.ClientTLSConfig(pki.clientCert, pki.clientKey, pki.ca)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := signerapi.NewClient("https://"+addr, tc, signerapi.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	host := testRegistry(t, false)
	gun := host + "/team/app"
	var pub *keys.PublicKey
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		pub, err = cl.Create(ctx, gun, "targets/releases")
		cancel()
		if err == nil {
			break
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(dir, "signer.log"))
			t.Fatalf("signet-signer exited:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("creating a key on the signer: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	d := pushTestImage(t, host, "team/app", "v1")
	u := cosignUser(t)
	if err := os.WriteFile(u.path("signer.pub"), keys.MarshalPublicKeyPEM(pub, ""), 0o600); err != nil {
		t.Fatal(err)
	}
	ref := signerKeyScheme + "://" + addr + "/" + pub.ID() + "?gun=" + gun
	mtls := []string{"--signer-cert", pki.clientCert, "--signer-key", pki.clientKey, "--signer-ca", pki.ca}
	out := u.ok(append(append([]string{"cosign", "sign", "--key", ref}, mtls...), gun+":v1")...)
	if strings.Count(out, "(written)") != 2 {
		t.Fatalf("sign with the signer's key:\n%s", out)
	}
	if out := u.ok("cosign", "verify", "--key", u.path("signer.pub"), gun+":v1"); strings.TrimSpace(out) != d.Digest {
		t.Fatalf("verify: %q", out)
	}
	// The same from the environment, and again: nothing new.
	u.env[envSignerCert], u.env[envSignerKey], u.env[envSignerCA] = pki.clientCert, pki.clientKey, pki.ca
	if out := u.ok("cosign", "sign", "--key", ref, gun+":v1"); strings.Count(out, "already there") != 2 {
		t.Fatalf("signing again:\n%s", out)
	}
	// A key the signer does not hold for this repository.
	other := signerKeyScheme + "://" + addr + "/" + pub.ID() + "?gun=" + host + "/team/other"
	if code, _, errOut := u.run("cosign", "sign", "--key", other, gun+":v1"); code != ExitError || !strings.Contains(errOut, pub.ID()) {
		t.Fatalf("key not held: exit %d\n%s", code, errOut)
	}
}

type mtlsPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

// writeMTLSPKI writes a throw-away CA, a server certificate for 127.0.0.1
// and a client certificate.
func writeMTLSPKI(t *testing.T, dir string) mtlsPKI {
	t.Helper()
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "signet cosign test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := mtlsPKI{ca: filepath.Join(dir, "ca.crt")}
	write := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(p.ca, "CERTIFICATE", caDER)
	issue := func(serial int64, name string, usage x509.ExtKeyUsage) (string, string) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, k.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, _ := x509.MarshalPKCS8PrivateKey(k)
		cert, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		write(cert, "CERTIFICATE", der)
		write(key, "PRIVATE KEY", kd)
		return cert, key
	}
	p.serverCert, p.serverKey = issue(2, "signer", x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = issue(3, "cosign-client", x509.ExtKeyUsageClientAuth)
	return p
}

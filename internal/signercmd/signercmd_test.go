package signercmd_test

import (
	"bytes"
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
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/signer/signerapi"
	"github.com/signet-trust/signet/internal/signercmd"
)

// syncBuffer is a bytes.Buffer safe for a running command and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no TLS", []string{}, "--tls-cert, --tls-key and --client-ca are required"},
		{"no client CA", []string{"--tls-cert", "c", "--tls-key", "k"}, "--tls-cert, --tls-key and --client-ca are required"},
		{"bad alias", []string{"--tls-cert", "c", "--tls-key", "k", "--client-ca", "ca", "--default-alias", "Prod-1"}, `--default-alias "Prod-1"`},
		{"bad listen", []string{"--tls-cert", "c", "--tls-key", "k", "--client-ca", "ca", "--listen", "nope"}, `--listen "nope"`},
		{"argument", []string{"serve"}, `unexpected argument "serve"`},
		{"rekey without --to", []string{"rekey"}, `--to ""`},
		{"rekey bad alias", []string{"rekey", "--to", "A B"}, `--to "A B"`},
		{"unknown flag", []string{"--bogus"}, "signet-signer: unknown flag --bogus (see signet-signer --help)\n"},
		{"rekey unknown flag", []string{"rekey", "--bogus"}, "signet-signer rekey: unknown flag --bogus (see signet-signer rekey --help)\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			args := append([]string{}, tt.args...)
			if len(args) > 0 && args[0] == "rekey" {
				args = append(args, "--data-dir", dir)
			}
			if code := signercmd.Main(t.Context(), args, envMap(nil), &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2\n%s", code, &stderr)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("stderr does not say %q:\n%s", tt.want, &stderr)
			}
			if strings.Contains(stderr.String(), "Flags:") || stdout.String() != "" {
				t.Errorf("a bad command line printed the usage:\n%s%s", &stdout, &stderr)
			}
		})
	}
	for _, args := range [][]string{{"--help"}, {"rekey", "--help"}} {
		var stdout, stderr syncBuffer
		if code := signercmd.Main(t.Context(), args, envMap(nil), &stdout, &stderr); code != 0 {
			t.Errorf("%v: exit %d", args, code)
		}
		for _, want := range []string{"Usage", "\nFlags:\n", "\n  --data-dir directory\n", "\nExamples:\n"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("%v on stdout lacks %q:\n%s", args, want, &stdout)
			}
		}
		if stderr.String() != "" {
			t.Errorf("%v wrote to stderr: %s", args, &stderr)
		}
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		var stdout, stderr syncBuffer
		if code := signercmd.Main(t.Context(), args, envMap(nil), &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "signet-signer ") {
			t.Errorf("%v: exit %d %q %q", args, code, &stdout, &stderr)
		}
	}
	t.Run("rekey without a database", func(t *testing.T) {
		var stdout, stderr syncBuffer
		code := signercmd.Main(t.Context(), []string{"rekey", "--to", "x", "--data-dir", filepath.Join(dir, "absent")}, envMap(nil), &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "no signer database") {
			t.Fatalf("exit %d\n%s", code, &stderr)
		}
	})
}

// pki writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all PEM, into dir.
func pki(t *testing.T, dir string) (ca, srvCert, srvKey, cliCert, cliKey string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tm := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tm, caCert, k.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		pk, _ := x509.MarshalPKCS8PrivateKey(k)
		return write(name+".crt", "CERTIFICATE", der), write(name+".key", "PRIVATE KEY", pk)
	}
	ca = write("ca.crt", "CERTIFICATE", caDER)
	srvCert, srvKey = leaf("signer", 2, x509.ExtKeyUsageServerAuth)
	cliCert, cliKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return
}

// TestServeSignShutdown runs the signer in process: a client with a
// certificate signs through it, a wrong passphrase is refused at start,
// and cancelling the context shuts it down.
func TestServeSignShutdown(t *testing.T) {
	dir := t.TempDir()
	ca, srvCert, srvKey, cliCert, cliKey := pki(t, dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	args := []string{"--listen", addr, "--data-dir", filepath.Join(dir, "data"),
		"--tls-cert", srvCert, "--tls-key", srvKey, "--client-ca", ca, "--default-alias", "prod"}

	var stderr0 syncBuffer
	if code := signercmd.Main(t.Context(), args, envMap(nil), &syncBuffer{}, &stderr0); code != 1 ||
		!strings.Contains(stderr0.String(), signercmd.PassphraseEnv("prod")) {
		t.Fatalf("start without a passphrase: exit %d\n%s", code, &stderr0)
	}

	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- signercmd.Main(ctx, args, envMap(map[string]string{"SIGNET_SIGNER_PASSPHRASE_PROD": "secret"}), &stdout, &stderr)
	}()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stdout.String(), "listening on") {
		select {
		case code := <-done:
			t.Fatalf("signer exited %d\n%s", code, &stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("signer did not start\n%s", &stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tlsCfg, err := signerapi.ClientTLSConfig(cliCert, cliKey, ca)
	if err != nil {
		t.Fatal(err)
	}
	c, err := signerapi.NewClient("https://"+addr, tlsCfg, signerapi.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pub, err := c.Create(t.Context(), "example.com/app", "timestamp")
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Signer(t.Context(), "example.com/app", pub.ID())
	if err != nil {
		t.Fatal(err)
	}
	method, sig, err := keys.Sign(s, []byte("msg"))
	if err != nil || pub.Verify(method, []byte("msg"), sig) != nil {
		t.Fatalf("sign: %v", err)
	}

	// A second start with the wrong passphrase is refused.
	var stderr2 syncBuffer
	args2 := append(append([]string{}, args...), "--listen", "127.0.0.1:0")
	if code := signercmd.Main(t.Context(), args2, envMap(map[string]string{"SIGNET_SIGNER_PASSPHRASE_PROD": "wrong"}), &syncBuffer{}, &stderr2); code != 1 ||
		!strings.Contains(stderr2.String(), "passphrase does not open") {
		t.Fatalf("start with a wrong passphrase: exit %d\n%s", code, &stderr2)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after shutdown\n%s", code, &stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no shutdown")
	}
	if !strings.Contains(stdout.String(), "signet-signer: stopped") {
		t.Fatalf("stdout: %s", &stdout)
	}
	done <- 0 // for the deferred receive
}

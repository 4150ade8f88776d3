package cli

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// serve starts a TLS server on 127.0.0.1 whose certificate ca issued for
// ip; it answers every request with the body it received.
func (ca testCA) serve(t *testing.T, ip string) *httptest.Server {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP(ip)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(append([]byte("got:"), b...))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// TestHostThenSystemRoots: docker's rule, the system's roots and the
// host's CAs, holds with the system's roots loaded only when the host's
// CAs do not verify the server: a server of the host CA is trusted without
// loading them, one of a system root is trusted after loading them (its
// request, body and all, sent once over the verified connection), one of
// neither or for another address is refused.
func TestHostThenSystemRoots(t *testing.T) {
	host, system, other := newTestCA(t, "host"), newTestCA(t, "system"), newTestCA(t, "other")
	var loads atomic.Int32
	old := systemCertPool
	systemCertPool = func() (*x509.CertPool, error) {
		loads.Add(1)
		p := x509.NewCertPool()
		p.AddCert(system.cert)
		return p, nil
	}
	t.Cleanup(func() { systemCertPool = old })

	client := func() *http.Client {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		pems, pool := [][]byte{host.pem}, x509.NewCertPool()
		pool.AppendCertsFromPEM(host.pem)
		return &http.Client{Transport: trustHostAndSystemRoots(tr, pool, pems), Timeout: 30 * time.Second}
	}
	post := func(c *http.Client, url string) (string, error) {
		resp, err := c.Post(url, "text/plain", strings.NewReader("body"))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}

	// The host CA's server: trusted, the system's roots never loaded.
	c := client()
	if got, err := post(c, host.serve(t, "127.0.0.1").URL); err != nil || got != "got:body" {
		t.Fatalf("host CA's server: %q, %v", got, err)
	}
	if n := loads.Load(); n != 0 {
		t.Fatalf("the system's roots were loaded %d times for a server of the host CA", n)
	}

	// A system root's server: trusted, once they are loaded.
	sys := system.serve(t, "127.0.0.1")
	if got, err := post(c, sys.URL); err != nil || got != "got:body" {
		t.Fatalf("system root's server: %q, %v", got, err)
	}
	if got, err := post(c, sys.URL); err != nil || got != "got:body" {
		t.Fatalf("system root's server, again: %q, %v", got, err)
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("the system's roots were loaded %d times, want once", n)
	}

	// Neither: refused, as a certificate error.
	_, err := post(client(), other.serve(t, "127.0.0.1").URL)
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Fatalf("unknown CA's server: %v, want a certificate verification error", err)
	}

	// The host CA's certificate, for another address: refused by both.
	wrong := host.serve(t, "127.0.0.2")
	if _, err := post(client(), wrong.URL); !errors.As(err, &verr) {
		t.Fatalf("server whose certificate names another address: %v, want a certificate verification error", err)
	}
}

// TestCAFileWithoutCertificate: a CA file (--tlscacert, or a docker
// tls/<host>/*.crt) that holds no PEM certificate is refused by name,
// before any connection, and the file is left as it was.
func TestCAFileWithoutCertificate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.crt")
	bad := filepath.Join(dir, "bad.crt")
	if err := os.WriteFile(good, newTestCA(t, "good").pem, 0o600); err != nil {
		t.Fatal(err)
	}
	junk := []byte("not a certificate\n")
	if err := os.WriteFile(bad, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, docker := range []bool{false, true} {
		s := &settings{caFile: good + string(os.PathListSeparator) + bad, docker: docker}
		_, err := s.httpClient()
		if err == nil || !strings.Contains(err.Error(), "trust server CA "+bad+" holds no PEM certificate") {
			t.Fatalf("docker %v: %v, want the bad file named", docker, err)
		}
	}
	if _, _, err := readCAs([]string{good}); err != nil {
		t.Fatalf("a good CA file: %v", err)
	}
	if b, _ := os.ReadFile(bad); !bytes.Equal(b, junk) {
		t.Fatal("the refused file changed")
	}
}

// Package origintest builds hostile networks for tests of credential
// scoping: HTTP and HTTPS servers on 127.0.0.1 that answer under made-up
// names and ports (https://registry.test, https://registry.test:8443,
// http://evil.test), so one test can have a registry redirect to another
// host, another port of the same host, or plain http, without DNS. Each
// server records every request it receives, Authorization header and body
// included, so a test can assert that a credential never arrived.
//
// It is imported only from tests.
package origintest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Net is a set of named servers and a transport that reaches them.
type Net struct {
	t      testing.TB
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	pool   *x509.CertPool

	mu    sync.Mutex
	addrs map[string]string // "name:port" the client dials → 127.0.0.1:N
}

// New returns an empty network with its own test CA.
func New(t testing.TB) *Net {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "origintest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &Net{t: t, caCert: ca, caKey: key, pool: pool, addrs: map[string]string{}}
}

// Request is what a server received.
type Request struct {
	Method, URL, Authorization string
	Body                       string
}

// Host is one server of the network.
type Host struct {
	// URL is the server's URL as clients name it (scheme://name:port).
	URL string

	mu   sync.Mutex
	reqs []Request
}

// Requests returns what the server received so far.
func (h *Host) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.reqs...)
}

// Authorizations returns the Authorization headers the server received
// (empty ones left out).
func (h *Host) Authorizations() []string {
	var out []string
	for _, r := range h.Requests() {
		if r.Authorization != "" {
			out = append(out, r.Authorization)
		}
	}
	return out
}

// Saw reports whether any request the server received carried secret in
// its Authorization header, URL or body (in the clear, or in a Basic
// header's base64).
func (h *Host) Saw(secret string) bool {
	for _, r := range h.Requests() {
		for _, s := range []string{r.Authorization, r.URL, r.Body, basicDecoded(r.Authorization)} {
			if strings.Contains(s, secret) {
				return true
			}
		}
	}
	return false
}

func basicDecoded(h string) string {
	req := &http.Request{Header: http.Header{"Authorization": {h}}}
	u, p, ok := req.BasicAuth()
	if !ok {
		return ""
	}
	return u + ":" + p
}

// Serve starts a server answering as rawURL ("https://registry.test",
// "http://evil.test:80", "https://registry.test:8443"); https servers
// carry a certificate for the name from the network's CA.
func (n *Net) Serve(rawURL string, h http.Handler) *Host {
	n.t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		n.t.Fatalf("origintest: %q: %v", rawURL, err)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	host := &Host{URL: u.Scheme + "://" + net.JoinHostPort(u.Hostname(), port)}
	rec := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		host.mu.Lock()
		host.reqs = append(host.reqs, Request{Method: r.Method, URL: r.URL.String(), Authorization: r.Header.Get("Authorization"), Body: string(b)})
		host.mu.Unlock()
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewUnstartedServer(rec)
	switch u.Scheme {
	case "https":
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{n.leaf(u.Hostname())}, MinVersion: tls.VersionTLS12}
		srv.StartTLS()
	case "http":
		srv.Start()
	default:
		n.t.Fatalf("origintest: scheme %q", u.Scheme)
	}
	n.t.Cleanup(srv.Close)
	n.mu.Lock()
	n.addrs[net.JoinHostPort(u.Hostname(), port)] = srv.Listener.Addr().String()
	n.mu.Unlock()
	return host
}

func (n *Net) leaf(name string) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		n.t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, n.caCert, key.Public(), n.caKey)
	if err != nil {
		n.t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Pool returns the CA pool that verifies the network's servers.
func (n *Net) Pool() *x509.CertPool { return n.pool }

// Transport returns a transport that dials the network's names (and
// nothing else: an unknown name fails) and trusts its CA.
func (n *Net) Transport() *http.Transport {
	var d net.Dialer
	return &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: n.pool, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			n.mu.Lock()
			real, ok := n.addrs[addr]
			n.mu.Unlock()
			if !ok {
				return nil, fmt.Errorf("origintest: no server answers as %s", addr)
			}
			return d.DialContext(ctx, network, real)
		},
		ForceAttemptHTTP2: false,
	}
}

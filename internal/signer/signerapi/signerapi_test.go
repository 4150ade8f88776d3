package signerapi_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
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

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/custody/custodiantest"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/signer"
	"github.com/signet-trust/signet/internal/signer/signerapi"
)

// ca is a throw-away certificate authority that writes PEM files.
type ca struct {
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newCA(t testing.TB, dir, name string) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	c := &ca{dir: dir, cert: cert, key: key, file: filepath.Join(dir, name+"-ca.crt")}
	writePEM(t, c.file, "CERTIFICATE", der)
	return c
}

// issue writes a leaf certificate and key; it returns their file names.
func (c *ca) issue(t testing.TB, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(c.dir, name+".crt"), filepath.Join(c.dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", pk)
	return certFile, keyFile
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// env is a signer served over mutual TLS and a client of it.
type env struct {
	url       string
	ca        *ca
	client    *signerapi.Client
	clientTLS *tls.Config
	calls     *atomic.Int64 // requests that reached the handler
}

// openService opens signet-signer's service over dir (aliases derived
// cheaply: tests only).
func openService(t testing.TB, dir string) *signer.Service {
	t.Helper()
	svc, err := signer.Open(t.Context(), dir, custody.Options{
		DefaultAlias: "test", Passphrase: func(a string) []byte { return []byte("pass-" + a) },
		InsecureAliasKDF: "scrypt-n1024-r8-p1",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

func newService(t testing.TB) *signer.Service { return openService(t, t.TempDir()) }

// uniqueGUN is a GUN no other test uses.
func uniqueGUN(t testing.TB) string {
	return "example.com/" + strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
}

func startSigner(t testing.TB, svc signerapi.Service, wrap func(http.Handler) http.Handler, opts signerapi.ClientOptions) *env {
	t.Helper()
	dir := t.TempDir()
	c := newCA(t, dir, "signet")
	srvCert, srvKey := c.issue(t, "signer", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := c.issue(t, "server", x509.ExtKeyUsageClientAuth)
	srvTLS, err := signerapi.ServerTLSConfig(srvCert, srvKey, c.file)
	if err != nil {
		t.Fatal(err)
	}
	calls := new(atomic.Int64)
	var h http.Handler = signerapi.Handler(svc, nil)
	if wrap != nil {
		h = wrap(h)
	}
	counted := h
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		counted.ServeHTTP(w, r)
	}))
	ts.TLS = srvTLS
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	cliTLS, err := signerapi.ClientTLSConfig(cliCert, cliKey, c.file)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := signerapi.NewClient(ts.URL, cliTLS, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &env{url: ts.URL, ca: c, client: cl, clientTLS: cliTLS, calls: calls}
}

func TestSignVerifyRoundtrip(t *testing.T) {
	for _, alg := range []string{keys.TypeECDSA, keys.TypeED25519} {
		t.Run(alg, func(t *testing.T) {
			e := startSigner(t, newService(t), nil, signerapi.ClientOptions{Algorithm: alg})
			ctx := t.Context()
			gun := uniqueGUN(t)
			pub, err := e.client.Create(ctx, gun, "timestamp")
			if err != nil {
				t.Fatal(err)
			}
			if pub.Type() != alg {
				t.Fatalf("created a %s key, want %s", pub.Type(), alg)
			}
			list, err := e.client.Keys(ctx, gun, "timestamp")
			if err != nil || len(list) != 1 || list[0].ID() != pub.ID() {
				t.Fatalf("Keys = %v, %v", list, err)
			}
			if none, err := e.client.Keys(ctx, gun, "snapshot"); err != nil || len(none) != 0 {
				t.Fatalf("Keys(snapshot) = %v, %v", none, err)
			}
			s, err := e.client.Signer(ctx, gun, pub.ID())
			if err != nil {
				t.Fatal(err)
			}
			for _, msg := range [][]byte{[]byte(`{"_type":"Timestamp"}`), make([]byte, 1<<20)} {
				method, sig, err := keys.Sign(s, msg)
				if err != nil {
					t.Fatal(err)
				}
				if err := pub.Verify(method, msg, sig); err != nil {
					t.Fatalf("keys.Verify: %v (method %s, %d-byte signature)", err, method, len(sig))
				}
			}
			// A fresh client (nothing remembered) asks the signer for the key.
			fresh, err := signerapi.NewClient(e.url, e.clientTLS, signerapi.ClientOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer fresh.Close()
			s2, err := fresh.Signer(ctx, gun, pub.ID())
			if err != nil {
				t.Fatal(err)
			}
			if method, sig, err := keys.Sign(s2, []byte("m")); err != nil || pub.Verify(method, []byte("m"), sig) != nil {
				t.Fatalf("sign through a fresh client: %v", err)
			}
			// Another repository never gets the key, and neither does an unknown ID.
			if _, err := fresh.Signer(ctx, "example.com/other", pub.ID()); !errors.Is(err, keys.ErrKeyNotHeld) {
				t.Fatalf("Signer for another GUN: %v", err)
			}
			if _, err := fresh.Signer(ctx, gun, strings.Repeat("ab", 32)); !errors.Is(err, keys.ErrKeyNotHeld) {
				t.Fatalf("Signer for an unknown key: %v", err)
			}
			if err := fresh.Check(ctx); err != nil {
				t.Fatalf("Check: %v", err)
			}
		})
	}
}

// TestMutualTLSRefusal: no certificate, or one from another CA, never
// reaches the handler.
func TestMutualTLSRefusal(t *testing.T) {
	e := startSigner(t, newService(t), nil, signerapi.ClientOptions{})
	other := newCA(t, t.TempDir(), "other")
	otherCert, otherKey := other.issue(t, "intruder", x509.ExtKeyUsageClientAuth)
	pair, err := tls.LoadX509KeyPair(otherCert, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	// Same CA as the signer's certificate, so the only difference is the
	// client certificate.
	base := e.clientTLS.Clone()
	before := e.calls.Load()

	t.Run("handshake with a certificate from another CA fails", func(t *testing.T) {
		cfg := base.Clone()
		cfg.Certificates = []tls.Certificate{pair}
		conn, err := tls.Dial("tcp", strings.TrimPrefix(e.url, "https://"), cfg)
		if err == nil {
			// TLS 1.3: the server's verdict on the client certificate
			// arrives after the client's side of the handshake.
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = conn.Write([]byte("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"))
			if err == nil {
				_, err = conn.Read(make([]byte, 1))
			}
			conn.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("connection with a foreign client certificate: %v, want a TLS certificate error", err)
		}
		cl, err := signerapi.NewClient(e.url, cfg, signerapi.ClientOptions{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := cl.Create(t.Context(), "example.com/app", "timestamp"); !errors.Is(err, signerapi.ErrUnavailable) {
			t.Fatalf("Create with a foreign certificate: %v", err)
		}
	})
	t.Run("no certificate is refused", func(t *testing.T) {
		cfg := base.Clone()
		cfg.Certificates = nil
		if _, err := signerapi.NewClient(e.url, cfg, signerapi.ClientOptions{}); err == nil {
			t.Fatal("NewClient accepted a configuration without a client certificate")
		}
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := hc.Get(e.url + "/v1/health")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET without a client certificate answered %s", resp.Status)
		}
		if !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("GET without a client certificate: %v, want a TLS certificate error", err)
		}
	})
	if n := e.calls.Load() - before; n != 0 {
		t.Fatalf("%d refused request(s) reached the handler", n)
	}
}

// TestHandlerRefusesPlainRequests: served without mutual TLS by mistake,
// the handler still refuses.
func TestHandlerRefusesPlainRequests(t *testing.T) {
	ts := httptest.NewServer(signerapi.Handler(newService(t), nil))
	defer ts.Close()
	resp, err := http.Post(ts.URL+"/v1/keys", "application/json", strings.NewReader(`{"gun":"a","role":"timestamp","algorithm":"ecdsa"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), signerapi.CodeUnauthorized) {
		t.Fatalf("plain HTTP request: %s %s", resp.Status, body)
	}
}

// TestSlowSignerTimesOut: a signer that does not answer within the client's
// timeout gives ErrUnavailable in about that time.
func TestSlowSignerTimesOut(t *testing.T) {
	svc := newService(t)
	var slow atomic.Bool
	release := make(chan struct{})
	e := startSigner(t, svc, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if slow.Load() {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
			h.ServeHTTP(w, r)
		})
	}, signerapi.ClientOptions{Timeout: 300 * time.Millisecond})
	defer close(release)
	gun := uniqueGUN(t)
	pub, err := e.client.Create(t.Context(), gun, "timestamp")
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.client.Signer(t.Context(), gun, pub.ID())
	if err != nil {
		t.Fatal(err)
	}
	slow.Store(true)
	start := time.Now()
	_, _, err = keys.Sign(s, []byte("m"))
	if !errors.Is(err, signerapi.ErrUnavailable) {
		t.Fatalf("sign against a stalled signer: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("sign took %v with a 300ms timeout", d)
	}
	if _, err := e.client.Keys(t.Context(), gun, "timestamp"); !errors.Is(err, signerapi.ErrUnavailable) {
		t.Fatalf("Keys against a stalled signer: %v", err)
	}
	// Recovered: the same client works again.
	slow.Store(false)
	if _, _, err := keys.Sign(s, []byte("m")); err != nil {
		t.Fatalf("sign after the stall: %v", err)
	}
}

// lyingService signs with the wrong key.
type lyingService struct {
	*signer.Service
	other crypto.Signer
}

func (l lyingService) Signer(ctx context.Context, gun, id string) (crypto.Signer, error) {
	if _, err := l.Service.Signer(ctx, gun, id); err != nil {
		return nil, err
	}
	return l.other, nil
}

func TestClientChecksSignatures(t *testing.T) {
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	e := startSigner(t, lyingService{Service: newService(t), other: other}, nil, signerapi.ClientOptions{})
	pub, err := e.client.Create(t.Context(), uniqueGUN(t), "timestamp")
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.client.Signer(t.Context(), uniqueGUN(t), pub.ID())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := keys.Sign(s, []byte("m")); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("a wrong signature was accepted: %v", err)
	}
}

// TestConformance runs custodiantest against the client, talking to
// signet-signer's service over mutual TLS on 127.0.0.1.
func TestConformance(t *testing.T) {
	custodiantest.Run(t, func(t *testing.T) custodiantest.Subject {
		dir := t.TempDir()
		return custodiantest.Subject{
			Custodian: startSigner(t, openService(t, dir), nil, signerapi.ClientOptions{}).client,
			Restart: func(t *testing.T) custody.Custodian {
				return startSigner(t, openService(t, dir), nil, signerapi.ClientOptions{}).client
			},
		}
	})
}

// TestBadRequests: malformed requests are 400 INVALID and store nothing.
func TestBadRequests(t *testing.T) {
	e := startSigner(t, newService(t), nil, signerapi.ClientOptions{})
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: e.clientTLS}}
	pub, err := e.client.Create(t.Context(), "g", "timestamp")
	if err != nil {
		t.Fatal(err)
	}
	before, err := e.client.ListKeys(t.Context(), custody.Filter{IncludeRetired: true})
	if err != nil || len(before) != 1 {
		t.Fatalf("ListKeys = %v, %v", before, err)
	}
	ed, _ := x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(make([]byte, 32)))
	edB64 := base64.StdEncoding.EncodeToString(ed)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/keys", `{"gun":"g","role":"timestamp","algorithm":"rsa"}`},
		{"POST", "/v1/keys", `{"gun":"","role":"timestamp","algorithm":"ecdsa"}`},
		{"POST", "/v1/keys", `{"gun":"g","role":"root","algorithm":"ecdsa"}`},
		{"POST", "/v1/keys", `{"gun":"g","role":"timestamp","algorithm":"ecdsa","extra":1}`},
		{"POST", "/v1/keys", `{"gun":"g","role":"targets/a","algorithm":"ecdsa","purpose":"delegation","owner":"nobody"}`},
		{"POST", "/v1/keys", `{"gun":"g","role":"targets/a","algorithm":"ecdsa","purpose":"delegation"}`},
		{"POST", "/v1/keys/import", `{"gun":"","role":"","algorithm":"","purpose":"cosign","owner":"server","private_key":"AAAA"}`},
		{"POST", "/v1/keys/import", `{"gun":"","role":"","algorithm":"ecdsa","purpose":"cosign","owner":"server","private_key":"` + edB64 + `"}`},
		{"POST", "/v1/keys/import", `{"gun":"g","role":"timestamp","algorithm":"","purpose":"cosign","owner":"server","private_key":"` + edB64 + `"}`},
		{"POST", "/v1/keys/" + pub.ID() + "/sign", `{"gun":"g","hash":"SHA-256","digest":"AAAA"}`},
		{"POST", "/v1/keys/" + pub.ID() + "/sign", `{"gun":"g","hash":"MD5","digest":"AAAA"}`},
		{"POST", "/v1/keys/" + pub.ID() + "/sign", `{"gun":"g"}`},
		{"GET", "/v1/keys?retired=maybe", ``},
		{"GET", "/v1/keys?limit=0", ``},
		{"GET", "/v1/keys?limit=100000", ``},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), c.method, e.url+c.path, strings.NewReader(c.body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), signerapi.CodeInvalid) {
			t.Errorf("%s %s %s: %s %s, want 400 INVALID", c.method, c.path, c.body, resp.Status, body)
		}
	}
	after, err := e.client.ListKeys(t.Context(), custody.Filter{IncludeRetired: true})
	if err != nil || len(after) != 1 || after[0].ID() != pub.ID() || !after[0].RetiredAt.IsZero() {
		t.Fatalf("keys after bad requests: %v, %v; want only %s, active", after, err, pub.ID())
	}
}

// TestEarlierProtocol: the requests of earlier releases' clients get the
// answers they did.
func TestEarlierProtocol(t *testing.T) {
	e := startSigner(t, newService(t), nil, signerapi.ClientOptions{})
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: e.clientTLS}}
	do := func(method, path, body string, want int, out any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, e.url+path, strings.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %s %s, want %d", method, path, resp.Status, raw, want)
		}
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatal(err)
			}
		}
	}
	var info signerapi.KeyInfo
	do("POST", "/v1/keys", `{"gun":"example.com/old","role":"snapshot","algorithm":"ed25519"}`, http.StatusCreated, &info)
	pub, err := keys.New(info.Algorithm, info.Public)
	if err != nil || pub.ID() != info.ID || info.GUN != "example.com/old" || info.Role != "snapshot" || info.Algorithm != keys.TypeED25519 {
		t.Fatalf("create answered %+v (%v)", info, err)
	}
	var list signerapi.KeyList
	do("GET", "/v1/keys?gun=example.com/old&role=snapshot", "", http.StatusOK, &list)
	if len(list.Keys) != 1 || list.Keys[0].ID != info.ID {
		t.Fatalf("list answered %+v", list)
	}
	var got signerapi.KeyInfo
	do("GET", "/v1/keys/"+info.ID+"?gun=example.com/old", "", http.StatusOK, &got)
	if got.ID != info.ID {
		t.Fatalf("get answered %+v", got)
	}
	var eb signerapi.ErrorBody
	do("GET", "/v1/keys/"+info.ID+"?gun=example.com/other", "", http.StatusNotFound, &eb)
	if eb.Error.Code != signerapi.CodeNotHeld {
		t.Fatalf("get for another GUN answered %+v", eb)
	}
	msg := []byte("a message")
	var sig signerapi.SignResponse
	do("POST", "/v1/keys/"+info.ID+"/sign", `{"gun":"example.com/old","message":"`+base64.StdEncoding.EncodeToString(msg)+`"}`, http.StatusOK, &sig)
	if !ed25519.Verify(pub.CryptoKey().(ed25519.PublicKey), msg, sig.Signature) {
		t.Fatal("the signature does not verify")
	}
	do("POST", "/v1/keys/"+info.ID+"/sign", `{"gun":"example.com/other","message":"AAAA"}`, http.StatusNotFound, &eb)
}

// BenchmarkSign compares one signature made in process with one made
// through the signer over mutual TLS on loopback (HTTP/2, warm
// connection): the latency the remote signer adds to a publish.
func BenchmarkSign(b *testing.B) {
	for _, alg := range []string{keys.TypeECDSA, keys.TypeED25519} {
		e := startSigner(b, newService(b), nil, signerapi.ClientOptions{Algorithm: alg})
		pub, err := e.client.Create(b.Context(), "example.com/app", "timestamp")
		if err != nil {
			b.Fatal(err)
		}
		s, err := e.client.Signer(b.Context(), "example.com/app", pub.ID())
		if err != nil {
			b.Fatal(err)
		}
		msg := make([]byte, 600) // about a timestamp's canonical JSON
		b.Run(alg+"/remote", func(b *testing.B) {
			for b.Loop() {
				if _, _, err := keys.Sign(s, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	local, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b.Run("ecdsa/in-process", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := keys.Sign(local, make([]byte, 600)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

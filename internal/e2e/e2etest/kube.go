package e2etest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// KubeAPIServerVersion is the kube-apiserver scripts/test-deps.sh builds
// (from the Go module proxy) into the per-machine tool cache.
const KubeAPIServerVersion = "v1.37.2"

// KubeAPIServerBin is the kube-apiserver the tests run:
// $SIGNET_KUBE_APISERVER_BIN, else the tool cache's
// ${XDG_CACHE_HOME:-$HOME/.cache}/signet/tools/kube-apiserver@VERSION/kube-apiserver.
func KubeAPIServerBin() string {
	if p := os.Getenv("SIGNET_KUBE_APISERVER_BIN"); p != "" {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "signet", "tools", "kube-apiserver@"+KubeAPIServerVersion, "kube-apiserver")
}

// Kube is a real Kubernetes API server (kube-apiserver on Debian's etcd,
// both on 127.0.0.1) with no controller manager, scheduler or kubelet:
// objects are admitted and stored, nothing runs. Admin is a token of the
// system:masters group; User is a token of user "dev" in the same group
// (for tests that look at userInfo).
type Kube struct {
	URL    string // https://127.0.0.1:port
	CAFile string // the CA its serving certificate chains to
	Admin  string // bearer token of "admin"
	User   string // bearer token of "dev"
	Client *http.Client
}

// StartKube starts etcd and kube-apiserver for the test (failing or
// skipping it, as Missing does, when either is missing) and waits until
// the API server is ready. ca issues the API server's certificate.
func StartKube(t testing.TB, ca *CA) *Kube {
	t.Helper()
	bin := KubeAPIServerBin()
	if _, err := os.Stat(bin); err != nil {
		Missing(t, "kube-apiserver", "no kube-apiserver at %s (set SIGNET_KUBE_APISERVER_BIN, or run scripts/test-deps.sh to build it)", bin)
	}
	Need(t, "etcd")
	dir := t.TempDir()

	// etcd, on two free loopback ports.
	client, peer := FreeAddr(t), FreeAddr(t)
	etcd := Daemon(t, ProcessOptions{Name: "etcd", Dir: dir, Env: BaseEnv(dir), LogFile: filepath.Join(dir, "etcd.log"), Args: []string{
		"etcd", "--name", "test", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://" + client, "--advertise-client-urls", "http://" + client,
		"--listen-peer-urls", "http://" + peer, "--initial-advertise-peer-urls", "http://" + peer,
		"--initial-cluster", "test=http://" + peer, "--log-level", "warn",
	}})
	if err := WaitHTTP(t.Context(), &http.Client{Timeout: 2 * time.Second}, "http://"+client+"/health", Status200, etcd.Done(), 30*time.Second); err != nil {
		t.Fatalf("etcd: %v\n%s", err, etcd.LogTail(30))
	}

	// The service-account key pair, the token file and the serving
	// certificate.
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(saKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	saPriv, saPub := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if err := writePEM(saPriv, "PRIVATE KEY", der, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writePEM(saPub, "PUBLIC KEY", pub, 0o644); err != nil {
		t.Fatal(err)
	}
	k := &Kube{CAFile: ca.CAFile, Admin: randomToken(t), User: randomToken(t)}
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(fmt.Sprintf("%s,admin,admin-uid,system:masters\n%s,dev,dev-uid,\"system:masters,developers\"\n", k.Admin, k.User)), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, key := ca.MustIssue(t, fmt.Sprintf("kube-apiserver-%d", time.Now().UnixNano()))

	addr := FreeAddr(t)
	_, port, _ := splitHostPort(addr)
	api := Daemon(t, ProcessOptions{Name: "kube-apiserver", Dir: dir, Env: BaseEnv(dir), LogFile: filepath.Join(dir, "kube-apiserver.log"), Args: []string{
		bin,
		"--etcd-servers", "http://" + client,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", port,
		"--endpoint-reconciler-type", "none",
		"--cert-dir", filepath.Join(dir, "certs"), "--tls-cert-file", cert, "--tls-private-key-file", key,
		"--token-auth-file", tokens, "--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", saPub, "--service-account-signing-key-file", saPriv,
		"--service-cluster-ip-range", "10.96.0.0/24",
		"--enable-priority-and-fairness=false",
		"--v", "1",
	}})
	k.URL = "https://" + addr
	k.Client = HTTPSClient(t, ca.CAFile)
	deadline := time.Now().Add(90 * time.Second)
	for {
		status, _ := k.Do(t, http.MethodGet, "/readyz", nil, nil)
		if status == http.StatusOK {
			break
		}
		select {
		case <-api.Done():
			t.Fatalf("kube-apiserver exited: %v\n%s", api.ExitError(), api.LogTail(40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver not ready within 90s (last status %d)\n%s", status, api.LogTail(40))
		}
		time.Sleep(250 * time.Millisecond)
	}
	return k
}

func splitHostPort(addr string) (string, string, error) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:], nil
		}
	}
	return "", "", fmt.Errorf("no port in %q", addr)
}

func randomToken(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

// Do sends a request as the admin (in is encoded as JSON; out, when not
// nil, is decoded from a 2xx answer) and returns the status and the body.
func (k *Kube) Do(t testing.TB, method, path string, in, out any) (int, []byte) {
	t.Helper()
	return k.DoAs(t, k.Admin, method, path, in, out)
}

// DoAs is Do with a given bearer token.
func (k *Kube) DoAs(t testing.TB, token, method, path string, in, out any) (int, []byte) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, k.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := k.Client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
	return resp.StatusCode, b
}

// MustDo is Do that fails the test unless the answer is 2xx.
func (k *Kube) MustDo(t testing.TB, method, path string, in, out any) []byte {
	t.Helper()
	status, b := k.Do(t, method, path, in, out)
	if status/100 != 2 {
		t.Fatalf("%s %s: HTTP %d\n%s", method, path, status, b)
	}
	return b
}

// CreateNamespace creates a namespace and its default ServiceAccount (no
// controller manager runs to make it, and pods need it).
func (k *Kube) CreateNamespace(t testing.TB, name string, labels map[string]string) {
	t.Helper()
	k.MustDo(t, http.MethodPost, "/api/v1/namespaces", map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name, "labels": labels},
	}, nil)
	k.MustDo(t, http.MethodPost, "/api/v1/namespaces/"+name+"/serviceaccounts", map[string]any{
		"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": "default"},
	}, nil)
}

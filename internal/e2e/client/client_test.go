package client

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/cli"
)

func requireAll(name string) bool {
	for _, f := range strings.FieldsFunc(os.Getenv("SIGNET_TEST_REQUIRE"), func(r rune) bool { return r == ',' || r == ' ' }) {
		if f == "all" || f == name {
			return true
		}
	}
	return false
}

// need skips (or, with SIGNET_TEST_REQUIRE, fails) unless every program is
// on PATH.
func need(t *testing.T, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			if requireAll(p) {
				t.Fatalf("%s not found on PATH (SIGNET_TEST_REQUIRE=%q)", p, os.Getenv("SIGNET_TEST_REQUIRE"))
			}
			t.Skipf("%s not found on PATH (set SIGNET_TEST_REQUIRE=all to fail instead)", p)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startProcess runs a daemon with its output in logFile until the test ends.
func startProcess(t *testing.T, dir, logFile string, env []string, args ...string) <-chan struct{} {
	t.Helper()
	lf, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...), lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", args[0], err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); lf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("%s log:\n%s", filepath.Base(args[0]), b)
		}
	})
	return done
}

func waitOK(t *testing.T, hc *http.Client, url string, done <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			t.Fatalf("process serving %s exited", url)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within 30s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startServer runs signet-server on 127.0.0.1 with a new CA; it returns
// the server's host:port and the CA file.
func startServer(t *testing.T) (host, caFile string) {
	t.Helper()
	dir := t.TempDir()
	bin := os.Getenv("SIGNET_SERVER_BIN")
	if bin == "" {
		bin = filepath.Join(dir, "signet-server")
		build := exec.Command("go", "build", "-o", bin, "./cmd/signet-server")
		build.Dir = filepath.Join("..", "..", "..")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building signet-server: %v\n%s", err, out)
		}
	}
	caFile, certFile, keyFile := writePKI(t, dir)
	host = freeAddr(t)
	done := startProcess(t, dir, filepath.Join(dir, "server.log"), []string{"SIGNET_KEY_PASSPHRASE=e2e-client-key-passphrase"},
		bin, "--listen", host, "--data-dir", filepath.Join(dir, "data"), "--tls-cert", certFile, "--tls-key", keyFile)
	pool := x509.NewCertPool()
	b, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(b)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	waitOK(t, hc, "https://"+host+"/_notary_server/health", done)
	return host, caFile
}

func writePKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "signet e2e CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "signet-server"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	for f, blk := range map[string]*pem.Block{caFile: {Type: "CERTIFICATE", Bytes: caDER}, certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}

// startRegistry runs docker-registry over plain HTTP on 127.0.0.1.
func startRegistry(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "storage"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	done := startProcess(t, dir, filepath.Join(dir, "registry.log"), nil, "docker-registry", "serve", filepath.Join(dir, "config.yml"))
	waitOK(t, &http.Client{Timeout: 2 * time.Second}, "http://"+addr+"/v2/", done)
	return addr
}

// writeOCILayout writes a one-layer image tagged tag as an OCI layout.
func writeOCILayout(t *testing.T, dir, tag string) {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int               `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	blob := func(mt string, b []byte) desc {
		s := sha256.Sum256(b)
		h := hex.EncodeToString(s[:])
		if err := os.WriteFile(filepath.Join(blobs, h), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return desc{MediaType: mt, Digest: "sha256:" + h, Size: len(b)}
	}
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	content := []byte("signed by signet without a docker daemon\n")
	_ = tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg})
	_, _ = tw.Write(content)
	_ = tw.Close()
	diffID := sha256.Sum256(tb.Bytes())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(tb.Bytes())
	_ = zw.Close()
	layer := blob("application/vnd.oci.image.layer.v1.tar+gzip", gz.Bytes())
	config := blob("application/vnd.oci.image.config.v1+json", js(map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diffID[:])}},
	}))
	m := blob("application/vnd.oci.image.manifest.v1+json", js(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config, "layers": []desc{layer},
	}))
	m.Annotations = map[string]string{"org.opencontainers.image.ref.name": tag}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), js(map[string]any{"schemaVersion": 2, "manifests": []desc{m}}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
}

// manifestDigest asks the registry for the tag's manifest and hashes it.
func manifestDigest(t *testing.T, host, repo, tag string) (string, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET manifest: %s\n%s", resp.Status, b)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), len(b)
}

func run(t *testing.T, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestSignDaemonless pushes an image to a real registry, signs it with
// `signet trust sign` (the digest comes from the registry), and checks
// what the real docker and notary clients see.
func TestSignDaemonless(t *testing.T) {
	need(t, "docker-registry", "skopeo", "docker", "notary", "go")
	home := t.TempDir()
	reg := startRegistry(t)
	layout := filepath.Join(home, "oci")
	writeOCILayout(t, layout, "v1")
	baseEnv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_RUNTIME_DIR=" + home}
	run(t, baseEnv, "skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", "oci:"+layout+":v1", "docker://"+reg+"/test/app:v1")
	digest, size := manifestDigest(t, reg, "test/app", "v1")
	gun := reg + "/test/app"

	srvHost, caFile := startServer(t)
	dockerConfig := filepath.Join(home, "docker")
	tlsDir := filepath.Join(dockerConfig, "tls", srvHost)
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(caFile)
	if err := os.WriteFile(filepath.Join(tlsDir, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"HOME":                                       home,
		"DOCKER_CONFIG":                              dockerConfig,
		"DOCKER_CONTENT_TRUST_SERVER":                "https://" + srvHost,
		"DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE":       "e2e-root-passphrase",
		"DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "e2e-repo-passphrase",
	}
	var out, errOut bytes.Buffer
	code := cli.Main(t.Context(), []string{"trust", "sign", "--signer", "ci", gun + ":v1"}, cli.Env{
		Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errOut,
	})
	if code != 0 {
		t.Fatalf("signet trust sign: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "Successfully signed "+gun+":v1") {
		t.Fatalf("signet trust sign output:\n%s", out.String())
	}

	// The real Docker CLI (no daemon needed for inspect).
	var denv []string
	for k, v := range env {
		denv = append(denv, k+"="+v)
	}
	denv = append(denv, "PATH="+os.Getenv("PATH"), "DOCKER_HOST=unix://"+filepath.Join(home, "no-daemon.sock"), "DOCKER_CLI_HINTS=false")
	inspect := run(t, denv, "docker", "trust", "inspect", gun+":v1")
	var repos []struct {
		Name       string
		SignedTags []struct {
			SignedTag string
			Digest    string
			Signers   []string
		}
		Signers []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(inspect), &repos); err != nil || len(repos) != 1 {
		t.Fatalf("docker trust inspect: %v\n%s", err, inspect)
	}
	r := repos[0]
	if r.Name != gun+":v1" || len(r.SignedTags) != 1 || r.SignedTags[0].SignedTag != "v1" || r.SignedTags[0].Digest != digest ||
		strings.Join(r.SignedTags[0].Signers, ",") != "ci" || len(r.Signers) != 1 || r.Signers[0].Name != "ci" {
		t.Fatalf("docker trust inspect: want v1 → %s signed by ci\n%s", digest, inspect)
	}

	// The real notary CLI.
	list := run(t, append(baseEnv, "NOTARY_ROOT_PASSPHRASE=x"), "notary", "-s", "https://"+srvHost, "--tlscacert", caFile,
		"-d", filepath.Join(home, "notary"), "list", gun, "--roles", "targets/releases")
	found := false
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == "v1" && f[1] == digest && f[2] == fmt.Sprint(size) && f[3] == "targets/releases" {
			found = true
		}
	}
	if !found {
		t.Fatalf("notary list lacks v1 %s %d targets/releases:\n%s", digest, size, list)
	}

	// signet verify agrees, with the signer's own role required.
	out.Reset()
	errOut.Reset()
	code = cli.Main(t.Context(), []string{"verify", "--require-signer", "ci", gun + ":v1"}, cli.Env{
		Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errOut,
	})
	if code != 0 || strings.TrimSpace(out.String()) != "sha256:"+digest {
		t.Fatalf("signet verify: exit %d %q %s", code, out.String(), errOut.String())
	}
}

package servercmd_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/servercmd"
)

// syncBuffer is a bytes.Buffer safe for one writer (the server) and a
// polling reader (the test).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// running is a servercmd.Main (or Run) executing in a goroutine.
type running struct {
	t      *testing.T
	addr   string // host:port from the "listening on" line
	stdout *syncBuffer
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan int // exit code, once
}

var listeningRE = regexp.MustCompile(`listening on https://(\S+) `)

// envMap turns a map into a getenv function.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// startMain runs Main with args and env and waits (bounded) for the
// listening line. The server is stopped at the end of the test if the test
// did not stop it.
func startMain(t *testing.T, args []string, env map[string]string) *running {
	t.Helper()
	return start(t, func(ctx context.Context, stdout, stderr io.Writer) int {
		return servercmd.Main(ctx, args, envMap(env), stdout, stderr)
	})
}

func start(t *testing.T, run func(ctx context.Context, stdout, stderr io.Writer) int) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{t: t, stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() { r.done <- run(ctx, r.stdout, r.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("server did not stop within 30s of cancellation")
		}
	})
	deadline := time.After(90 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(r.stdout.String()); m != nil {
			r.addr = m[1]
			return r
		}
		select {
		case code := <-r.done:
			r.done <- code
			t.Fatalf("server exited with %d before listening\nstdout:\n%s\nstderr:\n%s", code, r.stdout, r.stderr)
		case <-deadline:
			t.Fatalf("no listening line within 90s\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stop cancels the server's context and returns its exit code.
func (r *running) stop() int {
	r.t.Helper()
	r.cancel()
	select {
	case code := <-r.done:
		r.done <- code // for Cleanup
		return code
	case <-time.After(30 * time.Second):
		r.t.Fatalf("server did not stop within 30s\nstderr:\n%s", r.stderr)
		return -1
	}
}

// client returns an HTTPS client that trusts exactly the certificates in
// the PEM file caFile.
func client(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true},
	}
}

type response struct {
	status int
	body   []byte
	tls    *tls.ConnectionState
}

func do(t *testing.T, c *http.Client, method, url string, body io.Reader, contentType string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return response{resp.StatusCode, b, resp.TLS}
}

func get(t *testing.T, c *http.Client, url string) response {
	t.Helper()
	return do(t, c, http.MethodGet, url, nil, "")
}

// wantServing checks the health and /v2/ endpoints answer over c.
func wantServing(t *testing.T, c *http.Client, addr string) {
	t.Helper()
	for _, p := range []string{"/_notary_server/health", "/v2/"} {
		if r := get(t, c, "https://"+addr+p); r.status != 200 || string(r.body) != "{}" {
			t.Errorf("GET %s: %d %s", p, r.status, r.body)
		}
	}
}

// timestampKey creates (or returns) the server's timestamp key for gun and
// returns the raw response.
func timestampKey(t *testing.T, c *http.Client, addr, gun string) []byte {
	t.Helper()
	r := get(t, c, "https://"+addr+"/v2/"+gun+"/_trust/tuf/timestamp.key")
	if r.status != 200 {
		t.Fatalf("GET timestamp.key: %d %s", r.status, r.body)
	}
	return r.body
}

func wantMode(t *testing.T, name string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", name, got, want)
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const testGUN = "example.com/test/app"

// wantTrustSteps checks the docker, notary and signet instructions for
// trusting the local CA are in out.
func wantTrustSteps(t *testing.T, out, addr, caFile string) {
	t.Helper()
	for _, want := range []string{
		"mkdir -p ~/.docker/tls/" + addr + " && cp " + caFile + " ~/.docker/tls/" + addr + "/ca.crt",
		"export DOCKER_CONTENT_TRUST_SERVER=https://" + addr,
		"notary -s https://" + addr + " --tlscacert " + caFile + " list <GUN>",
		"signet -s https://" + addr + " --tlscacert " + caFile + " list <GUN>",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("trust instructions lack %q:\n%s", want, out)
		}
	}
}

// TestLocalCAAndGeneratedPassphrase starts the server three times on one
// data directory: the first start makes the local CA and a passphrase file,
// the second reuses both, the third is given a different passphrase and
// must refuse to start.
func TestLocalCAAndGeneratedPassphrase(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	tlsDir := filepath.Join(dataDir, "tls")
	caFile := filepath.Join(tlsDir, "ca.crt")
	passFile := filepath.Join(dataDir, "key-passphrase")
	args := []string{"--listen", "127.0.0.1:0", "--data-dir", dataDir}
	noEnv := map[string]string{}

	// First start: everything is created.
	r := startMain(t, args, noEnv)
	out := r.stdout.String()
	if !strings.Contains(out, "created a local CA for this server: "+caFile) {
		t.Errorf("first start does not report creating the CA:\n%s", out)
	}
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{"ca.crt", 0o644}, {"ca.key", 0o600}, {"server.crt", 0o644}, {"server.key", 0o600}} {
		wantMode(t, filepath.Join(tlsDir, f.name), f.mode)
	}
	wantMode(t, passFile, 0o600)
	pass1 := readFile(t, passFile)
	if len(bytes.TrimSpace(pass1)) < 32 {
		t.Errorf("generated passphrase is short: %q", pass1)
	}
	if logs := r.stderr.String(); !strings.Contains(logs, `"level":"WARN"`) || !strings.Contains(logs, "SIGNET_KEY_PASSPHRASE is not set") || !strings.Contains(logs, passFile) {
		t.Errorf("no warning about the generated passphrase on stderr:\n%s", logs)
	}
	c := client(t, caFile)
	wantServing(t, c, r.addr)
	served := get(t, c, "https://"+r.addr+"/v2/")
	wantTrustSteps(t, out, r.addr, caFile)
	ca1, caKey1, srv1 := readFile(t, caFile), readFile(t, filepath.Join(tlsDir, "ca.key")), readFile(t, filepath.Join(tlsDir, "server.crt"))
	if got := served.tls.PeerCertificates[0].Raw; !bytes.Equal(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: got}), srv1) {
		t.Error("served certificate is not server.crt")
	}
	key1 := timestampKey(t, c, r.addr, testGUN)
	if code := r.stop(); code != 0 {
		t.Fatalf("first stop: exit %d\n%s", code, r.stderr)
	}
	if !strings.Contains(r.stdout.String(), "signet-server: stopped") {
		t.Errorf("no stopped line:\n%s", r.stdout)
	}

	// Second start: the same CA, certificate and passphrase; the key sealed
	// by the first start opens.
	r = startMain(t, args, noEnv)
	out = r.stdout.String()
	if strings.Contains(out, "created a local CA") || !strings.Contains(out, "using the local CA "+caFile) {
		t.Errorf("second start does not report reusing the CA:\n%s", out)
	}
	wantTrustSteps(t, out, r.addr, caFile)
	if !bytes.Equal(readFile(t, caFile), ca1) || !bytes.Equal(readFile(t, filepath.Join(tlsDir, "ca.key")), caKey1) || !bytes.Equal(readFile(t, filepath.Join(tlsDir, "server.crt")), srv1) {
		t.Error("second start replaced the CA or the server certificate")
	}
	if !bytes.Equal(readFile(t, passFile), pass1) {
		t.Error("second start replaced the passphrase file")
	}
	if !strings.Contains(r.stderr.String(), "SIGNET_KEY_PASSPHRASE is not set") {
		t.Errorf("second start does not warn about the passphrase file:\n%s", r.stderr)
	}
	c = client(t, caFile) // trusts the CA file as it is now
	wantServing(t, c, r.addr)
	if key2 := timestampKey(t, c, r.addr, testGUN); !bytes.Equal(key2, key1) {
		t.Errorf("timestamp key changed across restart:\n%s\n%s", key1, key2)
	}
	if code := r.stop(); code != 0 {
		t.Fatalf("second stop: exit %d\n%s", code, r.stderr)
	}

	// Third start: SIGNET_KEY_PASSPHRASE differs from the generated one.
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	code := servercmd.Main(ctx, args, envMap(map[string]string{"SIGNET_KEY_PASSPHRASE": "not the passphrase"}), &stdout, &stderr)
	if code != 1 {
		t.Fatalf("wrong passphrase: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	if msg := stderr.String(); !strings.Contains(msg, "passphrase does not open this key store") ||
		!strings.Contains(msg, "SIGNET_KEY_PASSPHRASE (or "+passFile+") differs") {
		t.Errorf("wrong passphrase error is not clear:\n%s", msg)
	}
	if strings.Contains(stdout.String(), "listening") {
		t.Errorf("server listened with a wrong passphrase:\n%s", &stdout)
	}
}

// writeCert makes a self-signed server certificate for 127.0.0.1 and
// writes it and its key as PEM files.
func writeCert(t *testing.T, dir string) (certFile, keyFile string, der []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(42),
		Subject:               pkix.Name{CommonName: "test-provided certificate"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "my.crt"), filepath.Join(dir, "my.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, der
}

// TestGivenCertificate runs Run directly with --tls-cert/--tls-key
// settings and SIGNET_KEY_PASSPHRASE: the given certificate is served, no
// local CA is made, no passphrase file is written, and cancelling the
// context returns nil after printing "stopped".
func TestGivenCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, der := writeCert(t, dir)
	dataDir := filepath.Join(dir, "data")
	cfg := servercmd.Config{
		Listen: "127.0.0.1:0", DataDir: dataDir, TLSCert: certFile, TLSKey: keyFile,
		KeyAlgorithm: "ecdsa", LogLevel: "info", LogFormat: "json",
	}
	errc := make(chan error, 1)
	r := start(t, func(ctx context.Context, stdout, stderr io.Writer) int {
		err := servercmd.Run(ctx, cfg, envMap(map[string]string{"SIGNET_KEY_PASSPHRASE": "pw"}), stdout, stderr)
		errc <- err
		if err != nil {
			return 1
		}
		return 0
	})
	c := client(t, certFile)
	wantServing(t, c, r.addr)
	if got := get(t, c, "https://"+r.addr+"/v2/").tls.PeerCertificates[0].Raw; !bytes.Equal(got, der) {
		t.Error("the served certificate is not the one given")
	}
	if _, err := os.Stat(filepath.Join(dataDir, "tls")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a local CA directory was made although a certificate was given (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "key-passphrase")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("passphrase file written although SIGNET_KEY_PASSPHRASE is set (%v)", err)
	}
	if strings.Contains(r.stderr.String(), "SIGNET_KEY_PASSPHRASE is not set") {
		t.Errorf("warning logged although SIGNET_KEY_PASSPHRASE is set:\n%s", r.stderr)
	}
	timestampKey(t, c, r.addr, testGUN) // keys are sealed with the passphrase given
	if out := r.stdout.String(); strings.Contains(out, "local CA") || strings.Contains(out, "To trust it") {
		t.Errorf("trust instructions printed for a given certificate:\n%s", out)
	}
	r.stop()
	if err := <-errc; err != nil {
		t.Fatalf("Run returned %v after cancellation", err)
	}
	if !strings.HasSuffix(r.stdout.String(), "signet-server: stopped\n") {
		t.Errorf("stdout does not end with the stopped line:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr.String(), `"msg":"shutting down"`) {
		t.Errorf("no shutdown log:\n%s", r.stderr)
	}
}

// TestConfigFile checks that YAML settings apply and that flags win over
// them.
func TestConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	yamlDataDir := filepath.Join(dir, "from-yaml")
	cfgFile := filepath.Join(dir, "signet.yaml")
	yaml := "# settings\n" +
		"listen: 127.0.0.1:1\n" + // overridden by --listen
		"data_dir: " + yamlDataDir + "\n" +
		"key_algorithm: ecdsa\n" + // overridden by --key-algorithm
		"log_format: text\n" +
		"log_level: debug\n" +
		"max_upload_bytes: 2000\n" +
		"limits:\n  new_repository_keys_per_second: 0.001\n  new_repository_keys_burst: 2\n"
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startMain(t, []string{"--config", cfgFile, "--listen", "127.0.0.1:0", "--key-algorithm", "ed25519"},
		map[string]string{"SIGNET_KEY_PASSPHRASE": "pw"})
	if strings.HasSuffix(r.addr, ":1") {
		t.Errorf("--listen did not override the config file: %s", r.addr)
	}
	if out := r.stdout.String(); !strings.Contains(out, "data in "+yamlDataDir+",") {
		t.Errorf("data_dir from the config file not used:\n%s", out)
	}
	c := client(t, filepath.Join(yamlDataDir, "tls", "ca.crt"))
	wantServing(t, c, r.addr)

	var k struct {
		KeyType string `json:"keytype"`
	}
	if err := json.Unmarshal(timestampKey(t, c, r.addr, testGUN), &k); err != nil || k.KeyType != "ed25519" {
		t.Errorf("--key-algorithm did not override the config file: keytype %q (%v)", k.KeyType, err)
	}

	// limits: two keys for new repositories (one made above), then 429.
	if got := do(t, c, http.MethodGet, "https://"+r.addr+"/v2/example.com/second/_trust/tuf/timestamp.key", nil, ""); got.status != 200 {
		t.Errorf("second new repository: %d %s", got.status, got.body)
	}
	if got := do(t, c, http.MethodGet, "https://"+r.addr+"/v2/example.com/third/_trust/tuf/timestamp.key", nil, ""); got.status != 429 || !strings.Contains(string(got.body), "TOOMANYREQUESTS") {
		t.Errorf("limits from the config file not applied: third new repository: %d %s", got.status, got.body)
	}

	// max_upload_bytes exists only in the config file.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, _ := mw.CreateFormFile("files", "targets")
	w.Write(bytes.Repeat([]byte("x"), 4000))
	mw.Close()
	up := do(t, c, http.MethodPost, "https://"+r.addr+"/v2/"+testGUN+"/_trust/tuf/", &body, mw.FormDataContentType())
	if up.status != 400 || !strings.Contains(string(up.body), "limit") {
		t.Errorf("max_upload_bytes from the config file not applied: %d %s", up.status, up.body)
	}

	if code := r.stop(); code != 0 {
		t.Fatalf("exit %d\n%s", code, r.stderr)
	}
	// log_format text and log_level debug: a text-format debug-or-info line.
	if logs := r.stderr.String(); !strings.Contains(logs, "level=INFO") || !strings.Contains(logs, `msg="shutting down"`) {
		t.Errorf("log_format text from the config file not used:\n%s", logs)
	}
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeYAML := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unknownKey := writeYAML("unknown.yaml", "listen: 127.0.0.1:0\nlisten_port: 4443\n")
	badType := writeYAML("badtype.yaml", "max_upload_bytes: lots\n")
	signerYAML := writeYAML("signer.yaml", "signer: https://127.0.0.1:7899\n")
	badLimits := writeYAML("limits.yaml", "limits:\n  upload_memory: -1\n  body_rate_grace: 10m\n  failed_logins_burst: -2\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--bogus"}, "signet-server: unknown flag --bogus (see signet-server --help)\n"},
		{"positional argument", []string{"serve"}, `unexpected argument "serve"`},
		{"all interfaces without auth", []string{"--listen", "0.0.0.0:0"}, "--listen 0.0.0.0:0 is reachable from other machines and no auth: section is configured"},
		{"empty host without auth", []string{"--listen", ":0"}, "pass --insecure-no-auth (insecure_no_auth: true in the config file)"},
		{"host name without auth", []string{"--listen", "signet.example:0"}, "configure token authentication (an auth: section in --config"},
		{"bad metrics address", []string{"--metrics-listen", "9464"}, `--metrics-listen "9464"`},
		{"cert without key", []string{"--tls-cert", "/nonexistent/cert.pem"}, "--tls-cert and --tls-key go together"},
		{"key without cert", []string{"--tls-key", "/nonexistent/key.pem"}, "--tls-cert and --tls-key go together"},
		{"rsa", []string{"--key-algorithm", "rsa"}, `--key-algorithm "rsa": use ecdsa or ed25519`},
		{"signer without client certificate", []string{"--signer", "https://127.0.0.1:7899"}, "--signer needs --signer-cert, --signer-key and --signer-ca"},
		{"signer in config without client certificate", []string{"--config", signerYAML}, "--signer needs --signer-cert, --signer-key and --signer-ca"},
		{"signer over plain http", []string{"--signer", "http://127.0.0.1:7899", "--signer-cert", "c", "--signer-key", "k", "--signer-ca", "ca"}, `--signer "http://127.0.0.1:7899": want https://HOST:PORT`},
		{"signer certificate without signer", []string{"--signer-cert", "c"}, "--signer-cert, --signer-key and --signer-ca need --signer"},
		{"unknown config key", []string{"--config", unknownKey}, "field listen_port not found"},
		{"negative upload memory", []string{"--config", badLimits}, "limits.upload_memory -1"},
		{"grace past the read timeout", []string{"--config", badLimits}, "limits.body_rate_grace 10m0s"},
		{"negative burst", []string{"--config", badLimits}, "limits: a burst must not be negative"},
		{"config value of wrong type", []string{"--config", badType}, "cannot unmarshal"},
		{"missing config file", []string{"--config", filepath.Join(dir, "absent.yaml")}, "config: open "},
		{"listen without port", []string{"--listen", "127.0.0.1"}, `--listen "127.0.0.1": address 127.0.0.1: missing port in address`},
		{"listen garbage", []string{"--listen", "not an address"}, `--listen "not an address"`},
		{"log level", []string{"--log-level", "loud"}, `--log-level "loud"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			var stdout, stderr syncBuffer
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			args := append([]string{"--data-dir", dataDir}, tt.args...)
			code := servercmd.Main(ctx, args, envMap(nil), &stdout, &stderr)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstderr:\n%s", code, &stderr)
			}
			msg := stderr.String()
			if !strings.Contains(msg, "signet-server: ") || !strings.Contains(msg, tt.want) {
				t.Errorf("stderr does not say %q:\n%s", tt.want, msg)
			}
			if strings.Count(msg, "\n") > 1 && !strings.Contains(msg, "\n- ") && strings.Contains(msg, "Flags:") {
				t.Errorf("a bad flag printed the whole usage:\n%s", msg)
			}
			if stdout.String() != "" {
				t.Errorf("stdout not empty:\n%s", &stdout)
			}
			if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("data directory made despite bad flags (%v)", err)
			}
		})
	}
	t.Run("help", func(t *testing.T) {
		var stdout, stderr syncBuffer
		if code := servercmd.Main(t.Context(), []string{"--help"}, envMap(nil), &stdout, &stderr); code != 0 {
			t.Errorf("--help: exit %d", code)
		}
		out := stdout.String()
		for _, want := range []string{"Usage:\n  signet-server [flags]", "\n  --tls-cert file\n", "\n  --insecure-no-auth\n", "\n  --metrics-listen address\n", "\n  --version\n", "\nExamples:\n  signet-server\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("--help on stdout lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "\n  -tls-cert") || stderr.String() != "" {
			t.Errorf("--help: single-dash flags or output on stderr:\n%s\n%s", out, &stderr)
		}
	})
	t.Run("version", func(t *testing.T) {
		for _, args := range [][]string{{"--version"}, {"version"}} {
			var stdout, stderr syncBuffer
			if code := servercmd.Main(t.Context(), args, envMap(nil), &stdout, &stderr); code != 0 {
				t.Errorf("%v: exit %d", args, code)
			}
			if !strings.HasPrefix(stdout.String(), "signet-server ") || !strings.Contains(stdout.String(), " go1.") || stderr.String() != "" {
				t.Errorf("%v: stdout %q stderr %q", args, &stdout, &stderr)
			}
		}
	})
}

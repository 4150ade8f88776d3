package signer

// Helpers copied (and trimmed) from internal/e2e/compat: running external
// commands with a clean environment, daemons, a test PKI.

import (
	"bufio"
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
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const commandTimeout = 90 * time.Second

// requireAll reports whether a missing component must fail the run:
// SIGNET_TEST_REQUIRE lists component names, or "all".
func requireAll(name string) bool {
	for _, f := range strings.FieldsFunc(os.Getenv("SIGNET_TEST_REQUIRE"), func(r rune) bool { return r == ',' || r == ' ' }) {
		if f == "all" || f == name {
			return true
		}
	}
	return false
}

// need skips (or fails) the test unless every program is on PATH.
func need(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			if requireAll(p) {
				t.Fatalf("%s not found on PATH (SIGNET_TEST_REQUIRE=%q makes this an error)", p, os.Getenv("SIGNET_TEST_REQUIRE"))
			}
			t.Skipf("%s not found on PATH (set SIGNET_TEST_REQUIRE=all to fail instead)", p)
		}
	}
}

// moduleRoot is the directory holding go.mod, above the working directory.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// baseEnv is the environment every process starts from: only PATH (and
// TMPDIR) of the caller's.
func baseEnv(home string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C.UTF-8", "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}
	if v := os.Getenv("TMPDIR"); v != "" {
		env = append(env, "TMPDIR="+v)
	}
	return env
}

// cmdResult is one finished external command.
type cmdResult struct {
	args           []string
	stdout, stderr string
	code           int // -1 when the command could not run or was killed
	err            error
}

func (r *cmdResult) ok() bool       { return r.err == nil && r.code == 0 }
func (r *cmdResult) output() string { return r.stdout + r.stderr }

func (r *cmdResult) String() string {
	return fmt.Sprintf("$ %s\n  exit %d (%v)\n--- stdout ---\n%s\n--- stderr ---\n%s\n--- end ---",
		strings.Join(r.args, " "), r.code, r.err, r.stdout, r.stderr)
}

// command runs programs with a fixed environment.
type command struct {
	env     []string
	dir     string
	timeout time.Duration
}

func (c command) run(t testing.TB, args ...string) *cmdResult {
	t.Helper()
	timeout := c.timeout
	if timeout == 0 {
		timeout = commandTimeout
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = c.env
	cmd.Dir = c.dir
	cmd.Stdin = strings.NewReader("")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := &cmdResult{args: args, stdout: stdout.String(), stderr: stderr.String(), code: -1}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		r.code = 0
	case errors.As(err, &exitErr) && exitErr.Exited():
		r.code = exitErr.ExitCode()
	default:
		r.err = err
	}
	if ctx.Err() == context.DeadlineExceeded {
		r.err = fmt.Errorf("killed after timeout %v", timeout)
	}
	return r
}

func (c command) mustOK(t testing.TB, args ...string) *cmdResult {
	t.Helper()
	r := c.run(t, args...)
	if !r.ok() {
		t.Fatalf("command failed:\n%s", r)
	}
	return r
}

func (c command) mustFail(t testing.TB, args ...string) *cmdResult {
	t.Helper()
	r := c.run(t, args...)
	if r.err != nil || r.code == 0 {
		t.Fatalf("command should have failed:\n%s", r)
	}
	return r
}

// --- binaries ----------------------------------------------------------------

var builds struct {
	once  sync.Once
	dir   string
	paths map[string]string
	err   error
}

// binary returns the path of ./cmd/<name> built once per test binary, or
// the file named by envVar.
func binary(t *testing.T, name, envVar string) string {
	t.Helper()
	if p := os.Getenv(envVar); p != "" {
		return p
	}
	builds.once.Do(func() {
		builds.dir, builds.err = os.MkdirTemp("", "signet-e2e-signer-build-")
		if builds.err != nil {
			return
		}
		builds.paths = map[string]string{}
		c := command{env: os.Environ(), dir: moduleRoot(t), timeout: 5 * time.Minute}
		for _, n := range []string{"signet-server", "signet-signer"} {
			out := filepath.Join(builds.dir, n)
			if r := c.run(t, "go", "build", "-o", out, "./cmd/"+n); !r.ok() {
				builds.err = fmt.Errorf("building ./cmd/%s:\n%s", n, r)
				return
			}
			builds.paths[n] = out
		}
	})
	if builds.err != nil {
		t.Fatal(builds.err)
	}
	return builds.paths[name]
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	os.Exit(code)
}

// --- daemons -----------------------------------------------------------------

// daemon is a long-running child process.
type daemon struct {
	name    string
	logFile string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

// startDaemon starts a child with its output in logFile (appended) and
// stops it in t.Cleanup.
func startDaemon(t *testing.T, name, dir, logFile string, env []string, args ...string) *daemon {
	t.Helper()
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(baseEnv(dir), env...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	d := &daemon{name: name, logFile: logFile, cmd: cmd, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		lf.Close()
		close(d.done)
	}()
	t.Cleanup(func() { d.stop(t) })
	return d
}

// stop interrupts the process and kills it if it lingers.
func (d *daemon) stop(t testing.TB) {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		t.Logf("%s ignored SIGTERM for 5s; killing it", d.name)
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// kill ends the process abruptly (SIGKILL) and waits for it.
func (d *daemon) kill() {
	_ = d.cmd.Process.Kill()
	<-d.done
}

// waitListening waits until addr accepts TCP connections.
func waitListening(addr string, d *daemon, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-d.done:
			return fmt.Errorf("the process exited (%v)", d.err)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func fileTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// requests reads signet-server's slog JSON log ("request" lines) and
// returns "METHOD PATH STATUS" for each.
func requests(logFile string) []string {
	f, err := os.Open(logFile)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg, Method, Path string
			Status            int
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "request" || l.Method == "" {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s %d", l.Method, l.Path, l.Status))
	}
	return out
}

// --- PKI ---------------------------------------------------------------------

// testPKI is one throw-away CA with leaf certificates for 127.0.0.1.
type testPKI struct {
	dir    string
	caFile string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

func newPKI(t testing.TB, dir, name string) *testPKI {
	t.Helper()
	key := newECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(7 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{dir: dir, caFile: filepath.Join(dir, name+"-ca.crt"), ca: ca, caKey: key}
	writePEM(t, p.caFile, "CERTIFICATE", der)
	return p
}

// issue writes name.crt and name.key, a certificate for usage.
func (p *testPKI) issue(t testing.TB, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key := newECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(7 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, key.Public(), p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(p.dir, name+".crt"), filepath.Join(p.dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", pk)
	return certFile, keyFile
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randomSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// httpsClient trusts only caFile.
func httpsClient(t testing.TB, caFile string) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(b)
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
}

// get fetches url and returns the status, headers and body.
func get(t testing.TB, c *http.Client, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, resp.Header, body
}

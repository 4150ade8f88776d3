package compat

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// A target is one running trust server under test.
type target struct {
	name    string // "reference" or "signet"
	host    string // 127.0.0.1:port
	url     string // https://host
	caFile  string // PEM CA that signed the server certificate
	logFile string // the server's log, shown when something fails

	// requests, when set, returns "METHOD URI STATUS" for every request the
	// server logged after log offset since. Only the reference can tell.
	requests func(since int64) []string
}

const (
	targetReference = "reference"
	targetSignet    = "signet"
)

// selectedTargets parses SIGNET_COMPAT_TARGETS (default "signet,reference").
func selectedTargets(t *testing.T) []string {
	v := os.Getenv("SIGNET_COMPAT_TARGETS")
	if strings.TrimSpace(v) == "" {
		v = targetSignet + "," + targetReference
	}
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		switch f {
		case targetSignet, targetReference:
			out = append(out, f)
		default:
			t.Fatalf("SIGNET_COMPAT_TARGETS: unknown target %q (want signet and/or reference)", f)
		}
	}
	return out
}

func startTarget(t *testing.T, name string) *target {
	t.Helper()
	switch name {
	case targetReference:
		return startReference(t)
	case targetSignet:
		return startSignet(t)
	}
	t.Fatalf("unknown target %q", name)
	return nil
}

// logTail returns the last lines of the target's log.
func (tg *target) logTail() string {
	return fileTail(tg.logFile, 40)
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

// logMark is the current end of the server log, for requests.
func (tg *target) logMark() int64 {
	fi, err := os.Stat(tg.logFile)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// httpClient trusts only the target's CA.
func (tg *target) httpClient(t testing.TB) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(tg.caFile)
	if err != nil {
		t.Fatalf("reading CA: %v", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", tg.caFile)
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool},
			DisableKeepAlives: true,
		},
	}
}

// get fetches path (starting with /) from the target.
func (tg *target) get(t testing.TB, path string) (int, []byte) {
	t.Helper()
	resp, err := tg.httpClient(t).Get(tg.url + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", tg.url, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s%s: reading body: %v", tg.url, path, err)
	}
	return resp.StatusCode, body
}

// --- reference: Debian notary-server + notary-signer --------------------

// sharedDir is the shared design/reference directory.
func sharedDir(t testing.TB) string {
	if d := os.Getenv("SIGNET_SHARED_DIR"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	return filepath.Clean(filepath.Join(wd, "..", "..", "..", "..", "shared"))
}

// startReference runs the verified recipe of notary-local (its
// gen-certs.sh and its server/signer configs) but on free ports: start.sh
// hard-codes 127.0.0.1:24443/27899, which the benchmark harness and
// developers' own reference servers also use. The addresses are moved with
// the viper environment overrides the README documents
// (NOTARY_SERVER_<SECTION>_<KEY>). Both processes are our children and are
// stopped in t.Cleanup.
func startReference(t *testing.T) *target {
	t.Helper()
	need(t, "notary-server", "notary-signer", "bash", "openssl")
	scripts := filepath.Join(sharedDir(t), "reference", "notary-local")
	if _, err := os.Stat(filepath.Join(scripts, "gen-certs.sh")); err != nil {
		missing(t, "notary-server", "reference recipe not found at %s (set SIGNET_SHARED_DIR): %v", scripts, err)
	}
	run := t.TempDir()
	sh := command{env: baseEnv(run), dir: run}
	sh.mustOK(t, "bash", filepath.Join(scripts, "gen-certs.sh"), filepath.Join(run, "certs"))
	for _, f := range []string{"server-config.json", "signer-config.json"} {
		b, err := os.ReadFile(filepath.Join(scripts, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(run, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	serverAddr, signerAddr := freeAddr(t), freeAddr(t)
	_, signerPort, _ := net.SplitHostPort(signerAddr)

	start := time.Now()
	signerLog := filepath.Join(run, "signer.log")
	signer := startDaemon(t, "notary-signer", run, signerLog,
		[]string{"NOTARY_SIGNER_SERVER_GRPC_ADDR=" + signerAddr},
		"notary-signer", "-config", filepath.Join(run, "signer-config.json"), "-logf", "logfmt")
	if err := waitListening(signerAddr, signer, 15*time.Second); err != nil {
		t.Fatalf("reference notary-signer did not start on %s: %v\n--- signer.log ---\n%s", signerAddr, err, fileTail(signerLog, 30))
	}
	tg := &target{
		name:    targetReference,
		host:    serverAddr,
		url:     "https://" + serverAddr,
		caFile:  filepath.Join(run, "certs", "ca.crt"),
		logFile: filepath.Join(run, "server.log"),
	}
	server := startDaemon(t, "notary-server", run, tg.logFile,
		[]string{"NOTARY_SERVER_SERVER_HTTP_ADDR=" + serverAddr, "NOTARY_SERVER_TRUST_SERVICE_PORT=" + signerPort},
		"notary-server", "-config", filepath.Join(run, "server-config.json"), "-logf", "logfmt")
	if err := waitHealthy(testContext(t), tg, server, 30*time.Second); err != nil {
		t.Fatalf("reference notary-server did not become healthy on %s: %v\n--- server.log ---\n%s\n--- signer.log ---\n%s",
			serverAddr, err, fileTail(tg.logFile, 30), fileTail(signerLog, 30))
	}
	t.Logf("reference notary-server up on %s (signer %s) in %v, run dir %s",
		serverAddr, signerAddr, time.Since(start).Round(time.Millisecond), run)
	tg.requests = func(since int64) []string { return referenceRequests(tg.logFile, since) }
	return tg
}

// daemon is a long-running child process.
type daemon struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's result, valid after done
}

// exitError describes how the process ended; call after done.
func (d *daemon) exitError() error {
	if d.err == nil {
		return errors.New("exit status 0")
	}
	return d.err
}

// startDaemon starts a long-running child with its output in logFile and
// stops it in t.Cleanup.
func startDaemon(t *testing.T, name, dir, logFile string, env []string, args ...string) *daemon {
	t.Helper()
	lf, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(baseEnv(dir), env...)
	cmd.Dir = dir
	cmd.Stdout = lf
	cmd.Stderr = lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	d := &daemon{name: name, cmd: cmd, done: make(chan struct{})}
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

// waitListening waits until addr accepts TCP connections.
func waitListening(addr string, d *daemon, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-d.done:
			return fmt.Errorf("the process exited (%v)", d.exitError())
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

// referenceRequests reads notary-server's JSON log ("response completed"
// lines) from offset since.
func referenceRequests(logFile string, since int64) []string {
	return scanJSONLog(logFile, since, func(line []byte) (string, bool) {
		var l struct {
			Msg    string `json:"msg"`
			Method string `json:"http.request.method"`
			URI    string `json:"http.request.uri"`
			Status int    `json:"http.response.status"`
		}
		if json.Unmarshal(line, &l) != nil || l.Msg != "response completed" {
			return "", false
		}
		if l.Status == 0 {
			l.Status = 200 // the handler wrote nothing: net/http sends 200
		}
		return fmt.Sprintf("%s %s %d", l.Method, l.URI, l.Status), true
	})
}

// scanJSONLog applies parse to every line of logFile after offset since.
func scanJSONLog(logFile string, since int64, parse func([]byte) (string, bool)) []string {
	f, err := os.Open(logFile)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(since, io.SeekStart); err != nil {
		return nil
	}
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if s, ok := parse(sc.Bytes()); ok {
			out = append(out, s)
		}
	}
	return out
}

// signetRequests reads signet-server's slog JSON log ("request" lines with
// method, path and status) from offset since.
func signetRequests(logFile string, since int64) []string {
	return scanJSONLog(logFile, since, func(line []byte) (string, bool) {
		var l struct {
			Msg    string `json:"msg"`
			Method string `json:"method"`
			Path   string `json:"path"`
			Status int    `json:"status"`
		}
		if json.Unmarshal(line, &l) != nil || l.Msg != "request" || l.Method == "" {
			return "", false
		}
		if l.Status == 0 {
			l.Status = 200
		}
		return fmt.Sprintf("%s %s %d", l.Method, l.Path, l.Status), true
	})
}

// --- signet: ./cmd/signet-server -------------------------------------------

// signetPassphrase protects the test server's online keys at rest.
const signetPassphrase = "compat-test-key-passphrase"

var signetBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// cleanupSignetBuild removes the build directory; called by TestMain.
func cleanupSignetBuild() {
	if signetBuild.dir != "" {
		os.RemoveAll(signetBuild.dir)
	}
}

// signetBinary builds ./cmd/signet-server once per test binary, or returns
// SIGNET_SERVER_BIN.
func signetBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SIGNET_SERVER_BIN"); p != "" {
		return p
	}
	root := moduleRoot(t)
	signetBuild.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			signetBuild.err = fmt.Errorf("go not found on PATH: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "signet-compat-build-")
		if err != nil {
			signetBuild.err = err
			return
		}
		signetBuild.dir = dir
		out := filepath.Join(dir, "signet-server")
		c := command{env: os.Environ(), dir: root, timeout: 5 * time.Minute}
		start := time.Now()
		r := c.run(t, goTool, "build", "-o", out, "./cmd/signet-server")
		if !r.ok() {
			signetBuild.err = fmt.Errorf("building ./cmd/signet-server failed:\n%s", r)
			return
		}
		t.Logf("built signet-server in %v", time.Since(start).Round(time.Millisecond))
		signetBuild.path = out
	})
	if signetBuild.err != nil {
		t.Fatal(signetBuild.err)
	}
	return signetBuild.path
}

func startSignet(t *testing.T) *target {
	t.Helper()
	bin := signetBinary(t)
	dir := t.TempDir()
	pki := writeTestPKI(t, dir)
	addr := freeAddr(t)
	logFile := filepath.Join(dir, "server.log")
	args := []string{
		bin,
		"--listen", addr,
		"--data-dir", filepath.Join(dir, "data"),
		"--tls-cert", pki.certFile,
		"--tls-key", pki.keyFile,
		// Successful GETs are logged at debug level only; the suite reads
		// the request log to check request sequences.
		"--log-level", "debug",
	}
	server := startDaemon(t, "signet-server", dir, logFile, []string{"SIGNET_KEY_PASSPHRASE=" + signetPassphrase}, args...)

	tg := &target{
		name:    targetSignet,
		host:    addr,
		url:     "https://" + addr,
		caFile:  pki.caFile,
		logFile: logFile,
	}
	start := time.Now()
	if err := waitHealthy(testContext(t), tg, server, 30*time.Second); err != nil {
		t.Fatalf("signet-server did not become healthy on %s: %v\n$ %s\n--- server log ---\n%s",
			addr, err, shellQuote(args), fileTail(logFile, 40))
	}
	t.Logf("signet-server up on %s in %v", addr, time.Since(start).Round(time.Millisecond))
	tg.requests = func(since int64) []string { return signetRequests(tg.logFile, since) }
	return tg
}

// waitHealthy polls GET /_notary_server/health until it answers 200, the
// process exits, or the timeout passes.
func waitHealthy(ctx context.Context, tg *target, d *daemon, timeout time.Duration) error {
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(tg.caFile)
	if err != nil {
		return err
	}
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true},
	}
	deadline := time.Now().Add(timeout)
	lastErr := errors.New("no answer yet")
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			return fmt.Errorf("the process exited before becoming healthy (%v)", d.exitError())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := client.Get(tg.url + "/_notary_server/health")
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			lastErr = fmt.Errorf("GET /_notary_server/health: %s %q", resp.Status, body)
		} else {
			lastErr = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not healthy after %v: last error: %v", timeout, lastErr)
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

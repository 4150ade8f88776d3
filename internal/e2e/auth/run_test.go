package auth

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireAll reports whether a missing component must fail the run:
// SIGNET_TEST_REQUIRE lists component names (commas or spaces), or "all".
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
			t.Skipf("%s not found on PATH (set SIGNET_TEST_REQUIRE=all to fail instead; scripts/test-deps.sh installs it)", p)
		}
	}
}

// baseEnv is a clean environment: nothing of the caller's leaks in but
// PATH and TMPDIR.
func baseEnv(home string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C.UTF-8",
		"XDG_RUNTIME_DIR=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}
	if v := os.Getenv("TMPDIR"); v != "" {
		env = append(env, "TMPDIR="+v)
	}
	return env
}

// result is one finished command.
type result struct {
	args           []string
	stdout, stderr string
	err            error
}

func (r *result) ok() bool       { return r.err == nil }
func (r *result) output() string { return r.stdout + r.stderr }
func (r *result) String() string {
	return fmt.Sprintf("$ %s\n  (%v)\n--- stdout ---\n%s\n--- stderr ---\n%s", strings.Join(r.args, " "), r.err, r.stdout, r.stderr)
}

// run executes args with env (and stdin) under a timeout; it never fails
// the test itself.
func run(t testing.TB, env []string, stdin string, args ...string) *result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return &result{args: args, stdout: out.String(), stderr: errb.String(), err: err}
}

func mustOK(t testing.TB, env []string, stdin string, args ...string) *result {
	t.Helper()
	r := run(t, env, stdin, args...)
	if !r.ok() {
		t.Fatalf("command failed:\n%s", r)
	}
	return r
}

func mustFail(t testing.TB, env []string, stdin string, args ...string) *result {
	t.Helper()
	r := run(t, env, stdin, args...)
	if r.ok() {
		t.Fatalf("command succeeded, want failure:\n%s", r)
	}
	return r
}

// freeAddr returns a 127.0.0.1 address with a port free right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// moduleRoot is the directory holding go.mod above the working directory.
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

// signetBinary builds ./cmd/signet-server, or returns SIGNET_SERVER_BIN.
func signetBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SIGNET_SERVER_BIN"); p != "" {
		return p
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not found on PATH: %v", err)
	}
	out := filepath.Join(t.TempDir(), "signet-server")
	cmd := exec.Command(goTool, "build", "-o", out, "./cmd/signet-server")
	cmd.Dir = moduleRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building signet-server: %v\n%s", err, b)
	}
	return out
}

// proc is a started daemon.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logFile string
	done    chan struct{}
	err     error
}

// start runs a daemon with its output in logFile; it is stopped (SIGTERM,
// then SIGKILL after 5 s) when the test ends.
func start(t testing.TB, name, logFile string, env []string, args ...string) *proc {
	t.Helper()
	lf, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, logFile: logFile, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); lf.Close(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) log() string {
	b, _ := os.ReadFile(p.logFile)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// waitHTTP polls url until check accepts the status, the process exits or
// 30 s pass.
func (p *proc) waitHTTP(t testing.TB, c *http.Client, url string, check func(int) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v):\n%s", p.name, p.err, p.log())
		default:
		}
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if check(resp.StatusCode) {
				return
			}
			err = errors.New(resp.Status)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %s not ready within 30s (%v):\n%s", p.name, url, last, p.log())
}

// tlsClient trusts exactly the certificates in caFile.
func tlsClient(t testing.TB, caFile string) *http.Client {
	t.Helper()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	return &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
}

// waitFile waits for a file another process writes.
func waitFile(t testing.TB, p *proc, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(name); err == nil {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v):\n%s", p.name, p.err, p.log())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not write %s within 30s:\n%s", p.name, name, p.log())
}

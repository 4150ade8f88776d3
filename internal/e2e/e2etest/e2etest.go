// Package e2etest runs signet-server as a subprocess for end-to-end tests:
// it builds the binary once per test binary (or takes SIGNET_SERVER_BIN),
// starts it on a free 127.0.0.1 port with its local CA, waits until it
// listens, and gives an HTTPS client that trusts that CA. It is imported
// only from _test.go files.
package e2etest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"testing"
	"time"
)

// BuildServer builds cmd/signet-server into a new temporary directory, or
// returns $SIGNET_SERVER_BIN when set; call it from TestMain and call
// cleanup when the tests are done.
func BuildServer(prefix string) (bin string, cleanup func(), err error) {
	if p := os.Getenv("SIGNET_SERVER_BIN"); p != "" {
		return p, func() {}, nil
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin = filepath.Join(dir, "signet-server")
	build := exec.CommandContext(ctx, goTool, "build", "-o", bin, "github.com/signet-trust/signet/cmd/signet-server")
	if out, err := build.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("building signet-server: %v\n%s", err, out)
	}
	return bin, cleanup, nil
}

// SyncBuffer collects a subprocess's output for polling.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Options configure one server start.
type Options struct {
	Bin     string
	DataDir string
	// Env is added to a minimal environment (HOME=DataDir, PATH).
	Env []string
	// Flags follow --listen 127.0.0.1:0 --data-dir DataDir --log-level warn.
	Flags []string
	// ClientTimeout and MaxIdleConns tune Server.Client (defaults 10s, 16).
	ClientTimeout time.Duration
	MaxIdleConns  int
	// LogTailOnFailure logs the end of the server's stderr when the test
	// failed.
	LogTailOnFailure bool
}

// Server is one run of the signet-server subprocess.
type Server struct {
	T      testing.TB
	Cmd    *exec.Cmd
	Addr   string
	Base   string // https://Addr
	Client *http.Client
	Stdout *SyncBuffer
	Stderr *SyncBuffer
	Exited chan struct{} // closed when Wait returned
}

var listeningRE = regexp.MustCompile(`listening on https://(\S+) `)

// Start runs signet-server and waits (bounded) until it listens; the
// process is killed at the end of the test if still running.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{T: t, Stdout: &SyncBuffer{}, Stderr: &SyncBuffer{}, Exited: make(chan struct{})}
	args := append([]string{"--listen", "127.0.0.1:0", "--data-dir", o.DataDir, "--log-level", "warn"}, o.Flags...)
	s.Cmd = exec.Command(o.Bin, args...)
	s.Cmd.Env = append([]string{"HOME=" + o.DataDir, "PATH=/usr/bin:/bin"}, o.Env...)
	s.Cmd.Stdout, s.Cmd.Stderr = s.Stdout, s.Stderr
	s.Cmd.WaitDelay = 5 * time.Second
	if err := s.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.Cmd.Wait(); close(s.Exited) }()
	t.Cleanup(func() {
		if o.LogTailOnFailure && t.Failed() {
			out := s.Stderr.String()
			if len(out) > 4000 {
				out = "…" + out[len(out)-4000:]
			}
			t.Logf("signet-server stderr (tail):\n%s", out)
		}
		select {
		case <-s.Exited:
		default:
			s.Cmd.Process.Kill()
			<-s.Exited
		}
	})
	deadline := time.After(30 * time.Second)
	for s.Addr == "" {
		if m := listeningRE.FindStringSubmatch(s.Stdout.String()); m != nil {
			s.Addr = m[1]
			break
		}
		select {
		case <-s.Exited:
			t.Fatalf("signet-server exited before listening: %v\nstdout:\n%s\nstderr:\n%s", s.Cmd.ProcessState, s.Stdout, s.Stderr)
		case <-deadline:
			t.Fatalf("signet-server did not listen within 30s\nstdout:\n%s\nstderr:\n%s", s.Stdout, s.Stderr)
		case <-time.After(5 * time.Millisecond):
		}
	}
	s.Base = "https://" + s.Addr
	timeout, idle := o.ClientTimeout, o.MaxIdleConns
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if idle == 0 {
		idle = 16
	}
	s.Client = &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: CAPool(t, o.DataDir)}, MaxIdleConnsPerHost: idle}}
	t.Cleanup(s.Client.CloseIdleConnections)
	return s
}

// CAPool reads the local CA the server made in dataDir.
func CAPool(t testing.TB, dataDir string) *x509.CertPool {
	t.Helper()
	pemBytes, err := os.ReadFile(filepath.Join(dataDir, "tls", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("ca.crt holds no certificate")
	}
	return pool
}

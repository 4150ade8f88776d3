package e2etest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"
)

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
	// Bin defaults to Binary(t, "signet-server").
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
	if o.Bin == "" {
		o.Bin = Binary(t, "signet-server")
	}
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
	pool, err := CertPool(filepath.Join(dataDir, "tls", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

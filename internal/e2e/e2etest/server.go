package e2etest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
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
	// CAFile is the CA Server.Client trusts; default the local CA the
	// server makes in DataDir (when Flags give no --tls-cert).
	CAFile string
	// Name is used in messages (default "signet-server").
	Name string
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
	Name   string
	opts   Options
}

var listeningRE = regexp.MustCompile(`listening on https://(\S+) `)

// WaitListeningLine waits (bounded) until out holds the line signet-server
// and signet-signer print once they listen ("…: listening on https://ADDR
// …"), and returns ADDR; exited closed first is an error.
func WaitListeningLine(out *SyncBuffer, exited <-chan struct{}, timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	for {
		if m := listeningRE.FindStringSubmatch(out.String()); m != nil {
			return m[1], nil
		}
		select {
		case <-exited:
			return "", errors.New("exited before listening")
		case <-deadline:
			return "", fmt.Errorf("did not listen within %v", timeout)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Start runs signet-server and waits (bounded) until it listens; the
// process is killed at the end of the test if still running.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s := Spawn(t, o)
	s.WaitListening(30 * time.Second)
	return s
}

// Spawn starts signet-server without waiting for it (so that several can
// start at once); WaitListening waits. The process is killed at the end
// of the test if still running.
func Spawn(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Name == "" {
		o.Name = "signet-server"
	}
	s := &Server{T: t, Stdout: &SyncBuffer{}, Stderr: &SyncBuffer{}, Exited: make(chan struct{}), Name: o.Name, opts: o}
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
			t.Logf("%s stderr (tail):\n%s", s.Name, out)
		}
		select {
		case <-s.Exited:
		default:
			s.Cmd.Process.Kill()
			<-s.Exited
		}
	})
	return s
}

// WaitListening waits (bounded) until the server prints the address it
// listens on, then makes Base and Client.
func (s *Server) WaitListening(timeout time.Duration) {
	t := s.T
	t.Helper()
	addr, err := WaitListeningLine(s.Stdout, s.Exited, timeout)
	if err != nil {
		t.Fatalf("%s %v\nstdout:\n%s\nstderr:\n%s", s.Name, err, s.Stdout, s.Stderr)
	}
	s.Addr = addr
	s.Base = "https://" + s.Addr
	o := s.opts
	timeout, idle := o.ClientTimeout, o.MaxIdleConns
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if idle == 0 {
		idle = 16
	}
	var pool *x509.CertPool
	if o.CAFile != "" {
		var err error
		if pool, err = CertPool(o.CAFile); err != nil {
			t.Fatal(err)
		}
	} else {
		pool = CAPool(t, o.DataDir)
	}
	s.Client = &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: idle}}
	t.Cleanup(s.Client.CloseIdleConnections)
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

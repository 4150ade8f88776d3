// Package inproc runs signet-server and signet-signer inside the test
// binary, each in a goroutine through its command's Main
// (internal/servercmd, internal/signercmd) with the flags a user would
// pass, on 127.0.0.1 with certificates from a throw-away test CA
// (internal/e2e/e2etest). It is the stack for end-to-end tests that need
// no process boundary: nothing is built, nothing is spawned, and the race
// detector sees the server's code. Tests that kill, stop or measure a
// process use e2etest's subprocesses instead. Imported only from _test.go
// files.
package inproc

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/servercmd"
	"github.com/signet-trust/signet/internal/signercmd"
)

// instance is one Main running in a goroutine.
type instance struct {
	name    string
	addr    string // host:port it listens on
	logFile string
	cancel  context.CancelFunc
	done    chan struct{}
	code    int
	stdout  *e2etest.SyncBuffer
}

type mainFunc func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int

// run starts main with args and env (all the environment it sees), its log
// (stderr) appended to logFile, and waits (bounded) until it listens. It is
// stopped when the test ends.
func run(t testing.TB, name string, main mainFunc, args []string, env map[string]string, logFile string) *instance {
	t.Helper()
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{name: name, logFile: logFile, cancel: cancel, done: make(chan struct{}), stdout: &e2etest.SyncBuffer{}}
	go func() {
		defer close(in.done)
		defer lf.Close()
		in.code = main(ctx, args, func(k string) string { return env[k] }, in.stdout, lf)
	}()
	t.Cleanup(func() {
		in.stop()
		if in.code != 0 {
			t.Errorf("%s: Main returned %d after its context ended (a graceful stop returns 0)", name, in.code)
		}
		if t.Failed() {
			t.Logf("%s log (%s, tail):\n%s", name, logFile, e2etest.FileTail(logFile, 40))
		}
	})
	addr, err := e2etest.WaitListeningLine(in.stdout, in.done, 30*time.Second)
	if err != nil {
		t.Fatalf("%s %v:\n%s\n%s", name, err, in.stdout, e2etest.FileTail(logFile, 40))
	}
	in.addr = addr
	return in
}

// stop ends the context (as SIGTERM does for the binary) and waits
// (bounded) for Main to return.
func (in *instance) stop() {
	in.cancel()
	select {
	case <-in.done:
	case <-time.After(45 * time.Second):
		panic(in.name + " did not return within 45s of its context ending")
	}
}

// ServerOptions configure an in-process signet-server.
type ServerOptions struct {
	// CA issues the server's certificate; nil makes a new one. With
	// LocalCA the server makes its own CA in its data directory instead.
	CA      *e2etest.CA
	LocalCA bool
	// Listen is the address to listen on (default 127.0.0.1:0); a config
	// file that must name the address needs a fixed one (e2etest.FreeAddr).
	Listen string
	// DataDir defaults to a new temporary directory.
	DataDir string
	// Signer, when set, holds the online keys (--signer with a client
	// certificate from its CA): a Signer of this package or an
	// e2etest.SignerProcess.
	Signer interface {
		ServerFlags(t testing.TB) []string
	}
	// Flags are added after the harness's own (and win over them).
	Flags []string
	// Env is what the server's getenv sees; SIGNET_KEY_PASSPHRASE defaults
	// to a test passphrase.
	Env map[string]string
	// LogLevel defaults to debug (every request is logged).
	LogLevel string
}

// Server is a running in-process signet-server.
type Server struct {
	Host    string // 127.0.0.1:port
	URL     string // https://Host
	CAFile  string // the CA its certificate chains to
	DataDir string
	LogFile string // its JSON log
	Client  *http.Client
	in      *instance
}

// StartServer runs signet-server (servercmd.Main) in a goroutine and waits
// until it listens; it is stopped when the test ends.
func StartServer(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	dir := t.TempDir()
	if o.DataDir == "" {
		o.DataDir = filepath.Join(dir, "data")
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.LogLevel == "" {
		o.LogLevel = "debug"
	}
	env := map[string]string{"SIGNET_KEY_PASSPHRASE": "inproc-test-key-passphrase"}
	for k, v := range o.Env {
		env[k] = v
	}
	args := []string{"--listen", o.Listen, "--data-dir", o.DataDir, "--log-level", o.LogLevel}
	s := &Server{DataDir: o.DataDir, LogFile: filepath.Join(dir, "server.log")}
	if o.LocalCA {
		s.CAFile = filepath.Join(o.DataDir, "tls", "ca.crt")
	} else {
		if o.CA == nil {
			o.CA = e2etest.TestCA(t, filepath.Join(dir, "pki"))
		}
		cert, key := o.CA.MustIssue(t, "signet-server", x509.ExtKeyUsageServerAuth)
		args = append(args, "--tls-cert", cert, "--tls-key", key)
		s.CAFile = o.CA.CAFile
	}
	if o.Signer != nil {
		args = append(args, o.Signer.ServerFlags(t)...)
	}
	args = append(args, o.Flags...)
	s.in = run(t, "signet-server", servercmd.Main, args, env, s.LogFile)
	s.Host = s.in.addr
	s.URL = "https://" + s.Host
	s.Client = e2etest.HTTPSClient(t, s.CAFile)
	if err := e2etest.WaitHTTP(t.Context(), s.Client, s.URL+"/_notary_server/health", e2etest.Status200, s.in.done, 30*time.Second); err != nil {
		t.Fatalf("signet-server: %v", err)
	}
	return s
}

// Log is the server's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.LogFile)
	return string(b)
}

// LogMark is the current end of the server's log, for Requests.
func (s *Server) LogMark() int64 { return e2etest.LogSize(s.LogFile) }

// Requests returns "METHOD PATH STATUS" for every request the server
// logged ("request" lines; successful GETs only at debug level) after log
// offset since.
func (s *Server) Requests(since int64) []string {
	var out []string
	e2etest.ScanLog(s.LogFile, since, func(line []byte) {
		var l struct {
			Msg    string `json:"msg"`
			Method string `json:"method"`
			Path   string `json:"path"`
			Status int    `json:"status"`
		}
		if json.Unmarshal(line, &l) != nil || l.Msg != "request" || l.Method == "" {
			return
		}
		if l.Status == 0 {
			l.Status = http.StatusOK
		}
		out = append(out, fmt.Sprintf("%s %s %d", l.Method, l.Path, l.Status))
	})
	return out
}

// SignerOptions configure an in-process signet-signer.
type SignerOptions struct {
	// CA issues the signer's certificate and the client certificates it
	// accepts; nil makes a new one.
	CA *e2etest.CA
	// DataDir defaults to a new temporary directory.
	DataDir string
	// Alias is the passphrase alias of new keys (default "default"), its
	// passphrase SIGNET_SIGNER_PASSPHRASE_<ALIAS>, a test value unless Env
	// gives it.
	Alias string
	Flags []string
	Env   map[string]string
}

// Signer is a running in-process signet-signer.
type Signer struct {
	Host    string
	URL     string
	CA      *e2etest.CA
	DataDir string
	LogFile string
	in      *instance
}

// StartSigner runs signet-signer (signercmd.Main) in a goroutine and waits
// until it listens; it is stopped when the test ends.
func StartSigner(t testing.TB, o SignerOptions) *Signer {
	t.Helper()
	dir := t.TempDir()
	if o.CA == nil {
		o.CA = e2etest.TestCA(t, filepath.Join(dir, "pki"))
	}
	if o.DataDir == "" {
		o.DataDir = filepath.Join(dir, "data")
	}
	if o.Alias == "" {
		o.Alias = "default"
	}
	env := map[string]string{signercmd.PassphraseEnv(o.Alias): "inproc-test-signer-passphrase"}
	for k, v := range o.Env {
		env[k] = v
	}
	cert, key := o.CA.MustIssue(t, "signet-signer", x509.ExtKeyUsageServerAuth)
	args := append([]string{"--listen", "127.0.0.1:0", "--data-dir", o.DataDir, "--default-alias", o.Alias,
		"--tls-cert", cert, "--tls-key", key, "--client-ca", o.CA.CAFile, "--log-level", "debug"}, o.Flags...)
	s := &Signer{CA: o.CA, DataDir: o.DataDir, LogFile: filepath.Join(dir, "signer.log")}
	s.in = run(t, "signet-signer", signercmd.Main, args, env, s.LogFile)
	s.Host = s.in.addr
	s.URL = "https://" + s.Host
	return s
}

// ServerFlags are the signet-server flags that make it use this signer,
// with a new client certificate from the signer's CA.
func (s *Signer) ServerFlags(t testing.TB) []string {
	t.Helper()
	cert, key := s.CA.MustIssue(t, fmt.Sprintf("signer-client-%d", time.Now().UnixNano()), x509.ExtKeyUsageClientAuth)
	return []string{"--signer", s.URL, "--signer-cert", cert, "--signer-key", key, "--signer-ca", s.CA.CAFile}
}

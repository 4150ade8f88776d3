package e2etest

import (
	"crypto/x509"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// SignerOptions configure a signet-signer subprocess.
type SignerOptions struct {
	// CA issues the signer's certificate and the client certificates it
	// accepts; nil makes a new one.
	CA *CA
	// DataDir defaults to a new temporary directory.
	DataDir string
	// Alias is the passphrase alias of new keys (--default-alias).
	Alias string
	// Env is added to BaseEnv (the passphrases: SIGNET_SIGNER_PASSPHRASE_<ALIAS>).
	Env []string
}

// SignerProcess is a signet-signer subprocess on a fixed 127.0.0.1 port,
// which Restart keeps, so that a server pointed at it finds it again.
type SignerProcess struct {
	Host    string
	URL     string
	CA      *CA
	DataDir string
	LogFile string // appended to by every start
	Proc    *Process
	t       testing.TB
	bin     string
	dir     string
	tls     []string
}

// StartSigner builds (once) and runs signet-signer with mutual TLS from
// the CA, and waits until it listens; it is stopped when the test ends.
func StartSigner(t testing.TB, o SignerOptions) *SignerProcess {
	t.Helper()
	dir := t.TempDir()
	if o.CA == nil {
		o.CA = TestCA(t, filepath.Join(dir, "pki"))
	}
	if o.DataDir == "" {
		o.DataDir = filepath.Join(dir, "data")
	}
	cert, key := o.CA.MustIssue(t, "signet-signer", x509.ExtKeyUsageServerAuth)
	s := &SignerProcess{
		Host: FreeAddr(t), CA: o.CA, DataDir: o.DataDir, LogFile: filepath.Join(dir, "signer.log"),
		t: t, bin: Binary(t, "signet-signer"), dir: dir,
		tls: []string{"--tls-cert", cert, "--tls-key", key, "--client-ca", o.CA.CAFile},
	}
	s.URL = "https://" + s.Host
	s.Restart(o.Alias, o.Env...)
	return s
}

// Restart starts the signer again (after Proc stopped or was killed) on
// the same address and data directory, with default alias and env.
func (s *SignerProcess) Restart(alias string, env ...string) {
	s.t.Helper()
	args := append([]string{s.bin, "--listen", s.Host, "--data-dir", s.DataDir, "--log-level", "debug"}, s.tls...)
	if alias != "" {
		args = append(args, "--default-alias", alias)
	}
	s.Proc = Daemon(s.t, ProcessOptions{Name: "signet-signer", Args: args, Dir: s.dir, Env: append(BaseEnv(s.dir), env...), LogFile: s.LogFile})
	if err := WaitListening(s.t.Context(), s.Host, s.Proc.Done(), 15*time.Second); err != nil {
		s.t.Fatalf("signet-signer did not start: %v\n%s", err, s.Proc.LogTail(30))
	}
}

// Bin is the signet-signer binary (for its other commands, such as rekey).
func (s *SignerProcess) Bin() string { return s.bin }

// ServerFlags are the signet-server flags that make it use this signer,
// with a new client certificate from the signer's CA.
func (s *SignerProcess) ServerFlags(t testing.TB) []string {
	t.Helper()
	cert, key := s.CA.MustIssue(t, fmt.Sprintf("signer-client-%d", time.Now().UnixNano()), x509.ExtKeyUsageClientAuth)
	return []string{"--signer", s.URL, "--signer-cert", cert, "--signer-key", key, "--signer-ca", s.CA.CAFile}
}

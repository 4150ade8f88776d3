package notifytest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SMTPOptions configures an SMTP sink.
type SMTPOptions struct {
	// Users are the AUTH PLAIN credentials the sink accepts (letters and
	// digits only); when set, mail is accepted only after AUTH, and AUTH is
	// offered only over TLS.
	Users map[string]string
	// NoTLS makes the sink not offer STARTTLS.
	NoTLS bool
}

// SMTPSink is a running exim4 that accepts mail for any address on
// 127.0.0.1 and appends it to one mbox file.
type SMTPSink struct {
	// Addr is 127.0.0.1:PORT.
	Addr string
	// CAFile and CAPEM hold the CA the sink's certificate (for 127.0.0.1)
	// chains to; RootCAs is a pool of it.
	CAFile  string
	CAPEM   []byte
	RootCAs *x509.CertPool

	dir  string
	cmd  *exec.Cmd
	done chan error
}

// requireComponent fails the test when SIGNET_TEST_REQUIRE asks for the
// component (all, exim4 or smtp) and skips it otherwise.
func requireComponent(tb testing.TB, msg string) {
	tb.Helper()
	for _, f := range strings.FieldsFunc(os.Getenv("SIGNET_TEST_REQUIRE"), func(r rune) bool { return r == ',' || r == ' ' }) {
		if f == "all" || f == "exim4" || f == "smtp" {
			tb.Fatalf("%s (SIGNET_TEST_REQUIRE=%q makes this an error; scripts/test-deps.sh installs exim4-daemon-light)", msg, os.Getenv("SIGNET_TEST_REQUIRE"))
		}
	}
	tb.Skipf("%s (set SIGNET_TEST_REQUIRE=all to fail instead; scripts/test-deps.sh installs exim4-daemon-light)", msg)
}

func eximBinary() (string, error) {
	for _, name := range []string{"exim4", "exim"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
			if p := filepath.Join(dir, name); isExecutable(p) {
				return p, nil
			}
		}
	}
	return "", errors.New("exim4 not found on PATH or in /usr/sbin")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// StartSMTPSink runs exim4 until the test ends. The sink is Debian's real
// MTA (exim4-daemon-light) on a temporary configuration: it listens on
// 127.0.0.1 on a free port, offers STARTTLS with a certificate of a fresh
// test CA, checks AUTH PLAIN, and delivers every message to one mbox.
func StartSMTPSink(tb testing.TB, opts SMTPOptions) *SMTPSink {
	tb.Helper()
	bin, err := eximBinary()
	if err != nil {
		requireComponent(tb, err.Error())
	}
	for u, p := range opts.Users {
		if !alnum(u) || !alnum(p) {
			tb.Fatalf("notifytest: SMTP user %q: names and passwords are letters and digits only", u)
		}
	}
	dir, err := os.MkdirTemp("", "signet-smtp-sink-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	s := &SMTPSink{dir: dir}
	s.writeTLS(tb)
	for _, d := range []string{"spool", "log", "mail"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	var passwd strings.Builder
	for u, p := range opts.Users {
		fmt.Fprintf(&passwd, "%s: %s\n", u, p)
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(passwd.String()), 0o600); err != nil {
		tb.Fatal(err)
	}

	// With a configuration of its own (-C), exim gives up root and runs as
	// its own user when started by root, or as the caller otherwise; the
	// files it uses must be that user's.
	conf := filepath.Join(dir, "exim.conf")
	if err := os.WriteFile(conf, []byte(s.config(opts, 0, "root")), 0o644); err != nil {
		tb.Fatal(err)
	}
	runAs, uid, gid := eximUser(tb, bin, conf)
	if os.Geteuid() == 0 {
		if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil || p == conf { // exim wants its configuration root's
				return err
			}
			return os.Lchown(p, uid, gid)
		}); err != nil {
			tb.Fatal(err)
		}
	}

	var lastErr error
	for range 5 { // a free port may be taken between probing and exim's bind
		port := freePort(tb)
		if err := os.WriteFile(conf, []byte(s.config(opts, port, runAs)), 0o644); err != nil {
			tb.Fatal(err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = s.start(bin, conf); lastErr == nil {
			tb.Cleanup(s.stop)
			return s
		}
	}
	tb.Fatalf("notifytest: exim4 did not start: %v\n%s", lastErr, s.Log())
	return nil
}

func alnum(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == ""
}

func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// eximUser is the user exim's daemon runs as under a -C configuration.
func eximUser(tb testing.TB, bin, conf string) (name string, uid, gid int) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			tb.Fatal(err)
		}
		return u.Username, os.Geteuid(), os.Getegid()
	}
	out, err := exec.Command(bin, "-C", conf, "-bP", "exim_user").CombinedOutput()
	if err != nil {
		tb.Fatalf("notifytest: exim4 -bP exim_user: %v\n%s", err, out)
	}
	_, name, _ = strings.Cut(strings.TrimSpace(string(out)), "= ")
	u, err := user.Lookup(name)
	if err != nil {
		tb.Fatalf("notifytest: exim user %q: %v", name, err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return name, uid, gid
}

func (s *SMTPSink) config(opts SMTPOptions, port int, runAs string) string {
	p := func(name string) string { return filepath.Join(s.dir, name) }
	tlsHosts := "*"
	if opts.NoTLS {
		tlsHosts = ""
	}
	mailACL := "  accept\n"
	if len(opts.Users) > 0 {
		mailACL = "  deny message = authentication required\n       !authenticated = *\n  accept\n"
	}
	return fmt.Sprintf(`# signet test SMTP sink (notifytest)
keep_environment =
primary_hostname = sink.signet.test
qualify_domain = signet.test
spool_directory = %s
log_file_path = %s/%%slog
pid_file_path = %s
local_interfaces = <; 127.0.0.1
daemon_smtp_ports = %d
rfc1413_query_timeout = 0s
message_size_limit = 10M
tls_advertise_hosts = %s
tls_certificate = %s
tls_privatekey = %s
auth_advertise_hosts = ${if eq{$tls_in_cipher}{}{}{*}}
acl_smtp_mail = acl_mail
acl_smtp_rcpt = acl_rcpt

begin acl
acl_mail:
%sacl_rcpt:
  accept

begin routers
everyone:
  driver = accept
  transport = mbox

begin transports
mbox:
  driver = appendfile
  file = %s
  user = %s
  mode = 0644
  envelope_to_add
  return_path_add

begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if eq{$auth3}{${lookup{$auth2}lsearch{%s}{$value}{*no*}}}}
  server_set_id = $auth2
`, p("spool"), p("log"), p("exim.pid"), port, tlsHosts, p("cert.pem"), p("key.pem"), mailACL,
		p("mail/mbox"), runAs, p("passwd"))
}

func (s *SMTPSink) start(bin, conf string) error {
	cmd := exec.Command(bin, "-C", conf, "-bdf")
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.done = cmd, make(chan error, 1)
	go func() { s.done <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			return fmt.Errorf("exim4 exited: %v: %s", err, out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "220 ") {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop()
	return errors.New("exim4 did not answer within 15 s")
}

// stop ends the daemon and the deliveries it forked (its process group).
func (s *SMTPSink) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
}

// Log returns exim's main and panic logs, for failure messages.
func (s *SMTPSink) Log() string {
	var b strings.Builder
	for _, f := range []string{"mainlog", "paniclog", "rejectlog"} {
		if data, err := os.ReadFile(filepath.Join(s.dir, "log", f)); err == nil {
			fmt.Fprintf(&b, "--- %s\n%s", f, data)
		}
	}
	return b.String()
}

// Messages returns the delivered messages in order, each as stored (mbox
// "From " line removed, LF line ends).
func (s *SMTPSink) Messages() ([]string, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, "mail", "mbox"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var msgs []string
	var cur []string
	flush := func() {
		if cur != nil {
			msgs = append(msgs, strings.Join(cur, "\n"))
		}
	}
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, "From ") && (i == 0 || lines[i-1] == "") {
			flush()
			cur = []string{}
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return msgs, nil
}

// WaitMessages waits up to timeout for at least n delivered messages and
// returns them all.
func (s *SMTPSink) WaitMessages(tb testing.TB, n int, timeout time.Duration) []string {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := s.Messages()
		if err != nil {
			tb.Fatal(err)
		}
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			tb.Fatalf("notifytest: %d messages delivered after %s, want %d\n%s", len(msgs), timeout, n, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeTLS makes a test CA and a certificate for 127.0.0.1 signed by it.
func (s *SMTPSink) writeTLS(tb testing.TB) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "signet test SMTP CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		tb.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, key.Public(), caKey)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	s.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	s.CAFile = filepath.Join(s.dir, "ca.pem")
	s.RootCAs = x509.NewCertPool()
	s.RootCAs.AddCert(ca)
	for name, data := range map[string][]byte{
		"ca.pem":   s.CAPEM,
		"cert.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		"key.pem":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(filepath.Join(s.dir, name), data, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

// Package pkcs11test gives tests a SoftHSM2 token of their own: a
// softhsm2.conf whose token directory is under t.TempDir(), and a token
// initialised in it with softhsm2-util. It needs no cgo; the code under
// test loads the module.
//
// When SoftHSM2 (the module or softhsm2-util) is missing the test is
// skipped, unless SIGNET_TEST_REQUIRE contains "all" or "pkcs11", in which
// case it fails: CI never skips silently (scripts/test-deps.sh installs
// Debian's softhsm2).
package pkcs11test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

// ModuleCandidates are where Debian and others install SoftHSM2's module;
// SIGNET_SOFTHSM_MODULE overrides them.
var ModuleCandidates = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
}

// Required reports whether SIGNET_TEST_REQUIRE asks for PKCS#11 tests
// ("all" or "pkcs11", comma or space separated).
func Required() bool { return e2etest.Required("pkcs11") }

// Module returns the SoftHSM2 module path, skipping (or failing, see
// Required) the test when there is none.
func Module(t testing.TB) string {
	t.Helper()
	cands := ModuleCandidates
	if m := os.Getenv("SIGNET_SOFTHSM_MODULE"); m != "" {
		cands = []string{m}
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	missing(t, "SoftHSM2 module not found (looked at %s)", strings.Join(cands, ", "))
	return ""
}

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	e2etest.Missing(t, "pkcs11", format, args...)
}

// SoftHSM is a SoftHSM2 configuration private to one test.
type SoftHSM struct {
	Module string // the module (library) path
	Conf   string // the softhsm2.conf file; SOFTHSM2_CONF must point at it
	Dir    string // the token directory
}

// Token is an initialised token.
type Token struct {
	Label  string
	Serial string
	PIN    string
	SOPIN  string
}

// New writes a softhsm2.conf with its token directory in t.TempDir(). It
// does not touch the process environment: call Setenv for in-process use,
// or pass Env to child processes.
func New(t testing.TB) *SoftHSM {
	t.Helper()
	module := Module(t)
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		missing(t, "softhsm2-util not found on PATH")
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return &SoftHSM{Module: module, Conf: conf, Dir: tokens}
}

// Env is the environment child processes need: the configuration, and
// when SIGNET_SOFTHSM_MODULE chose a module outside the usual places, the
// client's allow-list (SIGNET_PKCS11_MODULES) naming it.
func (s *SoftHSM) Env() []string {
	env := []string{"SOFTHSM2_CONF=" + s.Conf}
	if os.Getenv("SIGNET_SOFTHSM_MODULE") != "" {
		env = append(env, "SIGNET_PKCS11_MODULES="+s.Module)
	}
	return env
}

// Setenv points this process's SoftHSM2 at the configuration for the rest
// of the test (so the test cannot be parallel).
func (s *SoftHSM) Setenv(t testing.TB) {
	t.Helper()
	if st, ok := t.(interface{ Setenv(string, string) }); ok {
		st.Setenv("SOFTHSM2_CONF", s.Conf)
		return
	}
	t.Fatalf("pkcs11test: %T cannot set the environment", t)
}

var serialRE = regexp.MustCompile(`(?m)Serial number:\s*(\S+)`)

// InitToken initialises a token with the given label and a random user
// PIN and SO PIN (softhsm2-util --init-token --free).
func (s *SoftHSM) InitToken(t testing.TB, label string) Token {
	t.Helper()
	tok := Token{Label: label, PIN: randomPIN(t), SOPIN: randomPIN(t)}
	s.util(t, "--init-token", "--free", "--label", label, "--so-pin", tok.SOPIN, "--pin", tok.PIN)
	out := s.util(t, "--show-slots")
	// Find the serial of the slot whose label is ours.
	for _, block := range strings.Split(out, "Slot ") {
		if labelMatches(block, label) {
			if m := serialRE.FindStringSubmatch(block); m != nil {
				tok.Serial = m[1]
			}
		}
	}
	if tok.Serial == "" {
		t.Fatalf("softhsm2-util --show-slots shows no token labelled %q:\n%s", label, out)
	}
	return tok
}

func labelMatches(block, label string) bool {
	for _, line := range strings.Split(block, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Label:"); ok && strings.TrimSpace(v) == label {
			return true
		}
	}
	return false
}

func (s *SoftHSM) util(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("softhsm2-util", args...)
	cmd.Env = append(os.Environ(), s.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func randomPIN(t testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

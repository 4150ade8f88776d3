package signer

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	aliasOld = "first"
	aliasNew = "second"
	passOld  = "e2e signer passphrase one"
	passNew  = "e2e signer passphrase two"
)

// stack is a signet-signer and a signet-server using it.
type stack struct {
	t         *testing.T
	dir       string
	pki       *testPKI
	signerBin string
	signerDir string // the signer's data directory
	signerAt  string // 127.0.0.1:port
	signerTLS []string
	signer    *daemon
	server    *daemon
	serverURL string
	serverLog string
	web       *http.Client
}

func startStack(t *testing.T) *stack {
	t.Helper()
	need(t, "notary")
	s := &stack{t: t, dir: t.TempDir(), signerBin: binary(t, "signet-signer", "SIGNET_SIGNER_BIN")}
	s.pki = newPKI(t, s.dir, "signet-test")
	sCert, sKey := s.pki.issue(t, "signer", x509.ExtKeyUsageServerAuth)
	s.signerTLS = []string{"--tls-cert", sCert, "--tls-key", sKey, "--client-ca", s.pki.caFile}
	s.signerDir = filepath.Join(s.dir, "signer-data")
	s.signerAt = freeAddr(t)
	s.startSigner(aliasOld, "SIGNET_SIGNER_PASSPHRASE_FIRST="+passOld)

	srvCert, srvKey := s.pki.issue(t, "server", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := s.pki.issue(t, "server-client", x509.ExtKeyUsageClientAuth)
	addr := freeAddr(t)
	s.serverURL = "https://" + addr
	s.serverLog = filepath.Join(s.dir, "server.log")
	args := []string{
		binary(t, "signet-server", "SIGNET_SERVER_BIN"),
		"--listen", addr, "--data-dir", filepath.Join(s.dir, "server-data"),
		"--tls-cert", srvCert, "--tls-key", srvKey,
		"--signer", "https://" + s.signerAt,
		"--signer-cert", cliCert, "--signer-key", cliKey, "--signer-ca", s.pki.caFile,
		"--signer-timeout", "3s",
		"--log-level", "debug",
	}
	s.server = startDaemon(t, "signet-server", s.dir, s.serverLog, nil, args...)
	s.web = httpsClient(t, s.pki.caFile)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := s.web.Get(s.serverURL + "/_notary_server/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("signet-server not healthy: %v\n--- server log ---\n%s\n--- signer log ---\n%s", err, fileTail(s.serverLog, 30), fileTail(s.signer.logFile, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s
}

// startSigner starts signet-signer on s.signerAt with default alias and
// the given environment.
func (s *stack) startSigner(alias string, env ...string) {
	s.t.Helper()
	args := append([]string{s.signerBin, "--listen", s.signerAt, "--data-dir", s.signerDir, "--default-alias", alias, "--log-level", "debug"}, s.signerTLS...)
	s.signer = startDaemon(s.t, "signet-signer", s.dir, filepath.Join(s.dir, "signer.log"), env, args...)
	if err := waitListening(s.signerAt, s.signer, 15*time.Second); err != nil {
		s.t.Fatalf("signet-signer did not start: %v\n%s", err, fileTail(s.signer.logFile, 30))
	}
}

// notary runs the notary CLI with its own trust directory.
type notary struct {
	s        *stack
	trustDir string
	cmd      command
}

func (s *stack) notary(name string) *notary {
	home := filepath.Join(s.dir, "home-"+name)
	if err := os.MkdirAll(home, 0o700); err != nil {
		s.t.Fatal(err)
	}
	env := append(baseEnv(home),
		"NOTARY_ROOT_PASSPHRASE=e2e-root", "NOTARY_TARGETS_PASSPHRASE=e2e-targets",
		"NOTARY_SNAPSHOT_PASSPHRASE=e2e-snapshot", "NOTARY_DELEGATION_PASSPHRASE=e2e-delegation")
	return &notary{s: s, trustDir: filepath.Join(home, "trust"), cmd: command{env: env, dir: home}}
}

func (n *notary) args(a []string) []string {
	return append([]string{"notary", "-s", n.s.serverURL, "--tlscacert", n.s.pki.caFile, "-d", n.trustDir}, a...)
}

func (n *notary) ok(a ...string) *cmdResult {
	n.s.t.Helper()
	r := n.cmd.run(n.s.t, n.args(a)...)
	if !r.ok() {
		n.s.t.Fatalf("command failed:\n%s\n--- server log ---\n%s\n--- signer log ---\n%s", r, fileTail(n.s.serverLog, 20), fileTail(n.s.signer.logFile, 20))
	}
	return r
}

func (n *notary) fail(a ...string) *cmdResult {
	n.s.t.Helper()
	return n.cmd.mustFail(n.s.t, n.args(a)...)
}

// targets returns the target names `notary list` prints.
func (n *notary) targets(gun string) []string {
	n.s.t.Helper()
	r := n.ok("list", gun)
	var names []string
	for _, line := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] != "NAME" && !strings.HasPrefix(f[0], "-") {
			names = append(names, f[0])
		}
	}
	slices.Sort(names)
	return names
}

// state is the server's current metadata of a GUN: role → version.
func (s *stack) state(gun string) map[string]string {
	s.t.Helper()
	out := map[string]string{}
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		code, _, body := get(s.t, s.web, s.serverURL+"/v2/"+gun+"/_trust/tuf/"+role+".json")
		if code != http.StatusOK {
			out[role] = fmt.Sprint("status ", code)
			continue
		}
		var m struct {
			Signed struct{ Version int } `json:"signed"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			s.t.Fatalf("%s of %s: %v", role, gun, err)
		}
		out[role] = fmt.Sprintf("v%d %x", m.Signed.Version, sha256.Sum256(body))
	}
	return out
}

func (s *stack) count(req string) int {
	n := 0
	for _, r := range requests(s.serverLog) {
		if r == req {
			n++
		}
	}
	return n
}

func writePayload(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRemoteSigner: publish, rotate timestamp and snapshot keys to the
// server, and rekey the signer's passphrase, all with the online keys in
// signet-signer.
func TestRemoteSigner(t *testing.T) {
	s := startStack(t)
	gun := "example.com/e2e/remote-signer"
	owner := s.notary("owner")
	payload := writePayload(t, s.dir, "payload.txt", "signet e2e signer payload\n")

	owner.ok("init", gun)
	owner.ok("add", gun, "v1", payload)
	owner.ok("publish", gun)
	if got := owner.targets(gun); !slices.Equal(got, []string{"v1"}) {
		t.Fatalf("targets after the first publish: %v", got)
	}
	// The server never opened a key store of its own.
	if _, err := os.Stat(filepath.Join(s.dir, "server-data", "key-passphrase")); !os.IsNotExist(err) {
		t.Fatalf("signet-server made a key passphrase file with --signer (%v)", err)
	}

	// Timestamp and snapshot keys rotated to new keys held by the signer.
	r := owner.ok("key", "rotate", gun, "timestamp", "-r")
	if !strings.Contains(r.stdout, "Successfully rotated timestamp key for repository "+gun) {
		t.Fatalf("rotate timestamp:\n%s", r)
	}
	r = owner.ok("key", "rotate", gun, "snapshot", "-r")
	if !strings.Contains(r.stdout, "Successfully rotated snapshot key for repository "+gun) {
		t.Fatalf("rotate snapshot:\n%s", r)
	}
	owner.ok("add", gun, "v2", payload)
	owner.ok("publish", gun) // the server signs snapshot and timestamp
	// A client that trusts on first use verifies the whole chain.
	fresh := s.notary("fresh")
	if got := fresh.targets(gun); !slices.Equal(got, []string{"v1", "v2"}) {
		t.Fatalf("targets seen by a fresh client: %v", got)
	}

	// Rekey while the signer serves: a second process on the same database.
	// The serving signer is given the new passphrase first (restart).
	s.signer.stop(t)
	s.startSigner(aliasOld, "SIGNET_SIGNER_PASSPHRASE_FIRST="+passOld, "SIGNET_SIGNER_PASSPHRASE_SECOND="+passNew)
	owner.ok("add", gun, "v3", payload)
	owner.ok("publish", gun)
	rk := command{env: append(baseEnv(s.dir), "SIGNET_SIGNER_PASSPHRASE_FIRST="+passOld, "SIGNET_SIGNER_PASSPHRASE_SECOND="+passNew), dir: s.dir}
	r = rk.mustOK(t, s.signerBin, "rekey", "--to", aliasNew, "--data-dir", s.signerDir)
	if !strings.Contains(r.stdout, "key(s) re-wrapped under alias \"second\"") || strings.Contains(r.stdout, " 0 key(s)") {
		t.Fatalf("rekey:\n%s", r)
	}
	owner.ok("add", gun, "v4", payload)
	owner.ok("publish", gun) // the running signer, during and after the rekey
	// A signer with only the new passphrase holds every key.
	s.signer.stop(t)
	s.startSigner(aliasNew, "SIGNET_SIGNER_PASSPHRASE_SECOND="+passNew)
	owner.ok("add", gun, "v5", payload)
	owner.ok("publish", gun)
	if got := fresh.targets(gun); !slices.Equal(got, []string{"v1", "v2", "v3", "v4", "v5"}) {
		t.Fatalf("targets after rekey: %v", got)
	}
	// A rekey to an alias whose passphrase is not set is refused by name.
	r = rk.mustFail(t, s.signerBin, "rekey", "--to", "third", "--data-dir", s.signerDir)
	if !strings.Contains(r.stderr, "SIGNET_SIGNER_PASSPHRASE_THIRD") {
		t.Fatalf("rekey to an alias without a passphrase:\n%s", r)
	}
}

// TestSignerDown: with the signer killed, publishes and key requests answer
// 503 with Retry-After and change nothing; reads go on; once the signer is
// back the same server process publishes again.
func TestSignerDown(t *testing.T) {
	s := startStack(t)
	gun := "example.com/e2e/signer-down"
	owner := s.notary("owner")
	payload := writePayload(t, s.dir, "payload.txt", "signet e2e signer-down payload\n")
	owner.ok("init", gun)
	owner.ok("add", gun, "v1", payload)
	owner.ok("publish", gun)
	owner.ok("key", "rotate", gun, "snapshot", "-r") // the server signs snapshots too
	before := s.state(gun)

	s.signer.kill()
	owner.ok("add", gun, "v2", payload)
	failed503 := s.count("POST /v2/" + gun + "/_trust/tuf/ 503")
	start := time.Now()
	r := owner.fail("publish", gun)
	if d := time.Since(start); d > 60*time.Second {
		t.Fatalf("publish against a dead signer took %v", d)
	}
	if got := s.count("POST /v2/" + gun + "/_trust/tuf/ 503"); got <= failed503 {
		t.Fatalf("the failed publish was not answered 503; server requests:\n%s\nnotary:\n%s",
			strings.Join(requests(s.serverLog), "\n"), r)
	}
	if after := s.state(gun); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a failed publish changed the repository:\nbefore %v\nafter  %v", before, after)
	}
	// Reads need no signer.
	if got := owner.targets(gun); !slices.Equal(got, []string{"v1"}) {
		t.Fatalf("targets while the signer is down: %v", got)
	}
	// A key request for a new repository: 503, Retry-After, a clear error.
	code, hdr, body := get(t, s.web, s.serverURL+"/v2/example.com/e2e/new/_trust/tuf/timestamp.key")
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(string(body), "UNAVAILABLE") {
		t.Fatalf("GET timestamp.key with the signer down: %d %v %s", code, hdr, body)
	}
	code, _, body = get(t, s.web, s.serverURL+"/_notary_server/health")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "Trust operational") {
		t.Fatalf("health with the signer down: %d %s", code, body)
	}

	// The signer comes back on the same address; the server recovers alone.
	s.startSigner(aliasOld, "SIGNET_SIGNER_PASSPHRASE_FIRST="+passOld)
	owner.ok("publish", gun) // the change staged before is still pending
	if got := owner.targets(gun); !slices.Equal(got, []string{"v1", "v2"}) {
		t.Fatalf("targets after the signer came back: %v", got)
	}
	code, _, _ = get(t, s.web, s.serverURL+"/_notary_server/health")
	if code != http.StatusOK {
		t.Fatalf("health after the signer came back: %d", code)
	}
	owner.ok("key", "rotate", gun, "timestamp", "-r")
	owner.ok("add", gun, "v3", payload)
	owner.ok("publish", gun)
	if got := s.notary("fresh").targets(gun); !slices.Equal(got, []string{"v1", "v2", "v3"}) {
		t.Fatalf("targets seen by a fresh client: %v", got)
	}
}

// TestSignerStalled: a signer that accepts connections but does not answer
// (SIGSTOP) costs a publish the server's --signer-timeout, not a hang: 503,
// nothing changed, and publishes work again once it resumes.
func TestSignerStalled(t *testing.T) {
	s := startStack(t)
	gun := "example.com/e2e/signer-stalled"
	owner := s.notary("owner")
	payload := writePayload(t, s.dir, "payload.txt", "signet e2e signer-stalled payload\n")
	owner.ok("init", gun)
	owner.ok("add", gun, "v1", payload)
	owner.ok("publish", gun)
	before := s.state(gun)

	if err := s.signer.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = s.signer.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer resume()
	owner.ok("add", gun, "v2", payload)
	start := time.Now()
	owner.fail("publish", gun)
	elapsed := time.Since(start)
	if elapsed > 45*time.Second {
		t.Fatalf("publish against a stalled signer took %v (signer timeout 3s)", elapsed)
	}
	if s.count("POST /v2/"+gun+"/_trust/tuf/ 503") == 0 {
		t.Fatalf("no 503 for the publish; server requests:\n%s", strings.Join(requests(s.serverLog), "\n"))
	}
	if after := s.state(gun); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a failed publish changed the repository:\nbefore %v\nafter  %v", before, after)
	}
	t.Logf("publish against a stalled signer failed after %v", elapsed.Round(time.Millisecond))

	resume()
	owner.ok("publish", gun)
	if got := owner.targets(gun); !slices.Equal(got, []string{"v1", "v2"}) {
		t.Fatalf("targets after the signer resumed: %v", got)
	}
}

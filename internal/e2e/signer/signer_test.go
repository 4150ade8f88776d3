package signer

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/inproc"
)

const (
	aliasOld = "first"
	aliasNew = "second"
	passOld  = "e2e signer passphrase one"
	passNew  = "e2e signer passphrase two"
)

// stack is a signet-signer subprocess (the tests kill and stop it) and a
// signet-server using it, in the test process.
type stack struct {
	t      *testing.T
	dir    string
	signer *e2etest.SignerProcess
	server *inproc.Server
}

func startStack(t *testing.T) *stack {
	t.Helper()
	e2etest.Need(t, "notary")
	s := &stack{t: t, dir: t.TempDir()}
	s.signer = e2etest.StartSigner(t, e2etest.SignerOptions{Alias: aliasOld, Env: []string{"SIGNET_SIGNER_PASSPHRASE_FIRST=" + passOld}})
	s.server = inproc.StartServer(t, inproc.ServerOptions{CA: s.signer.CA, Signer: s.signer, Flags: []string{"--signer-timeout", "3s"}})
	return s
}

// startSigner starts signet-signer again on its address and data
// directory with default alias and the given environment.
func (s *stack) startSigner(alias string, env ...string) {
	s.t.Helper()
	s.signer.Restart(alias, env...)
}

// notary runs the notary CLI with its own trust directory.
type notary struct {
	s        *stack
	trustDir string
	cmd      e2etest.Command
}

func (s *stack) notary(name string) *notary {
	home := filepath.Join(s.dir, "home-"+name)
	if err := os.MkdirAll(home, 0o700); err != nil {
		s.t.Fatal(err)
	}
	env := append(e2etest.BaseEnv(home),
		"NOTARY_ROOT_PASSPHRASE=e2e-root", "NOTARY_TARGETS_PASSPHRASE=e2e-targets",
		"NOTARY_SNAPSHOT_PASSPHRASE=e2e-snapshot", "NOTARY_DELEGATION_PASSPHRASE=e2e-delegation")
	return &notary{s: s, trustDir: filepath.Join(home, "trust"), cmd: e2etest.Command{Env: env, Dir: home}}
}

func (n *notary) args(a []string) []string {
	return append([]string{"notary", "-s", n.s.server.URL, "--tlscacert", n.s.server.CAFile, "-d", n.trustDir}, a...)
}

func (n *notary) ok(a ...string) *e2etest.Result {
	n.s.t.Helper()
	return n.cmd.OK(n.s.t, n.args(a)...)
}

func (n *notary) fail(a ...string) *e2etest.Result {
	n.s.t.Helper()
	return n.cmd.Fail(n.s.t, n.args(a)...)
}

// targets returns the target names `notary list` prints.
func (n *notary) targets(gun string) []string {
	n.s.t.Helper()
	r := n.ok("list", gun)
	var names []string
	for _, line := range strings.Split(r.Stdout, "\n") {
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
		code, _, body := s.get("/v2/" + gun + "/_trust/tuf/" + role + ".json")
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

// get fetches path from the server.
func (s *stack) get(path string) (int, http.Header, []byte) {
	s.t.Helper()
	resp, err := s.server.Client.Get(s.server.URL + path)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, resp.Header, body
}

func (s *stack) count(req string) int {
	n := 0
	for _, r := range s.server.Requests(0) {
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
	t.Parallel()
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
	if _, err := os.Stat(filepath.Join(s.server.DataDir, "key-passphrase")); !os.IsNotExist(err) {
		t.Fatalf("signet-server made a key passphrase file with --signer (%v)", err)
	}

	// Timestamp and snapshot keys rotated to new keys held by the signer.
	r := owner.ok("key", "rotate", gun, "timestamp", "-r")
	if !strings.Contains(r.Stdout, "Successfully rotated timestamp key for repository "+gun) {
		t.Fatalf("rotate timestamp:\n%s", r)
	}
	r = owner.ok("key", "rotate", gun, "snapshot", "-r")
	if !strings.Contains(r.Stdout, "Successfully rotated snapshot key for repository "+gun) {
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
	s.signer.Proc.Stop(5 * time.Second)
	s.startSigner(aliasOld, "SIGNET_SIGNER_PASSPHRASE_FIRST="+passOld, "SIGNET_SIGNER_PASSPHRASE_SECOND="+passNew)
	owner.ok("add", gun, "v3", payload)
	owner.ok("publish", gun)
	rk := e2etest.Command{Env: append(e2etest.BaseEnv(s.dir), "SIGNET_SIGNER_PASSPHRASE_FIRST="+passOld, "SIGNET_SIGNER_PASSPHRASE_SECOND="+passNew), Dir: s.dir}
	r = rk.OK(t, s.signer.Bin(), "rekey", "--to", aliasNew, "--data-dir", s.signer.DataDir)
	if !strings.Contains(r.Stdout, "key(s) re-wrapped under alias \"second\"") || strings.Contains(r.Stdout, " 0 key(s)") {
		t.Fatalf("rekey:\n%s", r)
	}
	owner.ok("add", gun, "v4", payload)
	owner.ok("publish", gun) // the running signer, during and after the rekey
	// A signer with only the new passphrase holds every key.
	s.signer.Proc.Stop(5 * time.Second)
	s.startSigner(aliasNew, "SIGNET_SIGNER_PASSPHRASE_SECOND="+passNew)
	owner.ok("add", gun, "v5", payload)
	owner.ok("publish", gun)
	if got := fresh.targets(gun); !slices.Equal(got, []string{"v1", "v2", "v3", "v4", "v5"}) {
		t.Fatalf("targets after rekey: %v", got)
	}
	// A rekey to an alias whose passphrase is not set is refused by name.
	r = rk.Fail(t, s.signer.Bin(), "rekey", "--to", "third", "--data-dir", s.signer.DataDir)
	if !strings.Contains(r.Stderr, "SIGNET_SIGNER_PASSPHRASE_THIRD") {
		t.Fatalf("rekey to an alias without a passphrase:\n%s", r)
	}
}

// TestSignerDown: with the signer killed, publishes and key requests answer
// 503 with Retry-After and change nothing; reads go on; once the signer is
// back the same server process publishes again.
func TestSignerDown(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	gun := "example.com/e2e/signer-down"
	owner := s.notary("owner")
	payload := writePayload(t, s.dir, "payload.txt", "signet e2e signer-down payload\n")
	owner.ok("init", gun)
	owner.ok("add", gun, "v1", payload)
	owner.ok("publish", gun)
	owner.ok("key", "rotate", gun, "snapshot", "-r") // the server signs snapshots too
	before := s.state(gun)

	s.signer.Proc.Kill()
	owner.ok("add", gun, "v2", payload)
	failed503 := s.count("POST /v2/" + gun + "/_trust/tuf/ 503")
	start := time.Now()
	r := owner.fail("publish", gun)
	if d := time.Since(start); d > 60*time.Second {
		t.Fatalf("publish against a dead signer took %v", d)
	}
	if got := s.count("POST /v2/" + gun + "/_trust/tuf/ 503"); got <= failed503 {
		t.Fatalf("the failed publish was not answered 503; server requests:\n%s\nnotary:\n%s",
			strings.Join(s.server.Requests(0), "\n"), r)
	}
	if after := s.state(gun); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a failed publish changed the repository:\nbefore %v\nafter  %v", before, after)
	}
	// Reads need no signer.
	if got := owner.targets(gun); !slices.Equal(got, []string{"v1"}) {
		t.Fatalf("targets while the signer is down: %v", got)
	}
	// A key request for a new repository: 503, Retry-After, a clear error.
	code, hdr, body := s.get("/v2/example.com/e2e/new/_trust/tuf/timestamp.key")
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(string(body), "UNAVAILABLE") {
		t.Fatalf("GET timestamp.key with the signer down: %d %v %s", code, hdr, body)
	}
	code, _, body = s.get("/_notary_server/health")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "Trust operational") {
		t.Fatalf("health with the signer down: %d %s", code, body)
	}

	// The signer comes back on the same address; the server recovers alone.
	s.startSigner(aliasOld, "SIGNET_SIGNER_PASSPHRASE_FIRST="+passOld)
	owner.ok("publish", gun) // the change staged before is still pending
	if got := owner.targets(gun); !slices.Equal(got, []string{"v1", "v2"}) {
		t.Fatalf("targets after the signer came back: %v", got)
	}
	code, _, _ = s.get("/_notary_server/health")
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
	t.Parallel()
	s := startStack(t)
	gun := "example.com/e2e/signer-stalled"
	owner := s.notary("owner")
	payload := writePayload(t, s.dir, "payload.txt", "signet e2e signer-stalled payload\n")
	owner.ok("init", gun)
	owner.ok("add", gun, "v1", payload)
	owner.ok("publish", gun)
	before := s.state(gun)

	if err := s.signer.Proc.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = s.signer.Proc.Cmd.Process.Signal(syscall.SIGCONT)
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
		t.Fatalf("no 503 for the publish; server requests:\n%s", strings.Join(s.server.Requests(0), "\n"))
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

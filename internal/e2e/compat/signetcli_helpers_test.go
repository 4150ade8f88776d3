package compat

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

// The signet client (./cmd/signet) is driven exactly like the notary CLI:
// the same global flags (-s, --tlscacert, -d), the same NOTARY_*_PASSPHRASE
// variables, the same trust directories. cliClient runs either program, so
// that a scenario can hand one trust directory from one tool to the other.

// signetCLIBinary is ./cmd/signet built for the tests (or SIGNET_CLI_BIN).
func signetCLIBinary(t *testing.T) string { return e2etest.Binary(t, "signet") }

// cliClient runs `notary` or `signet` on one trust directory against the
// target, with the CA given on the command line (no config file).
type cliClient struct {
	e        *scenarioEnv
	tool     string // "notary" or "signet", for messages
	bin      string
	trustDir string
	cmd      command
	noCA     bool // leave out --tlscacert
}

// notaryPassphrases are the NOTARY_*_PASSPHRASE variables of e.notary.
func notaryPassphrases() []string {
	return []string{
		"NOTARY_ROOT_PASSPHRASE=" + rootPass,
		"NOTARY_TARGETS_PASSPHRASE=" + targetsPass,
		"NOTARY_SNAPSHOT_PASSPHRASE=" + snapshotPass,
		"NOTARY_DELEGATION_PASSPHRASE=" + delegationPass,
	}
}

// signetCLI returns a signet client with a fresh trust directory.
func (e *scenarioEnv) signetCLI(name string) *cliClient {
	trustDir := filepath.Join(e.dir, "signet-"+name)
	e.norm.replace(trustDir, "<trust:"+name+">")
	return e.cliOn("signet", trustDir)
}

// notaryCLI returns a notary client with a fresh trust directory.
func (e *scenarioEnv) notaryCLI(name string) *cliClient {
	trustDir := filepath.Join(e.dir, "notary-"+name)
	e.norm.replace(trustDir, "<trust:"+name+">")
	return e.cliOn("notary", trustDir)
}

// cliOn returns a client of tool working on trustDir.
func (e *scenarioEnv) cliOn(tool, trustDir string) *cliClient {
	bin := "notary"
	if tool == "signet" {
		bin = signetCLIBinary(e.t)
	}
	pass := notaryPassphrases()
	env := append(e2etest.BaseEnv(e.dir), pass...)
	return &cliClient{e: e, tool: tool, bin: bin, trustDir: trustDir, cmd: command{Env: env, Extra: pass, Dir: e.dir}}
}

// other returns the other tool on the same trust directory.
func (c *cliClient) other() *cliClient {
	tool := "signet"
	if c.tool == "signet" {
		tool = "notary"
	}
	o := c.e.cliOn(tool, c.trustDir)
	return o
}

func (c *cliClient) args(args []string) []string {
	out := []string{c.bin, "-s", c.e.tg.url}
	if !c.noCA {
		out = append(out, "--tlscacert", c.e.tg.caFile)
	}
	return append(append(out, "-d", c.trustDir), args...)
}

func (c *cliClient) run(args ...string) *cmdResult {
	c.e.t.Helper()
	return c.cmd.Run(c.e.t, c.args(args)...)
}

func (c *cliClient) ok(args ...string) *cmdResult {
	c.e.t.Helper()
	return c.cmd.OK(c.e.t, c.args(args)...)
}

func (c *cliClient) fail(args ...string) *cmdResult {
	c.e.t.Helper()
	return c.cmd.Fail(c.e.t, c.args(args)...)
}

// failCode runs args and fails the test unless they exit with code.
func (c *cliClient) failCode(code int, args ...string) *cmdResult {
	c.e.t.Helper()
	r := c.run(args...)
	if r.Err != nil || r.Code != code {
		c.e.t.Fatalf("%s should have exited %d:\n%s", c.tool, code, r)
	}
	return r
}

func (c *cliClient) stdin(s string) *cliClient {
	n := *c
	n.cmd = c.cmd.WithStdin(s)
	return &n
}

// withEnv returns a copy of c with more environment variables (later ones
// win over the default passphrases).
func (c *cliClient) withEnv(kv ...string) *cliClient {
	n := *c
	n.cmd = c.cmd.WithEnv(kv...)
	return &n
}

// withoutCA returns a copy of c that does not pass --tlscacert.
func (c *cliClient) withoutCA() *cliClient {
	n := *c
	n.noCA = true
	return &n
}

// list runs `list` and checks NAME/DIGEST/SIZE/ROLE rows exactly.
func (c *cliClient) list(gun string, want [][]string, extra ...string) *cmdResult {
	c.e.t.Helper()
	r := c.ok(append([]string{"list", gun}, extra...)...)
	if len(want) == 0 {
		wantContains(c.e.t, r, r.Stdout, "No targets present in this repository.")
		return r
	}
	wantRows(c.e.t, r, mustTable(c.e.t, r, listHeader...), listHeader, want)
	return r
}

// keyRows returns `key list` as sorted "ROLE GUN KEYID" lines. notary
// shortens GUNs to 25 characters ("...m/compat/app"); signet prints them
// whole, so GUNs are shortened here the way notary does.
func (c *cliClient) keyRows() []string {
	c.e.t.Helper()
	r := c.ok("key", "list")
	if !strings.Contains(r.Stdout, "KEY ID") {
		return nil
	}
	var out []string
	for _, row := range mustTable(c.e.t, r, keyListHeader...).project(c.e.t, "ROLE", "GUN", "KEY ID") {
		row[1] = notaryTruncate(row[1], notaryGUNWidth)
		out = append(out, strings.Join(row, " "))
	}
	sort.Strings(out)
	return out
}

// Column widths of notary 0.7's key list (cmd/notary/prettyprint.go):
// longer values are cut on the left and start with "...".
const (
	notaryGUNWidth      = 25
	notaryLocationWidth = 40
)

func notaryTruncate(s string, width int) string {
	if len(s) <= width {
		return s
	}
	return "..." + s[len(s)-(width-3):]
}

// keyIDs returns `key list` as role → key IDs.
func (c *cliClient) keyIDs() map[string][]string {
	c.e.t.Helper()
	out := map[string][]string{}
	for _, row := range c.keyRows() {
		f := strings.Fields(row)
		out[f[0]] = append(out[f[0]], f[len(f)-1])
	}
	return out
}

// delegations runs `delegation list` and checks the rows exactly.
func (c *cliClient) delegations(gun string, want [][]string) *cmdResult {
	c.e.t.Helper()
	r := c.ok("delegation", "list", gun)
	if len(want) == 0 {
		wantContains(c.e.t, r, r.Stdout, "No delegations present in this repository.")
		return r
	}
	wantRows(c.e.t, r, mustTable(c.e.t, r, delegationHeader...), delegationHeader, want)
	return r
}

// status runs `status` and checks the rows exactly (none: "No unpublished
// changes").
func (c *cliClient) status(gun string, want [][]string) *cmdResult {
	c.e.t.Helper()
	r := c.ok("status", gun)
	if len(want) == 0 {
		wantContains(c.e.t, r, r.Stdout, "No unpublished changes for "+gun)
		return r
	}
	wantRows(c.e.t, r, mustTable(c.e.t, r, statusHeader...), statusHeader, want)
	return r
}

// serverState is the metadata the server currently serves for gun (role →
// bytes; a missing role maps to its HTTP status).
func (e *scenarioEnv) serverState(gun string) map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for _, role := range []string{"root", "targets", "snapshot", "timestamp", "targets/releases", "targets/team"} {
		status, body := e.tg.get(e.t, "/v2/"+gun+"/_trust/tuf/"+role+".json")
		if status == 200 {
			out[role] = string(body)
		} else {
			out[role] = fmt.Sprintf("HTTP %d", status)
		}
	}
	return out
}

// wantUnchanged fails unless the server still serves before for gun.
func (e *scenarioEnv) wantUnchanged(what, gun string, before map[string]string) {
	e.t.Helper()
	after := e.serverState(gun)
	var changed []string
	for role, b := range before {
		if after[role] != b {
			changed = append(changed, role)
		}
	}
	sort.Strings(changed)
	if len(changed) > 0 {
		e.t.Errorf("%s changed the server's metadata of %s: %v", what, gun, changed)
	}
}

// sameOutput checks that notary and signet printed byte-identical output
// for the same state (same server, and the same trust dir or fresh ones,
// so even key IDs agree); on a difference it shows a line diff after
// normalization (key IDs → <id>, registered content digests kept).
func (e *scenarioEnv) sameOutput(what string, notary, signet *cmdResult) {
	e.t.Helper()
	if notary.Stdout == signet.Stdout {
		e.record(what, signet.Stdout)
		return
	}
	a := strings.Split(e.norm.apply(notary.Stdout), "\n")
	b := strings.Split(e.norm.apply(signet.Stdout), "\n")
	if d := lineDiff(a, b); d != "" {
		e.t.Errorf("%s: signet's output differs from notary's (- notary, + signet):\n%s\n%s\n%s", what, d, notary, signet)
	}
	e.record(what, signet.Stdout)
	e.t.Errorf("%s: signet's output is not byte-identical to notary's, only after normalization\n%s\n%s", what, notary, signet)
}

// targetJSON is one element of `signet -o json list`.
type signetTargetJSON struct {
	Name   string            `json:"name"`
	Digest string            `json:"digest"`
	Size   int64             `json:"size"`
	Role   string            `json:"role"`
	Hashes map[string]string `json:"hashes"`
}

func parseListJSON(t testing.TB, r *cmdResult) []signetTargetJSON {
	t.Helper()
	var out []signetTargetJSON
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("signet -o json list: not the expected JSON: %v\n%s", err, r)
	}
	return out
}

// keysEqual fails unless both key lists hold the same rows.
func keysEqual(t testing.TB, what string, a, b []string) {
	t.Helper()
	if !slices.Equal(a, b) {
		t.Fatalf("%s: key lists differ:\n  %q\n  %q", what, a, b)
	}
}

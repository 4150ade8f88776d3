package compat

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

// A scenario is one client workflow, run once per target with fresh
// GUNs, trust directories and Docker configs.
type scenario struct {
	name  string
	needs []string // external programs beyond the target's own
	run   func(e *scenarioEnv)
}

// scenarios is the compatibility suite; every entry runs against every
// selected target, in this order.
var scenarios = []scenario{
	{"notary-basic", []string{"notary"}, notaryBasic},
	{"notary-delegations", []string{"notary"}, notaryDelegations},
	{"notary-rotate", []string{"notary"}, notaryRotate},
	{"notary-delete", []string{"notary"}, notaryDelete},
	{"notary-two-writers", []string{"notary"}, notaryTwoWriters},
	{"docker-signer", []string{"docker", "notary"}, dockerSigner},
	{"docker-registry", []string{"docker", "notary", "docker-registry", "skopeo"}, dockerRegistry},
}

// TestCompat starts each selected target once and runs every scenario
// against it, the targets side by side (each scenario has its own GUNs,
// trust directories and Docker configs); afterwards it compares what the
// clients printed for the same scenario on different targets.
func TestCompat(t *testing.T) {
	targets := selectedTargets(t)
	var mu sync.Mutex
	transcripts := map[string]map[string][]string{} // scenario → target label → lines
	// A target may be listed twice ("reference,reference"): that checks the
	// suite's own normalization, since both runs must then compare equal.
	labels := make([]string, len(targets))
	for i, name := range targets {
		labels[i] = name
		if slices.Contains(targets[:i], name) {
			labels[i] = fmt.Sprintf("%s#%d", name, i+1)
		}
	}
	// Runs when every target's subtests are done.
	t.Cleanup(func() { compareTranscripts(t, labels, transcripts) })
	for i, name := range targets {
		label := labels[i]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			tg := startTarget(t, name)
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					e2etest.Need(t, sc.needs...)
					e := newScenarioEnv(t, tg, sc.name)
					scStart := time.Now()
					sc.run(e)
					t.Logf("%s/%s took %v", name, sc.name, time.Since(scStart).Round(time.Millisecond))
					dumpTranscript(t, label, sc.name, e.transcript)
					if !t.Failed() && !t.Skipped() {
						mu.Lock()
						if transcripts[sc.name] == nil {
							transcripts[sc.name] = map[string][]string{}
						}
						transcripts[sc.name][label] = e.transcript
						mu.Unlock()
					}
				})
			}
			t.Logf("target %s: all scenarios took %v", name, time.Since(start).Round(time.Millisecond))
		})
	}
}

// dumpTranscript writes a scenario's normalized transcript to
// $SIGNET_COMPAT_TRANSCRIPTS/<target>/<scenario>.txt when that is set, so
// that runs against different servers can be diffed by hand.
func dumpTranscript(t *testing.T, label, scenario string, lines []string) {
	dir := os.Getenv("SIGNET_COMPAT_TRANSCRIPTS")
	if dir == "" {
		return
	}
	p := filepath.Join(dir, label, scenario+".txt")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Errorf("writing transcript: %v", err)
		return
	}
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Errorf("writing transcript: %v", err)
	}
}

// compareTranscripts checks that every scenario that passed on several
// targets made the clients print the same normalized output.
func compareTranscripts(t *testing.T, targets []string, transcripts map[string]map[string][]string) {
	if len(targets) < 2 {
		return
	}
	for _, sc := range scenarios {
		byTarget := transcripts[sc.name]
		base := targets[0]
		want, ok := byTarget[base]
		if !ok {
			continue
		}
		for _, other := range targets[1:] {
			got, ok := byTarget[other]
			if !ok {
				continue
			}
			if d := lineDiff(want, got); d != "" {
				t.Errorf("scenario %s: clients printed different things against %s and %s (- %s, + %s):\n%s",
					sc.name, base, other, base, other, d)
			}
		}
	}
}

// lineDiff is a small unified-style diff of two line lists ("" if equal).
func lineDiff(a, b []string) string {
	if slices.Equal(a, b) {
		return ""
	}
	// Longest common subsequence; the transcripts are short.
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			fmt.Fprintf(&out, "  %s\n", a[i])
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&out, "+ %s\n", b[j])
			j++
		default:
			fmt.Fprintf(&out, "- %s\n", a[i])
			i++
		}
	}
	return out.String()
}

// Passphrases of the throw-away keys. They are written into the fixture
// manifests so that captured key files can be decrypted.
const (
	rootPass       = "compat-root-pass"
	targetsPass    = "compat-targets-pass"
	snapshotPass   = "compat-snapshot-pass"
	delegationPass = "compat-delegation-pass"
	dockerRootPass = "compat-docker-root-pass"
	dockerRepoPass = "compat-docker-repo-pass"
)

// scenarioEnv is what a scenario works with.
type scenarioEnv struct {
	t          *testing.T
	tg         *target
	name       string
	dir        string // scratch space; also HOME of every client
	norm       normalizer
	transcript []string
}

func newScenarioEnv(t *testing.T, tg *target, name string) *scenarioEnv {
	dir := t.TempDir()
	e := &scenarioEnv{t: t, tg: tg, name: name, dir: dir, norm: normalizer{keep: map[string]bool{}}}
	e.norm.replace(dir, "<tmp>")
	e.norm.replace(tg.url, "<server>")
	e.norm.replace(tg.host, "<server>")
	return e
}

// record adds normalized output to the scenario's transcript, which must be
// the same on every target.
func (e *scenarioEnv) record(label, text string) {
	e.transcript = append(e.transcript, "## "+label)
	for _, l := range strings.Split(strings.TrimRight(e.norm.apply(text), "\n"), "\n") {
		e.transcript = append(e.transcript, strings.TrimRight(l, " "))
	}
}

// writeFile writes a payload into the scratch dir and returns its path,
// sha256 hex and length; the digest is kept verbatim in transcripts.
func (e *scenarioEnv) writeFile(name, content string) (path, digest string, size int) {
	path = filepath.Join(e.dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	digest = hex.EncodeToString(sum[:])
	e.norm.keep[digest] = true
	return path, digest, len(content)
}

// fakeDigest is a recognisable sha256 for addhash, kept in transcripts.
func (e *scenarioEnv) fakeDigest(seed string) string {
	sum := sha256.Sum256([]byte("signet compat " + seed))
	d := hex.EncodeToString(sum[:])
	e.norm.keep[d] = true
	return d
}

// expectRequests checks, on targets that log requests, that the requests
// made since mark contain want as a subsequence ("METHOD URI STATUS",
// with <gun> expanded). The full sequence goes to the test log.
func (e *scenarioEnv) expectRequests(mark int64, what, gun string, want ...string) {
	e.t.Helper()
	if e.tg.requests == nil {
		return
	}
	got := e.tg.requests(mark)
	e.t.Logf("requests for %s:\n  %s", what, strings.Join(got, "\n  "))
	e.record("requests for "+what, strings.Join(got, "\n"))
	k := 0
	for _, g := range got {
		if k < len(want) && g == strings.ReplaceAll(want[k], "<gun>", gun) {
			k++
		}
	}
	if k < len(want) {
		e.t.Errorf("requests for %s: missing %q (in order) from:\n  %s",
			what, strings.ReplaceAll(want[k], "<gun>", gun), strings.Join(got, "\n  "))
	}
}

// --- the notary CLI --------------------------------------------------------

// notaryClient runs `notary` with its own trust directory against the
// target, with the CA given on the command line (no config file).
type notaryClient struct {
	e        *scenarioEnv
	trustDir string
	cmd      command
}

// notary returns a client with a fresh trust directory named name.
func (e *scenarioEnv) notary(name string) *notaryClient {
	trustDir := filepath.Join(e.dir, "notary-"+name)
	e.norm.replace(trustDir, "<trust:"+name+">")
	return e.notaryWithTrustDir(trustDir, []string{
		"NOTARY_ROOT_PASSPHRASE=" + rootPass,
		"NOTARY_TARGETS_PASSPHRASE=" + targetsPass,
		"NOTARY_SNAPSHOT_PASSPHRASE=" + snapshotPass,
		"NOTARY_DELEGATION_PASSPHRASE=" + delegationPass,
	})
}

func (e *scenarioEnv) notaryWithTrustDir(trustDir string, passphrases []string) *notaryClient {
	env := append(e2etest.BaseEnv(e.dir), passphrases...)
	return &notaryClient{e: e, trustDir: trustDir, cmd: command{Env: env, Extra: passphrases, Dir: e.dir}}
}

func (n *notaryClient) args(args []string) []string {
	return append([]string{"notary", "-s", n.e.tg.url, "--tlscacert", n.e.tg.caFile, "-d", n.trustDir}, args...)
}

func (n *notaryClient) run(args ...string) *cmdResult {
	n.e.t.Helper()
	return n.cmd.Run(n.e.t, n.args(args)...)
}

func (n *notaryClient) ok(args ...string) *cmdResult {
	n.e.t.Helper()
	return n.cmd.OK(n.e.t, n.args(args)...)
}

func (n *notaryClient) fail(args ...string) *cmdResult {
	n.e.t.Helper()
	return n.cmd.Fail(n.e.t, n.args(args)...)
}

func (n *notaryClient) stdin(s string) *notaryClient {
	c := *n
	c.cmd = n.cmd.WithStdin(s)
	return &c
}

// list runs `notary list` and checks NAME/DIGEST/SIZE/ROLE rows exactly.
func (n *notaryClient) list(gun string, want [][]string, extra ...string) *cmdResult {
	n.e.t.Helper()
	r := n.ok(append([]string{"list", gun}, extra...)...)
	if len(want) == 0 {
		if strings.Contains(r.Stdout, "NAME") {
			tb := mustTable(n.e.t, r, listHeader...)
			if len(tb.rows) != 0 {
				n.e.t.Fatalf("expected no targets:\n%s", r)
			}
		}
		return r
	}
	tb := mustTable(n.e.t, r, listHeader...)
	wantRows(n.e.t, r, tb, listHeader, want)
	return r
}

// keyIDs returns `notary key list` as role → key IDs.
func (n *notaryClient) keyIDs() map[string][]string {
	n.e.t.Helper()
	r := n.ok("key", "list")
	out := map[string][]string{}
	if !strings.Contains(r.Stdout, "KEY ID") {
		return out
	}
	tb := mustTable(n.e.t, r, keyListHeader...)
	for _, row := range tb.project(n.e.t, "ROLE", "KEY ID") {
		out[row[0]] = append(out[row[0]], row[1])
	}
	return out
}

// --- the Docker CLI --------------------------------------------------------

// dockerClient runs `docker` with its own DOCKER_CONFIG (and trust dir in
// it). No daemon is involved.
type dockerClient struct {
	e      *scenarioEnv
	config string
	cmd    command
}

// docker returns a client with a fresh DOCKER_CONFIG named name; withCA
// puts the target's CA where the Docker CLI looks for it,
// $DOCKER_CONFIG/tls/<host:port>/ca.crt.
func (e *scenarioEnv) docker(name string, withCA bool) *dockerClient {
	e.t.Helper()
	cfg := filepath.Join(e.dir, "docker-"+name)
	e.norm.replace(cfg, "<docker:"+name+">")
	if err := os.MkdirAll(cfg, 0o700); err != nil {
		e.t.Fatal(err)
	}
	if withCA {
		tlsDir := filepath.Join(cfg, "tls", e.tg.host)
		if err := os.MkdirAll(tlsDir, 0o700); err != nil {
			e.t.Fatal(err)
		}
		ca, err := os.ReadFile(e.tg.caFile)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tlsDir, "ca.crt"), ca, 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	extra := []string{
		"DOCKER_CONFIG=" + cfg,
		"DOCKER_CONTENT_TRUST_SERVER=" + e.tg.url,
		"DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE=" + dockerRootPass,
		"DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=" + dockerRepoPass,
		"DOCKER_CLI_HINTS=false",
	}
	// A daemon is never wanted; point at nothing so no local one is used.
	env := append(e2etest.BaseEnv(e.dir), append(extra, "DOCKER_HOST=unix://"+filepath.Join(e.dir, "no-docker-daemon.sock"))...)
	return &dockerClient{e: e, config: cfg, cmd: command{Env: env, Extra: extra, Dir: e.dir}}
}

func (d *dockerClient) run(args ...string) *cmdResult {
	d.e.t.Helper()
	return d.cmd.Run(d.e.t, append([]string{"docker"}, args...)...)
}

func (d *dockerClient) ok(args ...string) *cmdResult {
	d.e.t.Helper()
	return d.cmd.OK(d.e.t, append([]string{"docker"}, args...)...)
}

func (d *dockerClient) stdin(s string) *dockerClient {
	c := *d
	c.cmd = d.cmd.WithStdin(s)
	return &c
}

// inspect runs `docker trust inspect` on one repository and returns it.
func (d *dockerClient) inspect(ref string) (trustRepo, *cmdResult) {
	d.e.t.Helper()
	r := d.ok("trust", "inspect", ref)
	repos := parseInspect(d.e.t, r)
	if len(repos) != 1 {
		d.e.t.Fatalf("docker trust inspect %s: %d repositories, want 1\n%s", ref, len(repos), r)
	}
	return repos[0], r
}

// notary returns a notary CLI working on this Docker trust directory, with
// Docker's passphrases mapped to notary's variables (Docker encrypts
// targets, snapshot and signer keys with the repository passphrase).
func (d *dockerClient) notary() *notaryClient {
	return d.e.notaryWithTrustDir(filepath.Join(d.config, "trust"), []string{
		"NOTARY_ROOT_PASSPHRASE=" + dockerRootPass,
		"NOTARY_TARGETS_PASSPHRASE=" + dockerRepoPass,
		"NOTARY_SNAPSHOT_PASSPHRASE=" + dockerRepoPass,
		"NOTARY_DELEGATION_PASSPHRASE=" + dockerRepoPass,
	})
}

// --- helpers on server metadata ---------------------------------------------

// roleVersion fetches <role>.json of gun from the server and returns its
// signed.version.
func (e *scenarioEnv) roleVersion(gun, role string) int {
	e.t.Helper()
	status, body := e.tg.get(e.t, "/v2/"+gun+"/_trust/tuf/"+role+".json")
	if status != 200 {
		e.t.Fatalf("GET %s.json of %s: status %d: %s", role, gun, status, body)
	}
	var m struct {
		Signed struct {
			Version int `json:"version"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		e.t.Fatalf("GET %s.json of %s: %v", role, gun, err)
	}
	return m.Signed.Version
}

// signatureCount returns how many signatures the current <role>.json has.
func (e *scenarioEnv) signatureCount(gun, role string) int {
	e.t.Helper()
	status, body := e.tg.get(e.t, "/v2/"+gun+"/_trust/tuf/"+role+".json")
	if status != 200 {
		e.t.Fatalf("GET %s.json of %s: status %d: %s", role, gun, status, body)
	}
	var m struct {
		Signatures []json.RawMessage `json:"signatures"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		e.t.Fatalf("%s.json of %s: %v", role, gun, err)
	}
	return len(m.Signatures)
}

// rootRoleKeys returns root.json's signed.roles[role].keyids.
func (e *scenarioEnv) rootRoleKeys(gun, role string) []string {
	e.t.Helper()
	status, body := e.tg.get(e.t, "/v2/"+gun+"/_trust/tuf/root.json")
	if status != 200 {
		e.t.Fatalf("GET root.json of %s: status %d: %s", gun, status, body)
	}
	var m struct {
		Signed struct {
			Roles map[string]struct {
				KeyIDs []string `json:"keyids"`
			} `json:"roles"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		e.t.Fatalf("root.json of %s: %v", gun, err)
	}
	ids := m.Signed.Roles[role].KeyIDs
	sort.Strings(ids)
	return ids
}

// --- normalization ---------------------------------------------------------

// normalizer makes client output comparable across targets: key IDs and
// other random hex become <id>, paths and addresses become placeholders.
// Digests registered in keep are left alone (they are content hashes that
// must be equal everywhere).
type normalizer struct {
	keep  map[string]bool
	pairs [][2]string
}

func (n *normalizer) replace(old, placeholder string) {
	if old == "" {
		return
	}
	n.pairs = append(n.pairs, [2]string{old, placeholder})
	// Longest first, so a path is replaced before its prefix.
	sort.SliceStable(n.pairs, func(i, j int) bool { return len(n.pairs[i][0]) > len(n.pairs[j][0]) })
}

var hex64 = regexp.MustCompile(`\b[0-9a-f]{64}\b`)

func (n *normalizer) apply(s string) string {
	for _, p := range n.pairs {
		s = strings.ReplaceAll(s, p[0], p[1])
	}
	return hex64.ReplaceAllStringFunc(s, func(h string) string {
		if n.keep[h] {
			return h
		}
		return "<id>"
	})
}

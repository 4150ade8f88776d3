package compat

import (
	"crypto/sha512"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

// The signet client scenarios run in TestCompat after the notary and
// docker ones, against every target of SIGNET_COMPAT_TARGETS: signet must
// work as the notary CLI does against signet-server and against the
// reference notary-server, and its trust directories must be usable by
// notary and the other way round.
func init() {
	scenarios = append(scenarios,
		scenario{"signet-basic", []string{"notary"}, signetBasic},
		scenario{"signet-delegations", []string{"notary"}, signetDelegations},
		scenario{"signet-rotate", []string{"notary"}, signetRotate},
		scenario{"signet-interop", []string{"notary"}, signetInterop},
		scenario{"signet-tables", []string{"notary"}, signetTables},
		scenario{"signet-bad-input", []string{"notary"}, signetBadInput},
	)
}

// signetBasic: init, add, addhash (sha256, both), status, publish, list
// (table and JSON), lookup, verify, remove, reset, witness, delete --remote,
// with notary reading the same repository.
func signetBasic(e *scenarioEnv) {
	t := e.t
	gun := "example.com/compat/signet-basic"
	owner := e.signetCLI("owner")
	content := "signet compat payload: signet-basic\n"
	payload, digest, size := e.writeFile("payload.txt", content)
	content2 := "signet compat payload: signet-basic, by hash\n"
	payload2, digest2, size2 := e.writeFile("payload2.txt", content2)
	sum512 := sha512.Sum512([]byte(content2))
	digest512 := hex.EncodeToString(sum512[:])
	fake := e.fakeDigest("signet-basic v2")
	sz, sz2 := strconv.Itoa(size), strconv.Itoa(size2)

	owner.ok("init", gun)
	r := owner.ok("add", gun, "v1", payload)
	wantContains(t, r, r.Stdout, `Addition of target "v1" to repository "`+gun+`" staged for next publish.`)
	r = owner.ok("addhash", gun, "v2", "123", "--sha256", fake)
	wantContains(t, r, r.Stdout, `Addition of target "v2" by sha256 hash to repository "`+gun+`" staged for next publish.`)
	r = owner.ok("addhash", gun, "v3", sz2, "--sha256", digest2, "--sha512", digest512)
	wantContains(t, r, r.Stdout, `Addition of target "v3" by sha256, sha512 hash to repository "`+gun+`" staged for next publish.`)
	r = owner.status(gun, [][]string{
		{"0", "create", "targets", "target", "v1"},
		{"1", "create", "targets", "target", "v2"},
		{"2", "create", "targets", "target", "v3"},
	})
	e.record("status before the first publish", r.Stdout)

	r = owner.ok("publish", gun)
	wantContains(t, r, r.Stdout, "Successfully published changes for repository "+gun)
	if v := e.roleVersion(gun, "timestamp"); v != 1 {
		t.Errorf("timestamp version after the first publish = %d, want 1", v)
	}
	owner.status(gun, nil)

	want := [][]string{{"v1", digest, sz, "targets"}, {"v2", fake, "123", "targets"}, {"v3", digest2, sz2, "targets"}}
	r = owner.list(gun, want)
	e.record("signet list", r.Stdout)
	// notary (a fresh trust dir) sees what signet published.
	e.notaryCLI("reader").list(gun, want)

	r = owner.ok("-o", "json", "list", gun)
	got := parseListJSON(t, r)
	if len(got) != 3 {
		t.Fatalf("signet -o json list: %d targets, want 3\n%s", len(got), r)
	}
	byName := map[string]signetTargetJSON{}
	for _, g := range got {
		byName[g.Name] = g
	}
	if g := byName["v1"]; g.Digest != digest || g.Size != int64(size) || g.Role != "targets" || g.Hashes["sha256"] != digest || len(g.Hashes["sha512"]) != 128 {
		t.Errorf("signet -o json list: v1 = %+v", g)
	}
	if g := byName["v2"]; g.Digest != fake || g.Size != 123 || len(g.Hashes) != 1 {
		t.Errorf("signet -o json list: v2 (sha256 only) = %+v", g)
	}
	if g := byName["v3"]; g.Digest != digest2 || g.Hashes["sha512"] != digest512 || g.Size != int64(size2) {
		t.Errorf("signet -o json list: v3 (both hashes) = %+v", g)
	}

	r = owner.ok("lookup", gun, "v1")
	nr := e.notaryCLI("reader").ok("lookup", gun, "v1")
	if got, want := strings.TrimSpace(r.Stdout), "v1 sha256:"+digest+" "+sz; got != want {
		t.Errorf("signet lookup = %q, want %q (notary prints %q)\n%s", got, want, strings.TrimSpace(nr.Stdout), r)
	}
	r = owner.fail("lookup", gun, "nope")
	wantContains(t, r, r.Output(), "nope")

	r = owner.stdin(content).ok("verify", gun, "v1")
	if r.Stdout != content {
		t.Fatalf("verify should copy the verified input to stdout\n%s", r)
	}
	r = owner.ok("verify", gun, "v3", "-i", payload2, "-q")
	if r.Stdout != "" {
		t.Errorf("verify -q printed something\n%s", r)
	}
	r = owner.stdin("tampered\n").failCode(1, "verify", gun, "v1")
	wantContains(t, r, r.Output(), "data not present in the trusted collection", "v1")
	if strings.Contains(r.Stdout, "tampered") {
		t.Errorf("verify passed on unverified data\n%s", r)
	}

	// remove + add, then reset one change and then all.
	r = owner.ok("remove", gun, "v2")
	wantContains(t, r, r.Stdout, "Removal of v2 from "+gun+" staged for next publish.")
	owner.ok("add", gun, "v4", payload)
	owner.ok("reset", gun, "-n", "1")
	owner.status(gun, [][]string{{"0", "delete", "targets", "target", "v2"}})
	r = owner.ok("reset", gun, "--all")
	wantContains(t, r, r.Stdout, "Successfully reset specified changes for repository "+gun)
	owner.status(gun, nil)

	owner.ok("remove", gun, "v2", "-p")
	want = [][]string{{"v1", digest, sz, "targets"}, {"v3", digest2, sz2, "targets"}}
	owner.list(gun, want)

	// witness re-signs targets without changing it.
	before := e.roleVersion(gun, "targets")
	r = owner.ok("witness", gun, "targets")
	wantContains(t, r, r.Stdout, "- targets")
	owner.status(gun, [][]string{{"0", "update", "targets", "witness", ""}})
	owner.ok("publish", gun)
	if after := e.roleVersion(gun, "targets"); after != before+1 {
		t.Errorf("targets version after witness+publish = %d, want %d", after, before+1)
	}
	e.notaryCLI("reader").list(gun, want)
	r = e.signetCLI("fresh").list(gun, want)
	e.record("fresh signet list", r.Stdout)

	// delete --remote: the server forgets the repository.
	r = owner.ok("delete", gun, "--remote")
	wantContains(t, r, r.Stdout, "Successfully deleted local and remote trust data for repository "+gun)
	for _, role := range []string{"root", "timestamp", "targets", "snapshot"} {
		if status, body := e.tg.get(t, "/v2/"+gun+"/_trust/tuf/"+role+".json"); status != 404 {
			t.Errorf("GET %s.json after signet delete --remote: status %d, want 404: %s", role, status, body)
		}
	}
	if _, err := os.Stat(filepath.Join(owner.trustDir, "tuf", gun)); !os.IsNotExist(err) {
		t.Errorf("signet delete left the local trust data of %s (%v)", gun, err)
	}
	e.notaryCLI("after-delete").fail("list", gun)
	r = e.signetCLI("after-delete").fail("list", gun)
	e.record("signet list after delete", r.Output())
}

// signetDelegations: delegation add (all paths, path-restricted, a second
// key), list (table and JSON), removing one key, server-managed snapshot, a
// delegate publishing with only its own key, removing a whole role.
func signetDelegations(e *scenarioEnv) {
	t := e.t
	gun := "example.com/compat/signet-delegations"
	owner := e.signetCLI("owner")
	payload, digest, size := e.writeFile("payload.txt", "signet compat payload: signet-delegations\n")
	sz := strconv.Itoa(size)
	rel := newDelegationKey(t, e.dir, "releases")
	rel2 := newDelegationKey(t, e.dir, "releases2")
	team := newDelegationKey(t, e.dir, "team")

	owner.ok("init", gun)
	owner.ok("add", gun, "v1", payload, "-p")

	r := owner.ok("delegation", "add", gun, "targets/releases", rel.certFile, rel2.certFile, "--all-paths")
	wantContains(t, r, r.Stdout, "Addition of delegation role targets/releases with keys [", rel.id, rel2.id)
	r = owner.ok("delegation", "add", gun, "targets/team", team.certFile, "--paths", "team/")
	wantContains(t, r, r.Stdout, `with paths [team/]`)
	owner.status(gun, [][]string{
		{"0", "create", "targets/releases", "delegation", ""},
		{"1", "create", "targets/team", "delegation", ""},
	})
	owner.ok("publish", gun)

	relIDs := []string{rel.id, rel2.id}
	slices.Sort(relIDs)
	// The keys of a role come in the order of its keyids (as notary).
	r = owner.ok("delegation", "list", gun)
	rows := mustTable(t, r, delegationHeader...).rows
	if len(rows) == 3 {
		got := []string{rows[0][2], rows[1][2]}
		slices.Sort(got)
		rows[0][2], rows[1][2] = got[0], got[1]
	}
	wantRows(t, r, table{header: delegationHeader, rows: rows}, delegationHeader, [][]string{
		{"targets/releases", `"" <all paths>`, relIDs[0], "1"},
		{"", "", relIDs[1], ""},
		{"targets/team", "team/", team.id, "1"},
	})
	e.record("delegation list", r.Stdout)
	nr := e.notaryCLI("reader").ok("delegation", "list", gun)
	e.sameOutput("delegation list, notary vs signet", nr, r)

	// Remove one key of targets/releases.
	r = owner.ok("delegation", "remove", gun, "targets/releases", rel2.id)
	wantContains(t, r, r.Stdout, "targets/releases", rel2.id)
	owner.ok("publish", gun)
	owner.delegations(gun, [][]string{
		{"targets/releases", `"" <all paths>`, rel.id, "1"},
		{"targets/team", "team/", team.id, "1"},
	})
	e.notaryCLI("reader").ok("delegation", "list", gun)

	r = owner.ok("-o", "json", "delegation", "list", gun)
	wantContains(t, r, r.Stdout, `"targets/releases"`, rel.id, `"team/"`)
	if strings.Contains(r.Stdout, rel2.id) {
		t.Errorf("removed key %s still listed\n%s", rel2.id, r)
	}

	// Server-managed snapshot, so that delegates need no snapshot key.
	r = owner.ok("key", "rotate", gun, "snapshot", "-r")
	wantContains(t, r, r.Stdout, "Successfully rotated snapshot key for repository "+gun)
	ids := owner.keyIDs()
	if len(ids["targets"]) != 1 || len(ids["root"]) != 1 {
		t.Fatalf("owner keys after key rotate snapshot -r: %v", ids)
	}

	deleg := e.signetCLI("delegate")
	deleg.ok("key", "import", rel.keyFile, "--role", "targets/releases")
	deleg.ok("key", "import", team.keyFile, "--role", "targets/team")
	ids = deleg.keyIDs()
	if !slices.Equal(ids["targets/releases"], []string{rel.id}) || !slices.Equal(ids["targets/team"], []string{team.id}) || len(ids) != 2 {
		t.Fatalf("delegate key list = %v, want only %s (releases) and %s (team)", ids, rel.id, team.id)
	}
	// notary reads the keys signet imported.
	keysEqual(t, "delegate keys, signet vs notary", deleg.keyRows(), deleg.other().keyRows())

	deleg.list(gun, [][]string{{"v1", digest, sz, "targets"}})
	deleg.ok("add", gun, "rel-v1", payload, "--roles", "targets/releases")
	deleg.ok("add", gun, "team/v1", payload, "--roles", "targets/team")
	deleg.ok("publish", gun)

	want := [][]string{
		{"rel-v1", digest, sz, "targets/releases"},
		{"team/v1", digest, sz, "targets/team"},
		{"v1", digest, sz, "targets"},
	}
	r = owner.list(gun, want)
	e.record("owner list after delegate publish", r.Stdout)
	e.notaryCLI("reader").list(gun, want)
	deleg.list(gun, [][]string{{"team/v1", digest, sz, "targets/team"}}, "--roles", "targets/team")

	// A path outside the delegation's paths is refused; nothing is published.
	before := e.serverState(gun)
	deleg.ok("add", gun, "outside", payload, "--roles", "targets/team")
	deleg.fail("publish", gun)
	e.wantUnchanged("publishing a target outside the delegation's paths", gun, before)
	deleg.ok("reset", gun, "--all")

	// Removing the team role drops its targets from listings.
	r = owner.ok("delegation", "remove", gun, "targets/team", "-y")
	wantContains(t, r, r.Stdout, "Forced removal (including all keys and paths) of delegation role targets/team")
	owner.ok("publish", gun)
	owner.delegations(gun, [][]string{{"targets/releases", `"" <all paths>`, rel.id, "1"}})
	want = [][]string{
		{"rel-v1", digest, sz, "targets/releases"},
		{"v1", digest, sz, "targets"},
	}
	r = owner.list(gun, want)
	e.record("owner list after delegation remove", r.Stdout)
	e.notaryCLI("reader").list(gun, want)
}

// signetRotate: key rotate snapshot -r, timestamp -r, targets, root; after
// each, a signet and a notary client that cached the first root still list.
func signetRotate(e *scenarioEnv) {
	t := e.t
	gun := "example.com/compat/signet-rotate"
	owner := e.signetCLI("owner")
	payload, digest, size := e.writeFile("payload.txt", "signet compat payload: signet-rotate\n")
	sz := strconv.Itoa(size)

	owner.ok("init", gun)
	owner.ok("add", gun, "v1", payload, "-p")
	want := [][]string{{"v1", digest, sz, "targets"}}
	earlySignet, earlyNotary := e.signetCLI("early"), e.notaryCLI("early")
	earlySignet.list(gun, want)
	earlyNotary.list(gun, want)
	stale := func(after string) {
		t.Helper()
		earlySignet.list(gun, want)
		earlyNotary.list(gun, want)
		if t.Failed() {
			t.Fatalf("a client with an older cache no longer lists after %s", after)
		}
	}

	r := owner.ok("key", "rotate", gun, "snapshot", "-r")
	wantContains(t, r, r.Stdout, "Successfully rotated snapshot key for repository "+gun)
	if v := e.roleVersion(gun, "root"); v != 2 {
		t.Errorf("root version after snapshot rotation = %d, want 2", v)
	}
	stale("key rotate snapshot -r")

	tsKeys := e.rootRoleKeys(gun, "timestamp")
	r = owner.ok("key", "rotate", gun, "timestamp", "-r")
	wantContains(t, r, r.Stdout, "Successfully rotated timestamp key for repository "+gun)
	if now := e.rootRoleKeys(gun, "timestamp"); slices.Equal(now, tsKeys) || len(now) != 1 {
		t.Errorf("timestamp keys in root: before %v, after %v; want one new key", tsKeys, now)
	}
	stale("key rotate timestamp -r")

	before := owner.keyIDs()["targets"]
	r = owner.ok("key", "rotate", gun, "targets")
	wantContains(t, r, r.Stdout, "Successfully rotated targets key for repository "+gun)
	after := owner.keyIDs()["targets"]
	if got := e.rootRoleKeys(gun, "targets"); len(after) == 0 || !slices.Contains(after, got[0]) || slices.Contains(before, got[0]) {
		t.Errorf("root lists targets keys %v; the client held %v before and %v after", got, before, after)
	}
	stale("key rotate targets")

	oldRoot := e.rootRoleKeys(gun, "root")
	v := e.roleVersion(gun, "root")
	r = owner.ok("key", "rotate", gun, "root")
	wantContains(t, r, r.Stdout, "Aborting action.")
	if got := e.roleVersion(gun, "root"); got != v {
		t.Fatalf("root version after an aborted root rotation = %d, want %d", got, v)
	}
	r = owner.stdin("yes\n").ok("key", "rotate", gun, "root")
	wantContains(t, r, r.Stdout, "Successfully rotated root key for repository "+gun)
	if got := e.roleVersion(gun, "root"); got != v+1 {
		t.Errorf("root version after root rotation = %d, want %d", got, v+1)
	}
	if newRoot := e.rootRoleKeys(gun, "root"); len(newRoot) != 1 || slices.Equal(newRoot, oldRoot) {
		t.Errorf("root keys before %v, after %v: want one new key", oldRoot, newRoot)
	}
	if n := e.signatureCount(gun, "root"); n != 2 {
		t.Errorf("rotated root.json carries %d signatures, want 2 (old and new root key)", n)
	}
	stale("key rotate root")

	owner.ok("add", gun, "v2", payload, "-p")
	want = append(want, []string{"v2", digest, sz, "targets"})
	r = owner.list(gun, want)
	e.record("owner list after rotations", r.Stdout)
	earlySignet.list(gun, want)
	earlyNotary.list(gun, want)
	e.signetCLI("fresh").list(gun, want)

	// notary continues on signet's trust directory after the rotations.
	owner.other().ok("add", gun, "v3", payload, "-p")
	want = append(want, []string{"v3", digest, sz, "targets"})
	earlySignet.list(gun, want)
}

// signetInterop: trust directories handed between notary and signet in
// both directions, key files included.
func signetInterop(e *scenarioEnv) {
	t := e.t
	payload, digest, size := e.writeFile("payload.txt", "signet compat payload: signet-interop\n")
	sz := strconv.Itoa(size)

	// notary creates, signet extends, notary reads again.
	gunN := "example.com/compat/interop-from-notary"
	notary := e.notaryCLI("n")
	notary.ok("init", gunN)
	notary.ok("add", gunN, "by-notary", payload, "-p")
	signet := notary.other()
	signet.list(gunN, [][]string{{"by-notary", digest, sz, "targets"}})
	signet.ok("add", gunN, "by-signet", payload)
	signet.ok("publish", gunN)
	want := [][]string{{"by-notary", digest, sz, "targets"}, {"by-signet", digest, sz, "targets"}}
	signet.list(gunN, want)
	r := notary.list(gunN, want)
	e.record("notary list after signet published in notary's trust dir", r.Stdout)
	// Changes staged by one tool are published by the other.
	notary.ok("add", gunN, "staged-by-notary", payload)
	signet.status(gunN, [][]string{{"0", "create", "targets", "target", "staged-by-notary"}})
	signet.ok("publish", gunN)
	notary.status(gunN, nil)
	want = append(want, []string{"staged-by-notary", digest, sz, "targets"})
	notary.list(gunN, want)

	// signet creates, notary extends (targets and a delegation), signet reads.
	gunS := "example.com/compat/interop-from-signet"
	sig := e.signetCLI("s")
	sig.ok("init", gunS, "-p")
	nt := sig.other()
	nt.ok("add", gunS, "by-notary", payload)
	nt.ok("publish", gunS)
	rel := newDelegationKey(t, e.dir, "releases")
	nt.ok("delegation", "add", gunS, "targets/releases", rel.certFile, "--all-paths", "-p")
	sig.list(gunS, [][]string{{"by-notary", digest, sz, "targets"}})
	r = sig.delegations(gunS, [][]string{{"targets/releases", `"" <all paths>`, rel.id, "1"}})
	e.record("signet delegation list of notary's delegation", r.Stdout)
	sig.ok("add", gunS, "by-signet", payload, "-p")
	nt.list(gunS, [][]string{{"by-notary", digest, sz, "targets"}, {"by-signet", digest, sz, "targets"}})

	// Key lists agree in both directions: the same roles, GUNs and IDs.
	keysEqual(t, "notary's trust dir", notary.keyRows(), signet.keyRows())
	keysEqual(t, "signet's trust dir", sig.keyRows(), nt.keyRows())
	rows := nt.keyRows()
	shortS := notaryTruncate(gunS, notaryGUNWidth)
	for _, want := range []string{"root  ", "snapshot " + shortS + " ", "targets " + shortS + " "} {
		if !slices.ContainsFunc(rows, func(r string) bool { return strings.HasPrefix(r, want) }) {
			t.Errorf("notary key list of signet's trust dir lacks a %q key: %q", strings.TrimSpace(want), rows)
		}
	}

	// key generate / export / import across the tools.
	r = sig.ok("key", "generate", "ecdsa", "--role", "targets/ci")
	id := lastField(r.Stdout)
	if ids := nt.keyIDs()["targets/ci"]; !slices.Equal(ids, []string{id}) {
		t.Errorf("notary key list: targets/ci keys %v, want [%s] (generated by signet)\n%s", ids, id, r)
	}
	// key generate -o writes <prefix>-key.pem (encrypted, no path header)
	// and <prefix>.pem; notary 0.7 cannot import such a file (not even its
	// own: "invalid key pem block"), signet can, from either tool.
	r = sig.ok("key", "generate", "--role", "targets/ext", "-o", filepath.Join(e.dir, "sext"))
	sextID := canonicalKeyIDFromPEM(t, filepath.Join(e.dir, "sext.pem"))
	wantContains(t, r, r.Stdout, sextID)
	nt.ok("key", "generate", "--role", "targets/ext", "-o", filepath.Join(e.dir, "next"))
	nextID := canonicalKeyIDFromPEM(t, filepath.Join(e.dir, "next.pem"))
	for _, f := range []string{"sext", "next"} {
		b, err := os.ReadFile(filepath.Join(e.dir, f+".pem"))
		if err != nil || !strings.Contains(string(b), "BEGIN PUBLIC KEY") || !strings.Contains(string(b), "role: targets/ext") {
			t.Errorf("%s.pem: %v\n%s", f, err, b)
		}
	}
	imp := e.signetCLI("gen-importer")
	imp.ok("key", "import", filepath.Join(e.dir, "sext-key.pem"), filepath.Join(e.dir, "next-key.pem"))
	extIDs := []string{sextID, nextID}
	slices.Sort(extIDs)
	if ids := imp.keyIDs()["targets/ext"]; !slices.Equal(ids, extIDs) {
		t.Errorf("signet key import of key generate -o files: targets/ext keys %v, want %v", ids, extIDs)
	}
	if ids := imp.other().keyIDs()["targets/ext"]; !slices.Equal(ids, extIDs) {
		t.Errorf("notary key list after signet key import: targets/ext keys %v, want %v", ids, extIDs)
	}

	// signet exports, notary imports; notary exports, signet imports.
	exp := filepath.Join(e.dir, "signet-export.pem")
	sig.ok("key", "export", "--key", id, "-o", exp)
	nimp := e.notaryCLI("importer")
	nimp.ok("key", "import", exp)
	if ids := nimp.keyIDs()["targets/ci"]; !slices.Equal(ids, []string{id}) {
		t.Errorf("notary key import of signet key export: targets/ci keys %v, want [%s]", ids, id)
	}
	// Whole exports by GUN, both ways, give the same key lists.
	sexp := filepath.Join(e.dir, "signet-export-gun.pem")
	sig.ok("key", "export", "--gun", gunS, "-o", sexp)
	nimp.ok("key", "import", sexp)
	var wantS []string
	for _, row := range sig.keyRows() {
		if strings.Contains(row, " "+notaryTruncate(gunS, notaryGUNWidth)+" ") {
			wantS = append(wantS, row)
		}
	}
	var gotS []string
	for _, row := range nimp.keyRows() {
		if !strings.HasPrefix(row, "targets/ci ") {
			gotS = append(gotS, row)
		}
	}
	keysEqual(t, "notary key import of signet key export --gun", gotS, wantS)
	nexp := filepath.Join(e.dir, "notary-export.pem")
	notary.ok("key", "export", "--gun", gunN, "-o", nexp)
	simp := e.signetCLI("importer")
	simp.ok("key", "import", nexp)
	var want2 []string
	for _, row := range notary.keyRows() {
		if strings.Contains(row, " "+notaryTruncate(gunN, notaryGUNWidth)+" ") {
			want2 = append(want2, row)
		}
	}
	keysEqual(t, "signet key import of notary key export --gun", simp.keyRows(), want2)
	// The imported targets key signs: signet publishes with it.
	simp.ok("add", gunN, "by-imported-key", payload, "-p")
	want = append([][]string{{"by-imported-key", digest, sz, "targets"}}, want...) // sorted by name
	notary.list(gunN, want)
}

func lastField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// signetTables: for the same repository state (same trust dir, same
// server), signet prints the same list, delegation list, status and key
// list tables as notary, key IDs aside.
func signetTables(e *scenarioEnv) {
	t := e.t
	gun := "example.com/compat/signet-tables"
	payload, _, _ := e.writeFile("payload.txt", "signet compat payload: signet-tables\n")
	long, _, _ := e.writeFile("payload-long.txt", strings.Repeat("signet compat payload: a longer one\n", 40))
	fake := e.fakeDigest("signet-tables short")
	notary := e.notaryCLI("n")
	signet := notary.other()
	rel := newDelegationKey(t, e.dir, "releases")
	rel2 := newDelegationKey(t, e.dir, "releases2")
	team := newDelegationKey(t, e.dir, "team")

	both := func(what string, args ...string) {
		t.Helper()
		e.sameOutput(what, notary.ok(args...), signet.ok(args...))
	}

	notary.ok("init", gun)
	both("status, nothing staged", "status", gun)
	notary.ok("add", gun, "a-much-longer-target-name/v1.2.3", long)
	notary.ok("add", gun, "v1", payload)
	notary.ok("addhash", gun, "h", "7", "--sha256", fake)
	notary.ok("delegation", "add", gun, "targets/releases", rel.certFile, rel2.certFile, "--all-paths")
	notary.ok("delegation", "add", gun, "targets/team", team.certFile, "--paths", "team/,team2/")
	notary.ok("witness", gun, "targets")
	both("status with targets, delegations and a witness", "status", gun)
	notary.ok("publish", gun)
	both("status after publish", "status", gun)
	both("list", "list", gun)
	both("list -r targets", "list", gun, "--roles", "targets")
	both("delegation list", "delegation", "list", gun)
	both("lookup", "lookup", gun, "v1")
	notary.ok("remove", gun, "h")
	both("status with a removal", "status", gun)
	notary.ok("publish", gun)
	both("list after remove", "list", gun)
	keyList(e, notary.ok("key", "list"), signet.ok("key", "list"))

	empty := "example.com/compat/signet-tables-empty"
	notary.ok("init", empty, "-p")
	both("list of an empty repository", "list", empty)
	both("delegation list without delegations", "delegation", "list", empty)
}

// signetBadInput: wrong command lines and settings fail with exit 1 (or 2
// for usage errors), say what is wrong, and publish nothing.
func signetBadInput(e *scenarioEnv) {
	t := e.t
	gun := "example.com/compat/signet-bad-input"
	owner := e.signetCLI("owner")
	payload, digest, size := e.writeFile("payload.txt", "signet compat payload: signet-bad-input\n")
	sz := strconv.Itoa(size)
	owner.ok("init", gun)
	owner.ok("add", gun, "v1", payload, "-p")
	want := [][]string{{"v1", digest, sz, "targets"}}
	state := e.serverState(gun)

	// A role that is not targets or a delegation: refused when staging.
	r := owner.fail("add", gun, "v2", payload, "-r", "releases")
	wantContains(t, r, r.Output(), `"releases"`)
	t.Logf("%s: exit %d: %s", cmdline(r), r.Code, strings.TrimSpace(r.Output()))
	r = owner.fail("list", gun, "-r", "snapshot")
	wantContains(t, r, r.Output(), `"snapshot"`)
	owner.status(gun, nil)
	// A delegation that does not exist: staged, but publish fails.
	owner.ok("add", gun, "v2", payload, "-r", "targets/nope")
	r = owner.failCode(1, "publish", gun)
	wantContains(t, r, r.Output(), "targets/nope")
	t.Logf("%s: exit %d: %s", cmdline(r), r.Code, strings.TrimSpace(r.Output()))
	e.wantUnchanged("publish to a delegation that does not exist", gun, state)
	owner.ok("reset", gun, "--all")
	// key rotate of a role that has no key to rotate.
	r = owner.fail("key", "rotate", gun, "targets/nope")
	wantContains(t, r, r.Output(), "targets/nope")
	e.wantUnchanged("key rotate targets/nope", gun, state)

	// addhash without hashes.
	r = owner.fail("addhash", gun, "v2", "10")
	wantContains(t, r, r.Output(), "--sha256", "--sha512")
	t.Logf("%s: exit %d: %s", cmdline(r), r.Code, strings.TrimSpace(r.Output()))
	r = owner.fail("addhash", gun, "v2", "10", "--sha256", "abc")
	wantContains(t, r, r.Output(), `--sha256 "abc" is not hex`)
	owner.status(gun, nil)

	// A wrong targets passphrase: exit 1 naming the key, nothing published,
	// the change stays staged.
	owner.ok("add", gun, "v2", payload)
	targetsID := owner.keyIDs()["targets"][0]
	wrong := owner.withEnv("NOTARY_TARGETS_PASSPHRASE=not-the-passphrase")
	r = wrong.failCode(1, "publish", gun)
	wantContains(t, r, r.Output(), "targets key", targetsID[:7], "NOTARY_TARGETS_PASSPHRASE")
	t.Logf("%s: exit %d: %s", cmdline(r), r.Code, strings.TrimSpace(r.Output()))
	e.wantUnchanged("publish with a wrong targets passphrase", gun, state)
	owner.status(gun, [][]string{{"0", "create", "targets", "target", "v2"}})
	// notary says the same kind of thing for the same trust dir.
	nr := owner.other().withEnv("NOTARY_TARGETS_PASSPHRASE=not-the-passphrase").run("publish", gun)
	t.Logf("notary with a wrong passphrase: exit %d: %s", nr.Code, strings.TrimSpace(nr.Output()))
	e.wantUnchanged("notary publish with a wrong targets passphrase", gun, state)

	// No --tlscacert against a server with a private CA: the message tells
	// which flag (or config setting) gives the CA.
	noCA := owner.withoutCA()
	r = noCA.failCode(1, "publish", gun)
	wantContains(t, r, r.Output(), "--tlscacert")
	e.wantUnchanged("publish without --tlscacert", gun, state)
	r = noCA.failCode(1, "list", gun)
	wantContains(t, r, r.Output(), "--tlscacert", "root_ca")
	t.Logf("%s: exit %d: %s", cmdline(r), r.Code, strings.TrimSpace(r.Output()))
	r = e.signetCLI("no-ca").withoutCA().failCode(1, "init", "example.com/compat/signet-bad-input-new", "-p")
	wantContains(t, r, r.Output(), "--tlscacert")
	if status, _ := e.tg.get(t, "/v2/example.com/compat/signet-bad-input-new/_trust/tuf/root.json"); status != 404 {
		t.Errorf("init -p without --tlscacert published something (root.json: %d)", status)
	}
	// A --tlscacert that does not exist names the file.
	missingCA := filepath.Join(e.dir, "no-such-ca.crt")
	r = owner.run("--tlscacert", missingCA, "list", gun)
	if r.Succeeded() {
		t.Errorf("a missing --tlscacert file was accepted:\n%s", r)
	}
	wantContains(t, r, r.Output(), "no-such-ca.crt")
	t.Logf("%s: exit %d: %s", cmdline(r), r.Code, strings.TrimSpace(r.Output()))

	// Still publishable with the right settings; the list is as before.
	owner.status(gun, [][]string{{"0", "create", "targets", "target", "v2"}})
	owner.ok("reset", gun, "--all")
	owner.list(gun, want)
	e.wantUnchanged("the failed commands", gun, state)
}

// keyList compares notary's and signet's `key list` of one trust dir. They
// are the same except that notary cuts GUN and LOCATION to 25 and 40
// characters ("...m/compat/app") and signet prints them whole, which the
// comparison undoes by cutting signet's the same way.
func keyList(e *scenarioEnv, notary, signet *cmdResult) {
	t := e.t
	t.Helper()
	nt := mustTable(t, notary, keyListHeader...)
	st := mustTable(t, signet, keyListHeader...)
	got := st.project(t, keyListHeader...)
	for _, row := range got {
		row[1] = notaryTruncate(row[1], notaryGUNWidth)
		row[3] = notaryTruncate(row[3], notaryLocationWidth)
	}
	if want := nt.project(t, keyListHeader...); !slices.EqualFunc(want, got, slices.Equal) {
		t.Errorf("key list: signet's rows (GUN and LOCATION cut as notary does) differ from notary's:\n got  %q\n want %q\n%s\n%s", got, want, notary, signet)
	}
	e.record("key list", signet.Stdout)
}

// cmdline is a command without the program and the global flags before -d.
func cmdline(r *cmdResult) string {
	for i, a := range r.Args {
		if a == "-d" && i+2 <= len(r.Args) {
			return e2etest.ShellQuote(r.Args[i+2:])
		}
	}
	return e2etest.ShellQuote(r.Args)
}

package compat

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Every key rotation signet offers, proven with the real clients: a
// docker-style repository (targets/releases and a signer, set up by signet)
// that a notary client and a docker client trusted before, and that both
// must still verify after each step — with the tags and signers expected,
// and with a new tag published after the step.
func init() {
	scenarios = append(scenarios, scenario{"signet-rotations", []string{"docker", "notary"}, signetRotations})
}

// signetDocker runs `signet` with a Docker configuration of its own (the
// trust server's CA in tls/<host:port>/, Docker's passphrase variables), as
// a user switching from `docker trust` would.
type signetDocker struct {
	*dockerClient
	bin string
}

func (e *scenarioEnv) signetDocker(name string) *signetDocker {
	return &signetDocker{dockerClient: e.docker(name, true), bin: signetCLIBinary(e.t)}
}

func (s *signetDocker) ok(args ...string) *cmdResult {
	s.e.t.Helper()
	return s.cmd.OK(s.e.t, append([]string{s.bin}, args...)...)
}

func (s *signetDocker) fail(args ...string) *cmdResult {
	s.e.t.Helper()
	return s.cmd.Fail(s.e.t, append([]string{s.bin}, args...)...)
}

// notaryCmds is signet's notary-style command set on the same trust
// directory ($DOCKER_CONFIG/trust), with Docker's passphrases given through
// the NOTARY_* variables (as dockerClient.notary does for notary).
func (s *signetDocker) notaryCmds() *cliClient {
	return s.e.cliOn("signet", filepath.Join(s.config, "trust")).withEnv(
		"NOTARY_ROOT_PASSPHRASE="+dockerRootPass,
		"NOTARY_TARGETS_PASSPHRASE="+dockerRepoPass,
		"NOTARY_SNAPSHOT_PASSPHRASE="+dockerRepoPass,
		"NOTARY_DELEGATION_PASSPHRASE="+dockerRepoPass,
	)
}

// rotationState is what every client must see after a step.
type rotationState struct {
	tags    []string            // tag names, each signed into targets/releases and targets/alice
	digests map[string]string   // tag → sha256 hex
	signers map[string][]string // signer → its key IDs (sorted)
}

// signetRotations: snapshot -r, timestamp -r, targets, root, a second
// signer key added and the first removed (the last one refused), and the
// targets key lost and replaced with the root key alone. After each step a
// notary client and a docker client that trusted the repository before
// verify it; a new tag is published; at the end fresh clients verify too.
func signetRotations(e *scenarioEnv) {
	t := e.t
	gun := "example.com/compat/rotations"
	admin := e.signetDocker("signet")
	nc := admin.notaryCmds()
	const size = "1234"

	admin.ok("trust", "key", "generate", "alice", "--dir", e.dir)
	alicePub := filepath.Join(e.dir, "alice.pub")
	aliceID := canonicalKeyIDFromPEM(t, alicePub)
	r := admin.ok("trust", "signer", "add", "--key", alicePub, "alice", gun)
	wantContains(t, r, r.Stdout, "Successfully added signer: alice to "+gun)

	st := &rotationState{digests: map[string]string{}, signers: map[string][]string{"alice": {aliceID}}}
	signer := admin // who signs new tags: alice's keys are moved to her laptop in step 6
	publish := func(tag string) {
		t.Helper()
		d := e.fakeDigest("rotations " + tag)
		r := signer.ok("trust", "sign", gun+":"+tag, "--digest", "sha256:"+d, "--size", size)
		wantContains(t, r, r.Stdout, "Successfully signed "+gun+":"+tag)
		st.tags = append(st.tags, tag)
		st.digests[tag] = d
	}
	publish("v1")

	oldNotary := e.notary("old")
	oldDocker := e.docker("old", true)
	check := func(step string, n *notaryClient, d *dockerClient) {
		t.Helper()
		// notary list shows every tag once (in targets/releases, docker's
		// role, and in targets/alice); only releases is checked exactly.
		var rows [][]string
		for _, tag := range st.tags {
			rows = append(rows, []string{tag, st.digests[tag], size, releasesRole})
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
		n.list(gun, rows, "--roles", releasesRole)
		lr := n.ok("list", gun)
		for _, tag := range st.tags {
			if !strings.Contains(lr.Stdout, st.digests[tag]) {
				t.Errorf("%s: notary list lacks %s\n%s", step, tag, lr)
			}
		}

		repo, ir := d.inspect(gun)
		var want []string
		for _, tag := range st.tags {
			want = append(want, tag+" "+st.digests[tag]+" alice")
		}
		sort.Strings(want)
		if got := repo.signedTags(); !slices.Equal(got, want) {
			t.Errorf("%s: docker trust inspect: signed tags\n  %q, want\n  %q\n%s", step, got, want, ir)
		}
		var names []string
		for _, s := range repo.Signers {
			names = append(names, s.Name)
			ids, _ := keysOf(repo.Signers, s.Name)
			sort.Strings(ids)
			if w, ok := st.signers[s.Name]; !ok || !slices.Equal(ids, w) {
				t.Errorf("%s: docker trust inspect: signer %s has keys %v, want %v\n%s", step, s.Name, ids, w, ir)
			}
		}
		if len(names) != len(st.signers) {
			t.Errorf("%s: docker trust inspect: signers %v, want %v\n%s", step, names, st.signers, ir)
		}
		rootIDs, _ := keysOf(repo.AdministrativeKeys, "Root")
		repoIDs, _ := keysOf(repo.AdministrativeKeys, "Repository")
		if got := e.rootRoleKeys(gun, "root"); !slices.Equal(rootIDs, got) {
			t.Errorf("%s: docker trust inspect: Root key %v, root.json has %v", step, rootIDs, got)
		}
		if got := e.rootRoleKeys(gun, "targets"); !slices.Equal(repoIDs, got) {
			t.Errorf("%s: docker trust inspect: Repository key %v, root.json has %v", step, repoIDs, got)
		}
		if t.Failed() {
			t.Fatalf("clients no longer verify %s after %s", gun, step)
		}
	}
	check("setup", oldNotary, oldDocker)
	e.record("inspect after setup", mustInspect(oldDocker, gun))

	// after checks the old clients, publishes a new tag, checks again.
	after := func(what string) {
		t.Helper()
		check(what, oldNotary, oldDocker)
		publish("after-" + strings.NewReplacer(" ", "-", "/", "-").Replace(what))
		check(what+", then a new tag", oldNotary, oldDocker)
	}

	// 1. Server-managed snapshot key: a new one.
	before := e.rootRoleKeys(gun, "snapshot")
	r = nc.ok("key", "rotate", gun, "snapshot", "-r")
	wantContains(t, r, r.Stdout, "Successfully rotated snapshot key for repository "+gun)
	if now := e.rootRoleKeys(gun, "snapshot"); len(now) != 1 || slices.Equal(now, before) {
		t.Errorf("snapshot keys in root: before %v, after %v; want one new key", before, now)
	}
	after("snapshot -r")

	// 2. Server-managed timestamp key.
	before = e.rootRoleKeys(gun, "timestamp")
	r = nc.ok("key", "rotate", gun, "timestamp", "-r")
	wantContains(t, r, r.Stdout, "Successfully rotated timestamp key for repository "+gun)
	if now := e.rootRoleKeys(gun, "timestamp"); len(now) != 1 || slices.Equal(now, before) {
		t.Errorf("timestamp keys in root: before %v, after %v; want one new key", before, now)
	}
	after("timestamp -r")

	// 3. targets key (held by the client).
	before = e.rootRoleKeys(gun, "targets")
	r = nc.ok("key", "rotate", gun, "targets")
	wantContains(t, r, r.Stdout, "Successfully rotated targets key for repository "+gun)
	now := e.rootRoleKeys(gun, "targets")
	if len(now) != 1 || slices.Equal(now, before) || !slices.Contains(nc.keyIDs()["targets"], now[0]) {
		t.Errorf("targets keys in root: before %v, after %v (local: %v); want one new key held locally", before, now, nc.keyIDs()["targets"])
	}
	after("targets")

	// 4. root key: the new root is signed by the old and the new key.
	before = e.rootRoleKeys(gun, "root")
	v := e.roleVersion(gun, "root")
	r = nc.stdin("yes\n").ok("key", "rotate", gun, "root")
	wantContains(t, r, r.Stdout, "Successfully rotated root key for repository "+gun)
	if now := e.rootRoleKeys(gun, "root"); len(now) != 1 || slices.Equal(now, before) {
		t.Errorf("root keys: before %v, after %v; want one new key", before, now)
	}
	if got := e.roleVersion(gun, "root"); got != v+1 {
		t.Errorf("root version after root rotation = %d, want %d", got, v+1)
	}
	if n := e.signatureCount(gun, "root"); n != 2 {
		t.Errorf("rotated root.json carries %d signatures, want 2 (old and new root key)", n)
	}
	after("root")

	// 5. A second key for the signer, held elsewhere (alice's laptop).
	laptop := e.signetDocker("laptop")
	laptop.ok("trust", "key", "generate", "alice2", "--dir", e.dir)
	alice2Pub := filepath.Join(e.dir, "alice2.pub")
	alice2ID := canonicalKeyIDFromPEM(t, alice2Pub)
	r = admin.ok("trust", "signer", "add", "--key", alice2Pub, "alice", gun)
	wantContains(t, r, r.Stdout, "Successfully added signer: alice to "+gun)
	st.signers["alice"] = sortedIDs(aliceID, alice2ID)
	after("delegation key add")

	// 6. Removing keys. The signer as a whole cannot go: it is the last
	// one of targets/releases.
	state := e.serverState(gun)
	r = admin.fail("trust", "signer", "remove", "alice", gun)
	wantContains(t, r, r.Output(), "targets/releases", "needs 1 signatures", "Add another signer first")
	t.Logf("signer remove of the last signer: %s", strings.TrimSpace(r.Output()))
	e.wantUnchanged("signet trust signer remove of the last signer", gun, state)
	// One of its two keys can go, but not while the roles are signed only
	// by that key: clients would then reject them and the whole repository
	// (the trap of notary#1500; before the fix signet uploaded such a
	// change and broke the repository for every client).
	nc.ok("delegation", "remove", gun, "targets/alice", aliceID)
	nc.ok("delegation", "remove", gun, releasesRole, aliceID)
	r = nc.fail("publish", gun)
	wantContains(t, r, r.Output(), "signed only by keys this change removes", "signet witness "+gun+" targets/alice targets/releases -p")
	t.Logf("removing the key that signed the roles: %s", strings.TrimSpace(r.Output()))
	e.wantUnchanged("removing the only key that signed targets/alice", gun, state)
	// The laptop (holding the remaining key) re-signs both roles, then the
	// removal goes through.
	lc := e.cliOn("signet", filepath.Join(laptop.config, "trust")).withEnv("NOTARY_DELEGATION_PASSPHRASE=" + dockerRepoPass)
	lc.ok("witness", gun, "targets/alice", releasesRole, "-p")
	check("witness by the remaining key", oldNotary, oldDocker)
	nc.ok("publish", gun)
	signer = laptop
	st.signers["alice"] = []string{alice2ID}
	for _, role := range []string{"targets/alice", releasesRole} {
		if ids := delegationKeyIDs(nc, gun, role); !slices.Equal(ids, []string{alice2ID}) {
			t.Errorf("%s keys after removing %s: %v, want [%s]", role, aliceID, ids, alice2ID)
		}
	}
	after("delegation key remove")
	// The last key cannot go: the role would fall below its threshold.
	state = e.serverState(gun)
	nc.ok("delegation", "remove", gun, releasesRole, alice2ID)
	r = nc.fail("publish", gun)
	wantContains(t, r, r.Output(), releasesRole, "threshold")
	t.Logf("removing the last key of %s: %s", releasesRole, strings.TrimSpace(r.Output()))
	e.wantUnchanged("removing the last key of "+releasesRole, gun, state)
	nc.ok("reset", gun, "--all")

	// 7. The targets key is lost (SignPath deletes it after setup on
	// purpose). Signers still sign; the targets role is rotated with the
	// root key alone. Every targets key goes: the current one and the one
	// rotated away in step 3.
	targetsID := e.rootRoleKeys(gun, "targets")[0]
	held := nc.keyIDs()["targets"]
	if !slices.Contains(held, targetsID) {
		t.Fatalf("the current targets key %s is not in the trust directory (targets keys: %v)", targetsID, held)
	}
	for _, id := range held {
		if err := os.Remove(filepath.Join(admin.config, "trust", "private", id+".key")); err != nil {
			t.Fatalf("deleting the targets key: %v", err)
		}
	}
	if ids := nc.keyIDs()["targets"]; len(ids) != 0 {
		t.Fatalf("targets keys left after deleting them: %v", ids)
	}
	publish("without-targets-key")
	check("losing the targets key", oldNotary, oldDocker)
	bob := newDelegationKey(t, e.dir, "bob")
	state = e.serverState(gun)
	r = admin.fail("trust", "signer", "add", "--key", bob.certFile, "bob", gun)
	wantContains(t, r, r.Output(), "targets")
	t.Logf("signer add without the targets key: %s", strings.TrimSpace(r.Output()))
	e.wantUnchanged("signer add without the targets key", gun, state)

	r = nc.ok("key", "rotate", gun, "targets")
	wantContains(t, r, r.Stdout, "Successfully rotated targets key for repository "+gun)
	now = e.rootRoleKeys(gun, "targets")
	if len(now) != 1 || now[0] == targetsID || !slices.Contains(nc.keyIDs()["targets"], now[0]) {
		t.Errorf("targets keys in root after recovery: %v (lost %s, local %v); want one new key held locally", now, targetsID, nc.keyIDs()["targets"])
	}
	after("targets key loss")
	// The new targets key signs: another signer can be added.
	r = admin.ok("trust", "signer", "add", "--key", bob.certFile, "bob", gun)
	wantContains(t, r, r.Stdout, "Successfully added signer: bob to "+gun)
	st.signers["bob"] = []string{bob.id}
	check("adding a signer with the new targets key", oldNotary, oldDocker)

	// Fresh clients trust the repository as it is now.
	check("all rotations (fresh clients)", e.notary("fresh"), e.docker("fresh", true))
	e.record("inspect after all rotations", mustInspect(oldDocker, gun))
	e.record("notary list --roles targets/releases after all rotations", oldNotary.ok("list", gun, "--roles", releasesRole).Stdout)
}

const releasesRole = "targets/releases"

func mustInspect(d *dockerClient, gun string) string {
	_, r := d.inspect(gun)
	return r.Stdout
}

func sortedIDs(ids ...string) []string {
	out := slices.Clone(ids)
	sort.Strings(out)
	return out
}

// delegationKeyIDs returns the key IDs `delegation list` shows for role.
func delegationKeyIDs(c *cliClient, gun, role string) []string {
	c.e.t.Helper()
	r := c.ok("delegation", "list", gun)
	var out []string
	in := false
	for _, row := range mustTable(c.e.t, r, delegationHeader...).project(c.e.t, "ROLE", "KEY IDS") {
		if row[0] != "" {
			in = row[0] == role
		}
		if in && row[1] != "" {
			out = append(out, row[1])
		}
	}
	sort.Strings(out)
	return out
}

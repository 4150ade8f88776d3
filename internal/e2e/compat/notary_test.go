package compat

import (
	"slices"
	"strconv"
	"strings"
)

// notaryBasic: init, add, addhash, status, publish, list, lookup, verify,
// remove, reset, witness, and a fresh client trusting on first use.
func notaryBasic(e *scenarioEnv) {
	t := e.t
	gun := "example.com/compat/basic"
	owner := e.notary("owner")
	payload, digest, size := e.writeFile("payload.txt", "signet compat payload: notary-basic\n")
	fake := e.fakeDigest("basic v2")
	sz := strconv.Itoa(size)

	mark := e.tg.logMark()
	owner.ok("init", gun)
	e.expectRequests(mark, "notary init", gun,
		"GET /v2/ 200",
		"GET /v2/<gun>/_trust/tuf/timestamp.key 200")

	r := owner.ok("add", gun, "v1", payload)
	wantContains(t, r, r.Stdout, `Addition of target "v1" to repository "`+gun+`" staged for next publish.`)
	r = owner.ok("addhash", gun, "v2", "123", "--sha256", fake)
	wantContains(t, r, r.Stdout, `Addition of target "v2" by sha256 hash to repository "`+gun+`" staged for next publish.`)
	r = owner.ok("status", gun)
	wantRows(t, r, mustTable(t, r, statusHeader...), statusHeader, [][]string{
		{"0", "create", "targets", "target", "v1"},
		{"1", "create", "targets", "target", "v2"},
	})

	mark = e.tg.logMark()
	r = owner.ok("publish", gun)
	wantContains(t, r, r.Stdout, "Successfully published changes for repository "+gun)
	e.expectRequests(mark, "first notary publish", gun,
		"GET /v2/ 200",
		"GET /v2/<gun>/_trust/tuf/root.json 404",
		"POST /v2/<gun>/_trust/tuf/ 200")
	if v := e.roleVersion(gun, "timestamp"); v != 1 {
		t.Errorf("timestamp version after the first publish = %d, want 1", v)
	}
	r = owner.ok("status", gun)
	wantContains(t, r, r.Stdout, "No unpublished changes for "+gun)

	mark = e.tg.logMark()
	r = owner.list(gun, [][]string{{"v1", digest, sz, "targets"}, {"v2", fake, "123", "targets"}})
	e.record("owner list", r.Stdout)
	e.expectRequests(mark, "notary list", gun,
		"GET /v2/ 200",
		"GET /v2/<gun>/_trust/tuf/timestamp.json 200")

	r = owner.ok("lookup", gun, "v1")
	if got, want := strings.TrimSpace(r.Stdout), "v1 sha256:"+digest+" "+sz; got != want {
		t.Fatalf("lookup = %q, want %q\n%s", got, want, r)
	}
	r = owner.fail("lookup", gun, "nope")
	wantContains(t, r, r.Output(), "No valid trust data for nope")

	content := "signet compat payload: notary-basic\n"
	r = owner.stdin(content).ok("verify", gun, "v1")
	if r.Stdout != content {
		t.Fatalf("verify should copy the verified input to stdout\n%s", r)
	}
	r = owner.stdin("tampered\n").fail("verify", gun, "v1")
	// The client checks sha256 or sha512 first, at random (map order).
	wantContains(t, r, r.Output(), "data not present in the trusted collection", "checksum for v1 did not match")

	// remove + add, then reset one change and then all.
	r = owner.ok("remove", gun, "v2")
	wantContains(t, r, r.Stdout, "Removal of v2 from "+gun+" staged for next publish.")
	owner.ok("add", gun, "v3", payload)
	owner.ok("reset", gun, "-n", "1")
	r = owner.ok("status", gun)
	wantRows(t, r, mustTable(t, r, statusHeader...), statusHeader, [][]string{
		{"0", "delete", "targets", "target", "v2"},
	})
	r = owner.ok("reset", gun, "--all")
	wantContains(t, r, r.Stdout, "Successfully reset specified changes for repository "+gun)
	r = owner.ok("status", gun)
	wantContains(t, r, r.Stdout, "No unpublished changes for "+gun)

	owner.ok("remove", gun, "v2")
	owner.ok("publish", gun)
	owner.list(gun, [][]string{{"v1", digest, sz, "targets"}})

	// witness re-signs targets without changing it.
	before := e.roleVersion(gun, "targets")
	r = owner.ok("witness", gun, "targets")
	wantContains(t, r, r.Stdout, "- targets")
	r = owner.ok("status", gun)
	wantRows(t, r, mustTable(t, r, statusHeader...), statusHeader, [][]string{
		{"0", "update", "targets", "witness", ""},
	})
	owner.ok("publish", gun)
	if after := e.roleVersion(gun, "targets"); after != before+1 {
		t.Errorf("targets version after witness+publish = %d, want %d", after, before+1)
	}

	// A client with an empty trust dir trusts the root on first use.
	fresh := e.notary("fresh")
	mark = e.tg.logMark()
	r = fresh.list(gun, [][]string{{"v1", digest, sz, "targets"}})
	e.record("fresh list", r.Stdout)
	e.expectRequests(mark, "notary list (empty trust dir)", gun,
		"GET /v2/ 200",
		"GET /v2/<gun>/_trust/tuf/root.json 200",
		"GET /v2/<gun>/_trust/tuf/timestamp.json 200")

	e.capture("notary-0.7", "basic", gun, map[string]string{"private": owner.trustDir})
}

// notaryDelegations: delegation add (all paths and path-restricted),
// delegation list/remove, server-managed snapshot, and delegates that
// publish holding only their own keys.
func notaryDelegations(e *scenarioEnv) {
	t := e.t
	gun := "example.com/compat/delegations"
	owner := e.notary("owner")
	payload, digest, size := e.writeFile("payload.txt", "signet compat payload: notary-delegations\n")
	sz := strconv.Itoa(size)
	rel := newDelegationKey(t, e.dir, "releases")
	team := newDelegationKey(t, e.dir, "team")

	owner.ok("init", gun)
	owner.ok("add", gun, "v1", payload)
	owner.ok("publish", gun)

	r := owner.ok("delegation", "add", gun, "targets/releases", rel.certFile, "--all-paths")
	wantContains(t, r, r.Stdout, "Addition of delegation role targets/releases with keys ["+rel.id+"]")
	r = owner.ok("delegation", "add", gun, "targets/team", team.certFile, "--paths", "team/")
	wantContains(t, r, r.Stdout, `with paths [team/]`)
	owner.ok("publish", gun)

	r = owner.ok("delegation", "list", gun)
	wantRows(t, r, mustTable(t, r, delegationHeader...), delegationHeader, [][]string{
		{"targets/releases", `"" <all paths>`, rel.id, "1"},
		{"targets/team", "team/", team.id, "1"},
	})
	e.record("delegation list", r.Stdout)

	// Make the snapshot server-managed so that delegates need no snapshot key.
	mark := e.tg.logMark()
	r = owner.ok("key", "rotate", gun, "snapshot", "-r")
	wantContains(t, r, r.Stdout, "Successfully rotated snapshot key for repository "+gun)
	e.expectRequests(mark, "notary key rotate snapshot -r", gun,
		"POST /v2/<gun>/_trust/tuf/snapshot.key 200",
		"POST /v2/<gun>/_trust/tuf/ 200")
	if ids := owner.keyIDs(); len(ids["snapshot"]) != 0 || len(ids["targets"]) != 1 || len(ids["root"]) != 1 {
		t.Fatalf("after key rotate snapshot -r the owner should hold root+targets keys only, has %v", ids)
	}

	// The delegate holds nothing but the two delegation keys.
	deleg := e.notary("delegate")
	deleg.ok("key", "import", rel.keyFile, "--role", "targets/releases")
	deleg.ok("key", "import", team.keyFile, "--role", "targets/team")
	ids := deleg.keyIDs()
	if !slices.Equal(ids["targets/releases"], []string{rel.id}) || !slices.Equal(ids["targets/team"], []string{team.id}) || len(ids) != 2 {
		t.Fatalf("delegate key list = %v, want only %s (releases) and %s (team)", ids, rel.id, team.id)
	}
	deleg.list(gun, [][]string{{"v1", digest, sz, "targets"}})

	deleg.ok("add", gun, "rel-v1", payload, "--roles", "targets/releases")
	deleg.ok("add", gun, "team/v1", payload, "--roles", "targets/team")
	mark = e.tg.logMark()
	deleg.ok("publish", gun)
	e.expectRequests(mark, "delegate publish", gun, "POST /v2/<gun>/_trust/tuf/ 200")

	r = owner.list(gun, [][]string{
		{"rel-v1", digest, sz, "targets/releases"},
		{"team/v1", digest, sz, "targets/team"},
		{"v1", digest, sz, "targets"},
	})
	e.record("owner list after delegate publish", r.Stdout)
	deleg.list(gun, [][]string{{"team/v1", digest, sz, "targets/team"}}, "--roles", "targets/team")

	// A path outside the delegation's paths is refused (by the client).
	deleg.ok("add", gun, "outside", payload, "--roles", "targets/team")
	r = deleg.fail("publish", gun)
	wantContains(t, r, r.Output(), "Could not add all targets")
	deleg.ok("reset", gun, "--all")

	e.capture("notary-0.7", "delegations", gun, map[string]string{
		"private":          owner.trustDir,
		"delegate-private": deleg.trustDir,
	})

	// Removing the team role drops its targets from listings.
	r = owner.ok("delegation", "remove", gun, "targets/team", "-y")
	wantContains(t, r, r.Stdout, "Forced removal (including all keys and paths) of delegation role targets/team")
	owner.ok("publish", gun)
	r = owner.ok("delegation", "list", gun)
	wantRows(t, r, mustTable(t, r, delegationHeader...), delegationHeader, [][]string{
		{"targets/releases", `"" <all paths>`, rel.id, "1"},
	})
	r = owner.list(gun, [][]string{
		{"rel-v1", digest, sz, "targets/releases"},
		{"v1", digest, sz, "targets"},
	})
	e.record("owner list after delegation remove", r.Stdout)
}

// notaryRotate: key rotation of snapshot and timestamp (server-managed) and
// targets (client), seen by the rotating client, a client that cached the
// old root, and a fresh one.
func notaryRotate(e *scenarioEnv) {
	t := e.t
	gun := "example.com/compat/rotate"
	owner := e.notary("owner")
	payload, digest, size := e.writeFile("payload.txt", "signet compat payload: notary-rotate\n")
	sz := strconv.Itoa(size)

	owner.ok("init", gun)
	owner.ok("add", gun, "v1", payload)
	owner.ok("publish", gun)
	early := e.notary("early")
	early.list(gun, [][]string{{"v1", digest, sz, "targets"}})
	if v := e.roleVersion(gun, "root"); v != 1 {
		t.Fatalf("root version = %d, want 1", v)
	}
	tsKeys := e.rootRoleKeys(gun, "timestamp")

	owner.ok("key", "rotate", gun, "snapshot", "-r")
	if v := e.roleVersion(gun, "root"); v != 2 {
		t.Errorf("root version after snapshot rotation = %d, want 2", v)
	}

	mark := e.tg.logMark()
	r := owner.ok("key", "rotate", gun, "timestamp", "-r")
	wantContains(t, r, r.Stdout, "Successfully rotated timestamp key for repository "+gun)
	e.expectRequests(mark, "notary key rotate timestamp -r", gun,
		"POST /v2/<gun>/_trust/tuf/timestamp.key 200",
		"POST /v2/<gun>/_trust/tuf/ 200")
	if v := e.roleVersion(gun, "root"); v != 3 {
		t.Errorf("root version after timestamp rotation = %d, want 3", v)
	}
	if now := e.rootRoleKeys(gun, "timestamp"); slices.Equal(now, tsKeys) || len(now) != 1 {
		t.Errorf("timestamp keys in root: before %v, after %v; want one new key", tsKeys, now)
	}

	before := owner.keyIDs()["targets"]
	r = owner.ok("key", "rotate", gun, "targets")
	wantContains(t, r, r.Stdout, "Successfully rotated targets key for repository "+gun)
	after := owner.keyIDs()["targets"]
	if len(after) != 1 || slices.Equal(before, after) {
		t.Fatalf("targets key before %v, after %v: want one new key", before, after)
	}
	if v := e.roleVersion(gun, "root"); v != 4 {
		t.Errorf("root version after targets rotation = %d, want 4", v)
	}
	if got := e.rootRoleKeys(gun, "targets"); !slices.Equal(got, after) {
		t.Errorf("root lists targets keys %v, the client holds %v", got, after)
	}

	// Root rotation: the new root is signed by the old and the new root key;
	// clients holding the old root must accept it.
	oldRoot := e.rootRoleKeys(gun, "root")
	r = owner.ok("key", "rotate", gun, "root")
	wantContains(t, r, r.Stdout, "Aborting action.")
	if v := e.roleVersion(gun, "root"); v != 4 {
		t.Fatalf("root version after an aborted root rotation = %d, want 4", v)
	}
	r = owner.stdin("yes\n").ok("key", "rotate", gun, "root")
	wantContains(t, r, r.Stdout, "Successfully rotated root key for repository "+gun)
	if v := e.roleVersion(gun, "root"); v != 5 {
		t.Errorf("root version after root rotation = %d, want 5", v)
	}
	if newRoot := e.rootRoleKeys(gun, "root"); len(newRoot) != 1 || slices.Equal(newRoot, oldRoot) {
		t.Errorf("root keys before %v, after %v: want one new key", oldRoot, newRoot)
	}
	if n := e.signatureCount(gun, "root"); n != 2 {
		t.Errorf("rotated root.json carries %d signatures, want 2 (old and new root key)", n)
	}

	owner.ok("add", gun, "v2", payload)
	owner.ok("publish", gun)
	want := [][]string{{"v1", digest, sz, "targets"}, {"v2", digest, sz, "targets"}}
	r = owner.list(gun, want)
	e.record("owner list after rotations", r.Stdout)

	// The early client holds root v1 and must walk to root v5.
	mark = e.tg.logMark()
	r = early.list(gun, want)
	e.record("early client list after rotations", r.Stdout)
	e.expectRequests(mark, "notary list with a stale cached root", gun,
		"GET /v2/<gun>/_trust/tuf/timestamp.json 200")

	fresh := e.notary("fresh")
	r = fresh.list(gun, want)
	e.record("fresh client list after rotations", r.Stdout)

	e.capture("notary-0.7", "rotate", gun, map[string]string{"private": owner.trustDir})
}

// notaryDelete: delete --remote removes the repository; clients without a
// cache then find no trust data; the GUN can be initialised again.
func notaryDelete(e *scenarioEnv) {
	t := e.t
	gun := "example.com/compat/delete"
	owner := e.notary("owner")
	payload, digest, size := e.writeFile("payload.txt", "signet compat payload: notary-delete\n")
	sz := strconv.Itoa(size)

	owner.ok("init", gun)
	owner.ok("add", gun, "v1", payload)
	owner.ok("publish", gun)
	cached := e.notary("cached")
	cached.list(gun, [][]string{{"v1", digest, sz, "targets"}})

	mark := e.tg.logMark()
	r := owner.ok("delete", gun, "--remote")
	wantContains(t, r, r.Stdout, "Successfully deleted local and remote trust data for repository "+gun)
	e.expectRequests(mark, "notary delete --remote", gun, "DELETE /v2/<gun>/_trust/tuf/ 200")

	for _, role := range []string{"root", "timestamp", "targets", "snapshot"} {
		if status, body := e.tg.get(t, "/v2/"+gun+"/_trust/tuf/"+role+".json"); status != 404 {
			t.Errorf("GET %s.json after delete: status %d, want 404: %s", role, status, body)
		}
	}

	wantNoTrust := "does not have trust data for " + gun
	r = e.notary("never").fail("list", "example.com/compat/never-existed")
	wantContains(t, r, r.Output(), "does not have trust data for example.com/compat/never-existed")
	r = owner.fail("list", gun)
	wantContains(t, r, r.Output(), wantNoTrust)
	e.record("owner list after delete", r.Output())
	r = e.notary("fresh").fail("list", gun)
	wantContains(t, r, r.Output(), wantNoTrust)
	e.record("fresh list after delete", r.Output())

	// A client that cached the repository falls back to its cache when the
	// server answers 404 (observed with the reference; logged only).
	r = cached.run("list", gun)
	t.Logf("client with a cache, after delete: exit %d (0 on the reference: it falls back to its cached metadata)", r.Code)

	// The GUN can be created again, with a new root.
	r = owner.ok("init", gun, "-p")
	wantContains(t, r, r.Stdout, "Successfully published changes for repository "+gun)
	r = e.notary("fresh2").list(gun, nil)
	wantContains(t, r, r.Stdout, "No targets present in this repository.")
	owner.ok("add", gun, "again", payload, "-p")
	r = e.notary("fresh3").list(gun, [][]string{{"again", digest, sz, "targets"}})
	e.record("list after re-init", r.Stdout)
}

// notaryTwoWriters: two clients holding the same keys publish one after
// the other from the same cached state; the second publish must build on
// the first (the client refreshes before applying its changelist), and a
// stale client must then see both targets.
func notaryTwoWriters(e *scenarioEnv) {
	t := e.t
	gun := "example.com/compat/writers"
	first := e.notary("first")
	payload, digest, size := e.writeFile("payload.txt", "signet compat payload: notary-two-writers\n")
	sz := strconv.Itoa(size)

	first.ok("init", gun)
	first.ok("add", gun, "base", payload, "-p")
	second := e.notary("second")
	copyDir(t, first.trustDir, second.trustDir)

	first.ok("add", gun, "from-first", payload, "-p")
	v := e.roleVersion(gun, "targets")
	mark := e.tg.logMark()
	second.ok("add", gun, "from-second", payload, "-p")
	e.expectRequests(mark, "publish from a stale cache", gun,
		"GET /v2/<gun>/_trust/tuf/timestamp.json 200",
		"POST /v2/<gun>/_trust/tuf/ 200")
	if got := e.roleVersion(gun, "targets"); got != v+1 {
		t.Errorf("targets version after the second writer = %d, want %d", got, v+1)
	}
	want := [][]string{
		{"base", digest, sz, "targets"},
		{"from-first", digest, sz, "targets"},
		{"from-second", digest, sz, "targets"},
	}
	r := first.list(gun, want)
	e.record("first writer list", r.Stdout)
	second.list(gun, want)
}

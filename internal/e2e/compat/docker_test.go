package compat

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// dockerSigner: docker trust key generate, signer add (initialises the
// repository with a server-managed snapshot), inspect, sign of a tag that
// is already signed (the daemonless path), revoke, signer remove; and the
// CA lookup in $DOCKER_CONFIG/tls/<host:port>/.
func dockerSigner(e *scenarioEnv) {
	t := e.t
	gun := "example.com/compat/docker"
	admin := e.docker("admin", true)

	r := admin.ok("trust", "key", "generate", "alice", "--dir", e.dir)
	wantContains(t, r, r.Stdout, "Successfully generated and loaded private key.")
	pub := filepath.Join(e.dir, "alice.pub")
	pubPEM, err := os.ReadFile(pub)
	if err != nil {
		t.Fatalf("docker trust key generate wrote no alice.pub: %v\n%s", err, r)
	}
	if !strings.Contains(string(pubPEM), "role: alice") {
		t.Fatalf("alice.pub lacks the role header:\n%s", pubPEM)
	}
	aliceID := canonicalKeyIDFromPEM(t, pub)
	if _, err := os.Stat(filepath.Join(admin.config, "trust", "private", aliceID+".key")); err != nil {
		t.Fatalf("private key of alice not stored under its canonical ID %s: %v", aliceID, err)
	}

	mark := e.tg.logMark()
	r = admin.ok("trust", "signer", "add", "--key", pub, "alice", gun)
	wantContains(t, r, r.Stdout,
		`Initializing signed repository for `+gun,
		`Successfully added signer: alice to `+gun)
	e.expectRequests(mark, "docker trust signer add (new repository)", gun,
		"GET /v2/ 200",
		"GET /v2/<gun>/_trust/tuf/root.json 404",
		"GET /v2/<gun>/_trust/tuf/timestamp.key 200",
		"GET /v2/<gun>/_trust/tuf/snapshot.key 200",
		"POST /v2/<gun>/_trust/tuf/ 200")

	repo, r := admin.inspect(gun)
	if repo.Name != gun || len(repo.SignedTags) != 0 {
		t.Fatalf("inspect after signer add: want %s with no signed tags\n%s", gun, r)
	}
	if ids, ok := keysOf(repo.Signers, "alice"); !ok || !slices.Equal(ids, []string{aliceID}) || len(repo.Signers) != 1 {
		t.Fatalf("inspect signers: want only alice with key %s\n%s", aliceID, r)
	}
	rootIDs, _ := keysOf(repo.AdministrativeKeys, "Root")
	repoIDs, _ := keysOf(repo.AdministrativeKeys, "Repository")
	if len(repo.AdministrativeKeys) != 2 || len(rootIDs) != 1 || len(repoIDs) != 1 {
		t.Fatalf("inspect administrative keys: want one Root and one Repository key\n%s", r)
	}
	if got := e.rootRoleKeys(gun, "root"); !slices.Equal(got, rootIDs) {
		t.Errorf("inspect Root key %v is not root.json's root key %v", rootIDs, got)
	}
	if got := e.rootRoleKeys(gun, "targets"); !slices.Equal(got, repoIDs) {
		t.Errorf("inspect Repository key %v is not root.json's targets key %v", repoIDs, got)
	}
	if ids := admin.notary().keyIDs(); len(ids["snapshot"]) != 0 {
		t.Errorf("docker trust signer add should leave the snapshot key with the server; local keys %v", ids)
	}
	e.record("inspect after signer add", r.Stdout)

	// Put the tag into targets as the repository admin (what `docker trust
	// sign` does with a daemon), so that `docker trust sign` re-signs it.
	digest := e.fakeDigest("docker v1")
	nd := admin.notary()
	nd.ok("addhash", gun, "v1", "1234", "--sha256", digest, "-p")
	repo, r = admin.inspect(gun)
	if got := repo.signedTags(); !slices.Equal(got, []string{"v1 " + digest + " Repo Admin"}) {
		t.Fatalf("inspect after addhash into targets: signed tags %q\n%s", got, r)
	}

	mark = e.tg.logMark()
	r = admin.ok("trust", "sign", gun+":v1")
	wantContains(t, r, r.Stdout,
		"Existing signatures for tag v1 digest "+digest,
		"Successfully signed "+gun+":v1")
	e.expectRequests(mark, "docker trust sign (existing tag)", gun, "POST /v2/<gun>/_trust/tuf/ 200")
	repo, r = admin.inspect(gun)
	if got := repo.signedTags(); !slices.Equal(got, []string{"v1 " + digest + " alice"}) {
		t.Fatalf("inspect after docker trust sign: signed tags %q\n%s", got, r)
	}
	e.record("inspect after sign", r.Stdout)
	for _, role := range []string{"targets/alice", "targets/releases"} {
		nd.list(gun, [][]string{{"v1", digest, "1234", role}}, "--roles", role)
	}

	r = admin.ok("trust", "inspect", "--pretty", gun)
	wantContains(t, r, r.Stdout,
		"Signatures for "+gun,
		"List of signers and their keys for "+gun,
		"Administrative keys for "+gun,
		"Repository Key:\t"+repoIDs[0],
		"Root Key:\t"+rootIDs[0])
	if !regexp.MustCompile(`(?m)^v1\s+` + digest + `\s+alice\s*$`).MatchString(r.Stdout) {
		t.Fatalf("pretty inspect lacks the row v1/%s/alice\n%s", digest, r)
	}
	if !regexp.MustCompile(`(?m)^alice\s+` + aliceID[:12] + `\s*$`).MatchString(r.Stdout) {
		t.Fatalf("pretty inspect lacks the signer row alice/%s\n%s", aliceID[:12], r)
	}

	e.capture("docker-trust", "signer", gun, map[string]string{"private": filepath.Join(admin.config, "trust")}, pub)

	// Without the CA in $DOCKER_CONFIG/tls/<host:port>/ the server is not
	// trusted (example.com is not a loopback registry).
	noCA := e.docker("noca", false)
	r = noCA.run("-D", "trust", "inspect", gun)
	if r.Succeeded() {
		t.Fatalf("inspect without the CA should fail:\n%s", r)
	}
	wantContains(t, r, r.Output(), "x509: certificate signed by unknown authority")

	// A repository the server does not know.
	r = admin.run("trust", "inspect", "example.com/compat/nothing")
	if r.Succeeded() || strings.TrimSpace(r.Stdout) != "[]" {
		t.Fatalf("inspect of an unknown repository should print [] and fail:\n%s", r)
	}
	wantContains(t, r, r.Stderr, "no signatures or cannot access example.com/compat/nothing")

	r = admin.ok("trust", "revoke", "-y", gun+":v1")
	wantContains(t, r, r.Stdout, "Successfully deleted signature for "+gun+":v1")
	repo, r = admin.inspect(gun)
	if got := repo.signedTags(); !slices.Equal(got, []string{"v1 " + digest + " Repo Admin"}) {
		t.Fatalf("inspect after revoke (tag still in targets): signed tags %q\n%s", got, r)
	}
	nd.list(gun, nil, "--roles", "targets/alice")
	e.record("inspect after revoke", r.Stdout)

	// Docker 28.2.2 removes a signer only when it is the last signer of
	// targets/releases and the prompt is answered "y" (with -f, or when it
	// is not the last signer, it silently does nothing — a CLI bug).
	r = admin.stdin("y\n").ok("trust", "signer", "remove", "alice", gun)
	wantContains(t, r, r.Stdout, "Successfully removed alice from "+gun)
	repo, r = admin.inspect(gun)
	if len(repo.Signers) != 0 {
		t.Fatalf("inspect after signer remove: signers left\n%s", r)
	}
	r = nd.ok("delegation", "list", gun)
	tb := mustTable(t, r, delegationHeader...)
	if roles := tb.project(t, "ROLE"); !slices.Equal(flatten(roles), []string{"targets/releases"}) {
		t.Fatalf("delegations after signer remove: %v, want only targets/releases (without keys)\n%s", roles, r)
	}
	e.record("inspect after signer remove", repo.Name+" "+strings.Join(repo.signedTags(), ";"))
}

func flatten(rows [][]string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

// dockerRegistry: a real image in a real registry (docker-registry, pushed
// with skopeo from an OCI layout built here), signed for the GUN
// 127.0.0.1:<port>/test/app. Docker treats loopback registries as insecure
// and then does not verify the trust server's certificate either, so this
// client has no CA at all.
func dockerRegistry(e *scenarioEnv) {
	t := e.t
	reg := startRegistry(t)
	e.norm.replace(reg.Host, "<registry>")
	layout := writeOCILayout(t, filepath.Join(e.dir, "oci"), "v1")
	reg.push(t, e.dir, layout, "test/app", "v1")
	digest, size := reg.manifest(t, "test/app", "v1")
	e.norm.keep[digest] = true
	gun := reg.Host + "/test/app"

	d := e.docker("loopback", false)
	d.ok("trust", "key", "generate", "bob", "--dir", e.dir)
	r := d.ok("trust", "signer", "add", "--key", filepath.Join(e.dir, "bob.pub"), "bob", gun)
	wantContains(t, r, r.Stdout, "Successfully added signer: bob to "+gun)

	d.notary().ok("addhash", gun, "v1", size, "--sha256", digest, "-p")
	r = d.ok("trust", "sign", gun+":v1")
	wantContains(t, r, r.Stdout, "Successfully signed "+gun+":v1")

	repo, r := d.inspect(gun + ":v1")
	if got := repo.signedTags(); !slices.Equal(got, []string{"v1 " + digest + " bob"}) {
		t.Fatalf("inspect: signed tags %q, want v1 → the registry's manifest digest %s signed by bob\n%s", got, digest, r)
	}
	e.record("inspect", r.Stdout)
	d.notary().list(gun, [][]string{{"v1", digest, size, "targets/releases"}}, "--roles", "targets/releases")

	e.capture("docker-trust", "registry", gun, map[string]string{"private": filepath.Join(d.config, "trust")},
		filepath.Join(e.dir, "bob.pub"))
}

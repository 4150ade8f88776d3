package mirror

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/inproc"
	"github.com/signet-trust/signet/internal/e2e/reference"
)

func startReference(t *testing.T) trustServer {
	t.Helper()
	r := reference.Start(t, false)
	return trustServer{name: "the reference", url: r.URL, caFile: r.CAFile, client: e2etest.HTTPSClient(t, r.CAFile)}
}

func startSignet(t *testing.T, o inproc.ServerOptions) trustServer {
	t.Helper()
	s := inproc.StartServer(t, o)
	return trustServer{name: "signet", url: s.URL, caFile: s.CAFile, client: s.Client}
}

// TestMirrorFromReference: a repository the real notary client built on the
// reference notary-server — a root key rotation, a delegation, a
// client-held snapshot — mirrored into signet-server; then every client
// goes on with nothing changed but the server URL.
func TestMirrorFromReference(t *testing.T) {
	e2etest.Need(t, "notary")
	ref := startReference(t)
	// signet-server on PostgreSQL here (SQLite in the other tests).
	sig := startSignet(t, inproc.ServerOptions{Flags: []string{"--db", e2etest.PostgresDB(t, "signet_mirror_")}})
	dir := t.TempDir()
	gun := "example.com/mirror/notary"
	p1 := writeFile(t, dir, "p1.txt", "mirror payload one\n")

	owner := newNotary(t, dir, "owner")
	owner.ok(ref, "init", gun)
	owner.ok(ref, "add", gun, "v1", p1)
	owner.ok(ref, "publish", gun)
	pinned := newNotary(t, dir, "pinned") // trusts root version 1
	pinned.wantList(ref, gun, "pinned", "v1 targets")

	rel := newDelegationKey(t, dir, "releases")
	owner.ok(ref, "delegation", "add", gun, "targets/releases", rel.certFile, "--all-paths")
	owner.ok(ref, "publish", gun)
	owner.ok(ref, "key", "import", rel.keyFile, "--role", "targets/releases")
	owner.ok(ref, "add", gun, "rel-v1", p1, "--roles", "targets/releases")
	owner.ok(ref, "publish", gun)
	r := owner.yes().ok(ref, "key", "rotate", gun, "root")
	wantIn(t, "root rotation", r.Stdout, "Successfully rotated root key")
	owner.wantList(ref, gun, "owner", "v1 targets", "rel-v1 targets/releases")
	roles := []string{"targets/releases"}
	before := ref.state(t, gun, roles...)
	if !strings.HasPrefix(before["2.root"], "200 ") || before["3.root"] != "404" {
		t.Fatalf("the reference should hold root versions 1 and 2, not 3: %.20s, %.20s", before["2.root"], before["3.root"])
	}
	ownerAtMirror := filepath.Join(dir, "owner-at-mirror")
	copyDir(t, owner.trustDir, ownerAtMirror)

	sc := newSignet(t, dir)
	out := sc.mirror(ref, sig, 0, gun)
	wantIn(t, "mirror", out, gun+": copied", "root versions 1-2", "notary -s "+sig.url+" key rotate "+gun+" timestamp -r")
	sameBytes(t, "after the mirror, signet and the reference", before, sig.state(t, gun, roles...))

	// Clients: fresh, the owner's trust directory, one that trusted root v1.
	want := []string{"v1 targets", "rel-v1 targets/releases"}
	newNotary(t, dir, "fresh").wantList(sig, gun, "a fresh client", want...)
	owner.wantList(sig, gun, "the owner", want...)
	pinned.wantList(sig, gun, "a client that trusted root v1", want...)

	// Again: nothing to do, nothing changed.
	out = sc.mirror(ref, sig, 0, gun)
	wantIn(t, "second mirror", out, gun+": already up to date")
	sameBytes(t, "after a second mirror", before, sig.state(t, gun, roles...))

	// Publishing waits for the timestamp key to move…
	owner.ok(sig, "add", gun, "v2", p1)
	r = owner.fail(sig, "publish", gun)
	wantIn(t, "publish before the timestamp key moved", r.Output(), "timestamp")
	sameBytes(t, "after a refused publish", before, sig.state(t, gun, roles...))
	// …which the owner moves as to any server.
	r = owner.ok(sig, "key", "rotate", gun, "timestamp", "-r")
	wantIn(t, "timestamp rotation", r.Stdout, "Successfully rotated timestamp key for repository "+gun)
	owner.ok(sig, "publish", gun)
	want = append(want, "v2 targets")
	owner.wantList(sig, gun, "the owner after the move", want...)
	newNotary(t, dir, "fresh2").wantList(sig, gun, "a fresh client after the move", want...)
	pinned.wantList(sig, gun, "the client that trusted root v1, after the move", want...)
	moved := sig.state(t, gun, roles...)

	// Mirroring the old server again changes nothing here.
	out = sc.mirror(ref, sig, 0, gun)
	wantIn(t, "mirror after the move", out, "this server holds newer metadata")
	sameBytes(t, "a mirror after the move", moved, sig.state(t, gun, roles...))

	// Someone publishes on the old server too: the histories diverged.
	stale := notaryAt(t, dir, ownerAtMirror, notaryPassphrases)
	stale.ok(ref, "add", gun, "elsewhere", p1)
	stale.ok(ref, "publish", gun)
	out = sc.mirror(ref, sig, 1, gun)
	wantIn(t, "a diverged mirror", out, gun+": not mirrored", "conflicts with the source's: snapshot version", "Nothing was imported")
	sameBytes(t, "a refused mirror", moved, sig.state(t, gun, roles...))
}

// TestMirrorDockerRepository: a repository docker trust set up on the
// reference — the snapshot key held by the server, signers in delegations.
// Neither key of the old server can move on its own: each new root needs a
// snapshot the old server's key must sign and a timestamp only its key
// can. So, as docs/migrate.md says, the owner first takes the snapshot key
// back on the old server, then mirrors, then moves the timestamp key (and
// hands the snapshot key to signet-server, as docker expects). Without that
// first step the move is refused, and nothing changes.
func TestMirrorDockerRepository(t *testing.T) {
	e2etest.Need(t, "docker", "notary")
	ref := startReference(t)
	sig := startSignet(t, inproc.ServerOptions{})
	dir := t.TempDir()
	sc := newSignet(t, dir)

	setup := func(gun string) *dockerCLI {
		t.Helper()
		name := strings.ReplaceAll(gun, "/", "_")
		admin := newDocker(t, dir, name, ref)
		keyDir := filepath.Join(dir, "keys-"+name)
		if err := os.MkdirAll(keyDir, 0o700); err != nil {
			t.Fatal(err)
		}
		admin.ok("trust", "key", "generate", "alice", "--dir", keyDir)
		admin.ok("trust", "signer", "add", "--key", filepath.Join(keyDir, "alice.pub"), "alice", gun)
		sum := sha256.Sum256([]byte(gun))
		admin.notary().ok(ref, "addhash", gun, "v1", "1234", "--sha256", hex.EncodeToString(sum[:]), "-p")
		admin.ok("trust", "sign", gun+":v1") // the tag is known: daemonless
		return admin
	}
	wantTags := []string{"v1 alice"}

	gun := "example.com/mirror/docker"
	admin := setup(gun)
	// Step 1, on the old server: the snapshot key comes to the owner.
	r := admin.notary().ok(ref, "key", "rotate", gun, "snapshot")
	wantIn(t, "snapshot key taken back", r.Stdout, "Successfully rotated snapshot key for repository "+gun)
	// Step 2: mirror.
	out := sc.mirror(ref, sig, 0, gun)
	wantIn(t, "mirror", out, gun+": copied")
	sameBytes(t, "after the mirror", ref.state(t, gun, "targets/releases", "targets/alice"), sig.state(t, gun, "targets/releases", "targets/alice"))
	fresh := newDocker(t, dir, "fresh", sig)
	if tags, signers := fresh.signedTags(gun); strings.Join(tags, ";") != strings.Join(wantTags, ";") || strings.Join(signers, ",") != "alice" {
		t.Fatalf("a fresh docker client on signet: tags %q, signers %q", tags, signers)
	}
	// Step 3, on signet-server: the timestamp key, then the snapshot key.
	admin.point(sig)
	r = admin.notary().ok(sig, "key", "rotate", gun, "timestamp", "-r")
	wantIn(t, "timestamp rotation", r.Stdout, "Successfully rotated timestamp key")
	r = admin.notary().ok(sig, "key", "rotate", gun, "snapshot", "-r")
	wantIn(t, "snapshot rotation", r.Stdout, "Successfully rotated snapshot key")
	// docker trust goes on as before.
	admin.ok("trust", "key", "generate", "bob", "--dir", dir)
	admin.ok("trust", "signer", "add", "--key", filepath.Join(dir, "bob.pub"), "bob", gun)
	if tags, signers := fresh.signedTags(gun); strings.Join(tags, ";") != strings.Join(wantTags, ";") || strings.Join(signers, ",") != "alice,bob" {
		t.Fatalf("the fresh docker client after the move: tags %q, signers %q", tags, signers)
	}
	if tags, _ := admin.signedTags(gun); strings.Join(tags, ";") != strings.Join(wantTags, ";") {
		t.Fatalf("the owner's docker client after the move: tags %q", tags)
	}

	// Without step 1: the timestamp key cannot move, and nothing changes.
	stuck := "example.com/mirror/docker-stuck"
	admin2 := setup(stuck)
	out = sc.mirror(ref, sig, 0, stuck)
	wantIn(t, "mirror", out, stuck+": copied", "if the old server held the snapshot key too, see docs/migrate.md")
	before := sig.state(t, stuck, "targets/releases", "targets/alice")
	r = admin2.notary().fail(sig, "key", "rotate", stuck, "timestamp", "-r")
	wantIn(t, "a timestamp rotation without the snapshot key", r.Output(), "snapshot")
	sameBytes(t, "after a refused rotation", before, sig.state(t, stuck, "targets/releases", "targets/alice"))
}

package mirror

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/inproc"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// fakeSource serves files a test builds, over TLS.
func fakeSource(t *testing.T, srv *tuftest.Server) trustServer {
	t.Helper()
	ts := httptest.NewTLSServer(srv)
	t.Cleanup(ts.Close)
	ca := filepath.Join(t.TempDir(), "fake-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return trustServer{name: "a fake source", url: ts.URL, caFile: ca, client: ts.Client()}
}

// TestMirrorRefusals: sources whose history is broken are refused, and
// nothing is stored.
func TestMirrorRefusals(t *testing.T) {
	sig := startSignet(t, inproc.ServerOptions{})
	dir := t.TempDir()
	sc := newSignet(t, dir)
	now := time.Now()
	gun := "example.com/mirror/broken"

	// A second root version the first root's keys never signed: whoever
	// holds the server's keys swapped the root key.
	r := tuftest.NewRepo(t, gun, now)
	r.AddTarget(tuf.RoleTargets, "v1", []byte("one"))
	r.SignAll()
	root1 := r.Signed[tuf.RoleRoot]
	r.SetRoleKeys(tuf.RoleRoot, tuftest.NewRootKey(t, gun, now))
	r.Bump(tuf.RoleRoot)
	r.Sign(tuf.RoleRoot) // the new key alone
	r.Bump(tuf.RoleSnapshot)
	r.SignSnapshot()
	r.Bump(tuf.RoleTimestamp)
	r.SignTimestamp()
	broken := tuftest.NewServer(gun)
	broken.Serve(tuf.RoleRoot, root1)
	broken.Publish(r)
	src := fakeSource(t, broken)

	out := sc.mirror(src, sig, 1, gun)
	wantIn(t, "a broken root chain", out, gun+": not mirrored", "root version 2 (after version 1): could not rotate trust",
		"not signed by a threshold of the keys of root version 1")
	for _, path := range []string{"root.json", "1.root.json", "timestamp.json", "targets.json"} {
		if code, _ := sig.get(t, "/v2/"+gun+"/_trust/tuf/"+path); code != 404 {
			t.Errorf("after a refused mirror signet serves %s: %d", path, code)
		}
	}

	// A source that lost a root version of its chain.
	g := tuftest.NewRepo(t, gun, now)
	g.SignAll()
	gap := tuftest.NewServer(gun)
	gap.Serve(tuf.RoleRoot, g.Signed[tuf.RoleRoot])
	for range 2 {
		g.Bump(tuf.RoleRoot)
		g.Sign(tuf.RoleRoot)
	}
	g.Bump(tuf.RoleSnapshot)
	g.SignSnapshot()
	g.Bump(tuf.RoleTimestamp)
	g.SignTimestamp()
	gap.Publish(g) // root versions 1 and 3
	out = sc.mirror(fakeSource(t, gap), sig, 1, gun)
	wantIn(t, "a source without root version 2", out, gun+": not mirrored", "root version 2: client: not found")

	// A repository the source does not have; a source that is not there.
	out = sc.mirror(src, sig, 1, "example.com/mirror/none")
	wantIn(t, "a missing repository", out, "no trust data")
	code, _, errOut := sc.run("mirror", "--from", "https://127.0.0.1:1", "--from-ca", src.caFile, "-s", sig.url, "--tlscacert", sig.caFile, gun)
	if code != 1 || !strings.Contains(errOut, "could not reach the trust server at 127.0.0.1:1") {
		t.Errorf("an unreachable source: exit %d\n%s", code, errOut)
	}
	// A source whose certificate is not trusted.
	code, _, errOut = sc.run("mirror", "--from", src.url, "-s", sig.url, "--tlscacert", sig.caFile, gun)
	if code != 1 || !strings.Contains(errOut, "--from-ca") {
		t.Errorf("an untrusted source: exit %d\n%s", code, errOut)
	}
	// Bad command lines.
	for _, args := range [][]string{
		{"mirror", "-s", sig.url, gun},
		{"mirror", "--from", "ftp://x", "-s", sig.url, gun},
		{"mirror", "--from", "http://notary.example.com", "-s", sig.url, gun},
		{"mirror", "--from", src.url, gun},
		{"mirror", "--from", sig.url, "-s", sig.url, gun},
		{"mirror", "--from", src.url, "-s", sig.url, "a*b"},
	} {
		if code, _, errOut := sc.run(args...); code != 2 {
			t.Errorf("signet %s: exit %d, want 2\n%s", strings.Join(args, " "), code, errOut)
		}
	}
	if code, _ := sig.get(t, "/v2/"+gun+"/_trust/tuf/root.json"); code != 404 {
		t.Errorf("a root was stored: %d", code)
	}
}

// authSignet is signet-server with its token service: users alice and root
// (an admin), passwords <user>-pw; anonymousPull lets anyone read.
func authSignet(t *testing.T, dir, name string, anonymousPull bool) trustServer {
	t.Helper()
	var users strings.Builder
	for _, u := range []string{"alice", "root"} {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		users.WriteString(u + ":" + string(h) + "\n")
	}
	htpasswd := filepath.Join(dir, name+".htpasswd")
	if err := os.WriteFile(htpasswd, []byte(users.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	host := e2etest.FreeAddr(t)
	dataDir := filepath.Join(dir, name+"-data")
	anon := "[]"
	if anonymousPull {
		anon = "[" + name + "]"
	}
	cfg := fmt.Sprintf("listen: %s\ndata_dir: %s\nauth:\n  type: token\n  realm: https://%s/auth/token\n  service: %s\n  issuer: %s-issuer\n  htpasswd: %s\n  admins: [root]\n  anonymous_pull: %s\n",
		host, dataDir, host, name, name, htpasswd, anon)
	cfgFile := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := inproc.StartServer(t, inproc.ServerOptions{LocalCA: true, Listen: host, DataDir: dataDir, Flags: []string{"--config", cfgFile}})
	return trustServer{name: name, url: s.URL, caFile: s.CAFile, client: s.Client}
}

func basic(user string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + user + "-pw"))
}

// TestMirrorTokenAuth: the source answers with a registry token challenge
// and serves only to a user of its token service, whose credentials come
// from the Docker configuration; the destination imports only for an
// admin.
func TestMirrorTokenAuth(t *testing.T) {
	e2etest.Need(t, "notary")
	dir := t.TempDir()
	src := authSignet(t, dir, "old-notary", false)
	dst := authSignet(t, dir, "new-notary", true)
	gun := "example.com/mirror/private"
	p := writeFile(t, dir, "p.txt", "private payload\n")
	owner := newNotary(t, dir, "owner")
	owner.cmd = owner.cmd.WithEnv("NOTARY_AUTH=" + basic("alice"))
	owner.ok(src, "init", gun)
	owner.ok(src, "add", gun, "v1", p)
	owner.ok(src, "publish", gun)

	// Anonymously the source serves nothing.
	anon := newSignet(t, dir, "NOTARY_AUTH="+basic("root"))
	out := anon.mirror(src, dst, 1, gun)
	wantIn(t, "an anonymous read of a private repository", out, "reading "+gun, "docker login")

	// With the source's credentials in the Docker configuration.
	docker := filepath.Join(dir, "docker-config")
	if err := os.MkdirAll(docker, 0o700); err != nil {
		t.Fatal(err)
	}
	srcHost := strings.TrimPrefix(src.url, "https://")
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{srcHost: map[string]string{"auth": basic("alice")}}})
	if err := os.WriteFile(filepath.Join(docker, "config.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	before := dst.state(t, gun)
	for _, user := range []string{"", "alice"} { // no credentials here; a user who is no admin
		env := []string{"DOCKER_CONFIG=" + docker}
		if user != "" {
			env = append(env, "NOTARY_AUTH="+basic(user))
		}
		out = newSignet(t, dir, env...).mirror(src, dst, 1, gun)
		wantIn(t, "an import without an admin's scope ("+user+")", out, "importing into "+dst.url, `admin scope ("*")`)
		sameBytes(t, "a refused import", before, dst.state(t, gun))
	}
	admin := newSignet(t, dir, "DOCKER_CONFIG="+docker, "NOTARY_AUTH="+basic("root"))
	out = admin.mirror(src, dst, 0, gun)
	wantIn(t, "mirror with credentials", out, gun+": copied")
	newNotary(t, dir, "reader").wantList(dst, gun, "an anonymous reader of the new server", "v1 targets")
	code, stdout, stderr := admin.run("-o", "json", "mirror", "--from", src.url, "--from-ca", src.caFile, "-s", dst.url, "--tlscacert", dst.caFile, gun, "example.com/mirror/none")
	var rep []struct {
		GUN, From, Error, Outcome string
		Added                     []struct{ Role string }
		Source                    *struct{ Roots [2]int }
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 1 || len(rep) != 2 {
		t.Fatalf("mirror -o json of a repository and a missing one: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	if r := rep[0]; r.GUN != gun || r.From != src.url || r.Outcome != "up-to-date" || len(r.Added) != 0 || r.Source == nil || r.Source.Roots != [2]int{1, 1} || r.Error != "" {
		t.Errorf("mirror -o json, first repository: %+v", r)
	}
	if r := rep[1]; r.Outcome != "" || !strings.Contains(r.Error, "no trust data") {
		t.Errorf("mirror -o json, missing repository: %+v", r)
	}
}

package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/oci"
	"github.com/signet-trust/signet/internal/registry"
)

// runAt runs signet in-process with its clock at now, and returns what
// Main would: the exit code and the output.
func runAt(t *testing.T, now time.Time, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var errOut bytes.Buffer
	code, out := runWith(t, now, env, &errOut, args...)
	return code, out, errOut.String()
}

// runWith is runAt with the standard error given.
func runWith(t *testing.T, now time.Time, env map[string]string, stderr io.Writer, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	a := newApp(Env{Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: stderr, Stdin: strings.NewReader("")})
	a.now = func() time.Time { return now }
	defer a.tokens.close()
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(stderr)
	err := root.ExecuteContext(t.Context())
	if err == nil {
		return ExitOK, out.String()
	}
	code := ExitError
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	} else if isUsageError(err) {
		code = ExitUsage
	}
	fmt.Fprintf(stderr, "* fatal: %v\n", err)
	return code, out.String()
}

// migrateRun runs signet migrate cosign -o json and decodes its report.
func migrateRun(t *testing.T, now time.Time, env map[string]string, want int, args ...string) migrateReport {
	t.Helper()
	args = append([]string{"-o", "json", "migrate", "cosign"}, args...)
	code, out, errOut := runAt(t, now, env, args...)
	if code != want {
		t.Fatalf("signet %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out, errOut)
	}
	var rep migrateReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("signet %s: the report is not JSON: %v\n%s\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return rep
}

// results renders a report's tags as "tag result".
func results(rep migrateReport) []string {
	var out []string
	for _, tg := range rep.Tags {
		out = append(out, tg.Tag+" "+tg.Result)
	}
	return out
}

// writeKeyPair writes an unencrypted PKCS#8 EC key and its public key.
func writeKeyPair(t *testing.T, dir, name string) (keyFile, pubFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(k)
	spki, _ := x509.MarshalPKIXPublicKey(k.Public())
	keyFile, pubFile = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), 0o644); err != nil {
		t.Fatal(err)
	}
	return keyFile, pubFile
}

// cosignVerifies runs the real cosign verify on ref in both storage forms
// and reports whether each accepted it.
func cosignVerifies(t *testing.T, cosign string, dir, pub, ref string) (bundle, legacy bool) {
	t.Helper()
	c := e2etest.CosignCommand(dir, "")
	for _, form := range []*bool{&bundle, &legacy} {
		args := []string{cosign, "verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry"}
		if form == &legacy {
			args = append(args, "--new-bundle-format=false")
		}
		r := c.Run(t, append(args, ref)...)
		if r.Err != nil {
			t.Fatalf("cosign did not run:\n%s", r)
		}
		*form = r.Code == 0
		// A refusal must be cosign's verdict on the image, not a mistake
		// of the test (a key file not found …).
		verdict := false
		for _, v := range []string{"no signatures found", "no matching signatures", "no matching attestations", "MANIFEST_UNKNOWN"} {
			verdict = verdict || strings.Contains(r.Stderr, v)
		}
		if r.Code != 0 && !verdict {
			t.Fatalf("cosign verify failed for another reason than the image's signatures:\n%s", r)
		}
	}
	return bundle, legacy
}

// tagsList is the registry's tag list of a repository (what signing wrote
// is seen there: sha256-<hex>.sig and the referrers index tags).
func tagsList(t *testing.T, host, repo string) []string {
	t.Helper()
	resp, err := http.Get("http://" + host + "/v2/" + repo + "/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l struct{ Tags []string }
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	slices.Sort(l.Tags)
	return l.Tags
}

// TestMigrateCosign: a repository signed by the real docker trust and
// notary clients on signet-server — signers in delegations, a tag in
// targets only, a revoked tag, a tag whose image was deleted, a delegation
// that expired — carried over to cosign signatures on the real
// docker-registry; the real cosign verifies every migrated tag and no other.
func TestMigrateCosign(t *testing.T) {
	e2etest.Need(t, "docker", "notary")
	cosign := e2etest.CosignBin(t)
	reg := e2etest.StartRegistry(t, "")
	srv := startTrustTestServer(t)
	dir := t.TempDir()
	const path = "team/app"
	gun := reg.Host + "/" + path
	img := map[string]registry.Descriptor{}
	for _, tag := range []string{"v1", "v2", "v3", "v4", "v5", "gone", "unsigned"} {
		img[tag] = pushTestImage(t, reg.Host, path, tag)
	}

	// The repository, as docker trust and notary make it.
	cfg := filepath.Join(dir, "docker")
	if err := os.MkdirAll(filepath.Join(cfg, "tls", srv.host), 0o700); err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(srv.caFile)
	if err := os.WriteFile(filepath.Join(cfg, "tls", srv.host, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	const rootPass, repoPass = "migrate-root-pass", "migrate-repo-pass"
	docker := e2etest.Command{Dir: dir}.WithEnv(append(e2etest.BaseEnv(dir),
		"DOCKER_CONFIG="+cfg, "DOCKER_CONTENT_TRUST_SERVER="+srv.url,
		"DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE="+rootPass, "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE="+repoPass,
		"DOCKER_CLI_HINTS=false", "DOCKER_HOST=unix://"+filepath.Join(dir, "no-daemon.sock"))...)
	notaryPass := []string{"NOTARY_ROOT_PASSPHRASE=" + rootPass, "NOTARY_TARGETS_PASSPHRASE=" + repoPass,
		"NOTARY_SNAPSHOT_PASSPHRASE=" + repoPass, "NOTARY_DELEGATION_PASSPHRASE=" + repoPass}
	notary := e2etest.Command{Dir: dir}.WithEnv(append(e2etest.BaseEnv(dir), notaryPass...)...)
	nargs := []string{"notary", "-s", srv.url, "--tlscacert", srv.caFile, "-d", filepath.Join(cfg, "trust")}
	for _, signer := range []string{"alice", "bob"} {
		docker.OK(t, "docker", "trust", "key", "generate", signer, "--dir", dir)
		docker.OK(t, "docker", "trust", "signer", "add", "--key", filepath.Join(dir, signer+".pub"), signer, gun)
	}
	addhash := func(tag string, roles ...string) {
		t.Helper()
		args := append(slices.Clone(nargs), "addhash", gun, tag, strconv.FormatInt(img[tag].Size, 10), "--sha256", img[tag].Hex())
		for _, r := range roles {
			args = append(args, "-r", r)
		}
		notary.OK(t, args...)
	}
	addhash("v1", "targets/releases", "targets/alice")
	addhash("v2", "targets/releases", "targets/alice")
	addhash("gone", "targets/releases", "targets/alice")
	addhash("v3") // the repository's own targets: docker reads it after releases
	addhash("v5", "targets/releases", "targets/bob")
	notary.OK(t, append(slices.Clone(nargs), "publish", gun)...)
	docker.OK(t, "docker", "trust", "revoke", "--yes", gun+":v2")
	// Bob's delegation, re-signed with a one-hour lifetime; the migration
	// runs two hours later.
	signetEnv := map[string]string{"HOME": dir, "SIGNET_TARGETS_EXPIRY": "1h"}
	for _, kv := range notaryPass {
		k, v, _ := strings.Cut(kv, "=")
		signetEnv[k] = v
	}
	now := time.Now()
	sargs := []string{"-s", srv.url, "--tlscacert", srv.caFile, "-d", filepath.Join(cfg, "trust")}
	for _, args := range [][]string{
		{"addhash", gun, "v4", strconv.FormatInt(img["v4"].Size, 10), "--sha256", img["v4"].Hex(), "-r", "targets/bob"},
		{"publish", gun},
	} {
		if code, out, errOut := runAt(t, now, signetEnv, append(slices.Clone(sargs), args...)...); code != 0 {
			t.Fatalf("signet %v: %d\n%s%s", args, code, out, errOut)
		}
	}
	// The image of "gone" is deleted from the registry.
	req, _ := http.NewRequest(http.MethodDelete, "http://"+reg.Host+"/v2/"+path+"/manifests/"+img["gone"].Digest, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deleting the manifest of gone: %v %v", err, resp)
	}
	later := now.Add(2 * time.Hour)

	env := map[string]string{"HOME": dir, "DOCKER_CONFIG": cfg, "DOCKER_CONTENT_TRUST_SERVER": srv.url, envCosignPassword: "test"}
	keyFile := filepath.Join(dir, "cosign.key")
	pubFile := filepath.Join(dir, "cosign.pub")
	for _, f := range []string{"cosign.key", "cosign.pub"} {
		b, err := os.ReadFile(cosignFixtures + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// A wrong password stops the run before anything is written.
	before := tagsList(t, reg.Host, path)
	bad := map[string]string{}
	for k, v := range env {
		bad[k] = v
	}
	bad[envCosignPassword] = "wrong"
	code, _, errOut := runAt(t, later, bad, "migrate", "cosign", gun, "--key", keyFile)
	if code != ExitError || !strings.Contains(errOut, "wrong password") {
		t.Fatalf("a wrong password: exit %d\n%s", code, errOut)
	}
	if after := tagsList(t, reg.Host, path); !slices.Equal(before, after) {
		t.Fatalf("a run with a wrong password wrote %v", after)
	}

	// A dry run writes nothing either.
	rep := migrateRun(t, later, env, 0, gun, "--key", keyFile, "--dry-run")
	want := []string{"gone missing", "v1 would-sign", "v3 would-sign", "v5 would-sign"}
	if got := results(rep); !slices.Equal(got, want) {
		t.Fatalf("dry run: %q, want %q", got, want)
	}
	if after := tagsList(t, reg.Host, path); !slices.Equal(before, after) {
		t.Fatalf("a dry run wrote %v", after)
	}

	// The migration, as docker resolves tags.
	rep = migrateRun(t, later, env, 0, gun, "--key", keyFile)
	want = []string{"gone missing", "v1 signed", "v3 signed", "v5 signed"}
	if got := results(rep); !slices.Equal(got, want) {
		t.Fatalf("migration: %q, want %q", got, want)
	}
	if len(rep.Skipped) != 1 || !strings.HasPrefix(rep.Skipped[0], "targets/bob: targets/bob expired") {
		t.Errorf("skipped delegations %q, want targets/bob (expired)", rep.Skipped)
	}
	for _, tg := range rep.Tags {
		if tg.Tag != "gone" && tg.Digest != img[tg.Tag].Digest {
			t.Errorf("%s signed as %s, DCT signs %s", tg.Tag, tg.Digest, img[tg.Tag].Digest)
		}
	}
	for tag, ok := range map[string]bool{"v1": true, "v3": true, "v5": true, "v2": false, "v4": false, "unsigned": false, "gone": false} {
		b, l := cosignVerifies(t, cosign, dir, pubFile, gun+":"+tag)
		if b != ok || l != ok {
			t.Errorf("cosign verify %s: bundle %v, legacy %v; want %v", tag, b, l, ok)
		}
	}

	// Again: nothing new is written.
	written := tagsList(t, reg.Host, path)
	rep = migrateRun(t, later, env, 0, gun, "--key", keyFile)
	want = []string{"gone missing", "v1 existing", "v3 existing", "v5 existing"}
	if got := results(rep); !slices.Equal(got, want) {
		t.Fatalf("second migration: %q, want %q", got, want)
	}
	if after := tagsList(t, reg.Host, path); !slices.Equal(written, after) {
		t.Fatalf("a second run changed the tags: %v, then %v", written, after)
	}
	pub := mustPublicKey(t, pubFile)
	repo := (&registry.Client{Keychain: registry.Anonymous}).Repository(registry.Reference{Registry: reg.Host, Repository: path}, "pull")
	for _, tag := range []string{"v1", "v3", "v5"} {
		tg, err := oci.Resolve(context.Background(), repo, img[tag].Digest)
		if err != nil {
			t.Fatal(err)
		}
		vr, err := oci.Verify(context.Background(), tg, pub, oci.Options{Now: time.Now()})
		if err != nil || len(vr.Verified) != 2 {
			t.Errorf("%s after two runs: %v, %d signatures (want one per form)", tag, err, len(vr.Verified))
		}
	}

	// Only what the signers' own roles sign: alice signs v1 (and gone);
	// bob's role expired, so nothing of his.
	key2, pub2 := writeKeyPair(t, dir, "second")
	rep = migrateRun(t, later, env, 0, gun, "--key", key2, "--require-signer", "alice")
	want = []string{"gone missing", "v1 signed", "v3 unsigned", "v5 unsigned"}
	if got := results(rep); !slices.Equal(got, want) {
		t.Fatalf("migration of alice's tags: %q, want %q", got, want)
	}
	rep = migrateRun(t, later, env, 0, gun, "--key", key2, "--require-signer", "bob")
	want = []string{"gone unsigned", "v1 unsigned", "v3 unsigned", "v5 unsigned"}
	if got := results(rep); !slices.Equal(got, want) {
		t.Fatalf("migration of bob's tags: %q, want %q", got, want)
	}
	for tag, ok := range map[string]bool{"v1": true, "v3": false, "v5": false, "v4": false} {
		if b, l := cosignVerifies(t, cosign, dir, pub2, gun+":"+tag); b != ok || l != ok {
			t.Errorf("cosign verify with the second key %s: bundle %v, legacy %v; want %v", tag, b, l, ok)
		}
	}

	// The table and summary.
	code, out, errOut := runAt(t, later, env, "migrate", "cosign", gun, "--key", keyFile)
	t.Logf("signet migrate cosign (exit %d):\n%s%s", code, out, errOut)
	if code != 0 || !strings.Contains(out, "v1    ") || !strings.Contains(out, "4 tags: 3 existing, 1 missing") ||
		!strings.Contains(errOut, "WARNING: targets/bob: targets/bob expired") || !strings.Contains(errOut, "gone: the registry no longer holds") {
		t.Errorf("table output: exit %d\n%s\n%s", code, out, errOut)
	}
	// A progress bar on a terminal, never with -o json.
	tty, output := openPTY(t)
	if code, _ := runWith(t, later, env, tty, "migrate", "cosign", gun, "--key", keyFile); code != 0 {
		t.Fatalf("migrate with a terminal: exit %d\n%s", code, output())
	}
	if got := output(); !strings.Contains(got, "\r[==============================] 4/4 digests, 0 failed") {
		t.Errorf("no progress bar on the terminal:\n%q", got)
	}
	tty, output = openPTY(t)
	if code, _ := runWith(t, later, env, tty, "-o", "json", "migrate", "cosign", gun, "--key", keyFile); code != 0 {
		t.Fatalf("migrate -o json with a terminal: exit %d\n%s", code, output())
	}
	if got := output(); strings.Contains(got, "digests") {
		t.Errorf("a progress bar with -o json:\n%q", got)
	}
	// Bad command lines.
	for _, args := range [][]string{
		{"migrate", "cosign", gun},
		{"migrate", "cosign", gun + ":v1", "--key", keyFile},
		{"migrate", "cosign", gun, "--key", keyFile, "--require-signer", "releases"},
		{"migrate", "cosign", gun, "--key", keyFile, "--workers", "0"},
	} {
		if code, _, errOut := runAt(t, later, env, args...); code != ExitUsage {
			t.Errorf("signet %s: exit %d, want %d\n%s", strings.Join(args, " "), code, ExitUsage, errOut)
		}
	}
	if code, _, errOut := runAt(t, later, env, "migrate", "cosign", reg.Host+"/team/none", "--key", keyFile); code != ExitNotFound {
		t.Errorf("a repository without trust data: exit %d\n%s", code, errOut)
	}
}

func mustPublicKey(t *testing.T, file string) any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// flakyRegistry is a proxy in front of a registry that can go away: while
// down it drops every connection without an answer, as an unreachable
// registry does; it goes down by itself after a number of requests.
type flakyRegistry struct {
	host      string
	requests  atomic.Int64
	downAfter atomic.Int64 // 0: never
	down      atomic.Bool
}

func newFlakyRegistry(t *testing.T, target string) *flakyRegistry {
	t.Helper()
	f := &flakyRegistry{}
	u, _ := url.Parse("http://" + target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.requests.Add(1)
		if after := f.downAfter.Load(); after > 0 && n > after {
			f.down.Store(true)
		}
		if f.down.Load() {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.host = strings.TrimPrefix(srv.URL, "http://")
	return f
}

// TestMigrateResumes: the registry goes away in the middle of a migration;
// the run stops, reports what it did and what it did not, and the same
// command run again finishes the work without writing anything twice.
func TestMigrateResumes(t *testing.T) {
	cosign := e2etest.CosignBin(t)
	reg := e2etest.StartRegistry(t, "")
	flaky := newFlakyRegistry(t, reg.Host)
	srv := startTrustTestServer(t)
	dir := t.TempDir()
	const path, n = "team/many", 60
	gun := flaky.host + "/" + path
	env := map[string]string{"HOME": dir, "DOCKER_CONFIG": filepath.Join(dir, "docker"), "DOCKER_CONTENT_TRUST_SERVER": srv.url,
		"NOTARY_ROOT_PASSPHRASE": "resume-root", "NOTARY_TARGETS_PASSPHRASE": "resume-targets", "NOTARY_SNAPSHOT_PASSPHRASE": "resume-snapshot", envCosignPassword: "test"}
	sargs := []string{"-s", srv.url, "--tlscacert", srv.caFile, "-d", filepath.Join(dir, "trust")}
	signet := func(args ...string) {
		t.Helper()
		if code, out, errOut := runAt(t, time.Now(), env, append(slices.Clone(sargs), args...)...); code != 0 {
			t.Fatalf("signet %v: %d\n%s%s", args, code, out, errOut)
		}
	}
	signet("init", gun)
	img := map[string]registry.Descriptor{}
	for i := range n {
		tag := fmt.Sprintf("v%02d", i)
		img[tag] = pushTestImage(t, reg.Host, path, tag)
		signet("addhash", gun, tag, strconv.FormatInt(img[tag].Size, 10), "--sha256", img[tag].Hex())
	}
	signet("publish", gun)
	keyFile, pubFile := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	for _, f := range []string{keyFile, pubFile} {
		b, _ := os.ReadFile(cosignFixtures + filepath.Base(f))
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mrun := func(want int) migrateReport {
		t.Helper()
		return migrateRun(t, time.Now(), env, want, gun, "--key", keyFile, "--tlscacert", srv.caFile, "--workers", "4")
	}

	// About a third of the way in, the registry goes away.
	flaky.downAfter.Store(250)
	rep := mrun(ExitError)
	count := map[string]int{}
	for _, tg := range rep.Tags {
		count[tg.Result]++
		if tg.Result == migrateFailed && !strings.Contains(tg.Error, "unable to reach "+flaky.host) && !strings.Contains(tg.Error, "EOF") {
			t.Errorf("%s failed: %s", tg.Tag, tg.Error)
		}
	}
	t.Logf("interrupted run: %v", count)
	if count[migrateSigned] == 0 || count[migrateFailed] == 0 || count[migratePending] == 0 || count[migrateSigned]+count[migrateFailed]+count[migratePending] != n {
		t.Fatalf("interrupted run: %v; want some signed, some failed, the rest pending", count)
	}
	if count[migrateFailed] > migrateGiveUp+2*4 {
		t.Errorf("%d digests failed: the run should stop after %d failures in a row (4 workers)", count[migrateFailed], migrateGiveUp)
	}

	// The registry is back: the same command finishes the work.
	flaky.downAfter.Store(0)
	flaky.down.Store(false)
	rep = mrun(0)
	again := map[string]int{}
	for _, tg := range rep.Tags {
		again[tg.Result]++
	}
	t.Logf("resumed run: %v", again)
	if again[migrateExisting] < count[migrateSigned] || again[migrateSigned]+again[migrateExisting] != n {
		t.Fatalf("resumed run: %v after %v", again, count)
	}
	rep = mrun(0)
	if got := results(rep); len(got) != n || slices.ContainsFunc(got, func(s string) bool { return !strings.HasSuffix(s, " existing") }) {
		t.Fatalf("a third run: %q", got)
	}
	// Exactly one signature per form for every digest, as cosign and
	// signet see them.
	pub := mustPublicKey(t, pubFile)
	repo := (&registry.Client{Keychain: registry.Anonymous}).Repository(registry.Reference{Registry: reg.Host, Repository: path}, "pull")
	for tag, d := range img {
		tg, err := oci.Resolve(context.Background(), repo, d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		vr, err := oci.Verify(context.Background(), tg, pub, oci.Options{Now: time.Now()})
		if err != nil || len(vr.Verified) != 2 || vr.Verified[0].Form == vr.Verified[1].Form {
			t.Errorf("%s: %v, %+v; want one signature in each form", tag, err, vr)
		}
	}
	for _, tag := range []string{"v00", fmt.Sprintf("v%02d", n-1)} {
		if b, l := cosignVerifies(t, cosign, dir, pubFile, gun+":"+tag); !b || !l {
			t.Errorf("cosign verify %s after the resumed migration: bundle %v, legacy %v", tag, b, l)
		}
	}
}

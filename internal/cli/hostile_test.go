package cli

// Client-side attacks on the command line: a trust server and metadata
// that try to write to the terminal, names that try to leave the trust
// directory, a trust directory whose links point elsewhere, and key output
// files planted before signet writes them (docs/design/threat-model.md,
// "Client-side classes").

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// cliRun runs signet in-process with env.
func cliRun(env map[string]string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, Env{
		Getenv: func(k string) string { return env[k] },
		Stdout: &out, Stderr: &errOut,
	})
	return code, out.String(), errOut.String()
}

// terminalUnsafe are the characters no human output may carry raw.
const terminalUnsafe = "\x1b\x07\x08\r\u009b\u202e\u2066"

// Hostile names a signer with a delegation key (or the targets key) may
// give tags, delegation paths and key IDs.
var hostileTags = []string{
	"v1\x1b[2J\x1b[H",    // clear the screen
	"v2\x1b]0;pwned\x07", // retitle the terminal
	"v3\nforged   " + strings.Repeat("ab", 32) + "   1   targets", // forge a row
	"v4\tshifted",     // shift columns
	"v5\u202eexe.txt", // right-to-left override
	"v6\rover",        // overwrite the line
}

func hostileRepo(t *testing.T, gun string, now time.Time) *tuftest.Repo {
	r := tuftest.NewRepo(t, gun, now)
	r.Delegate(releasesRole, []string{""})
	r.Delegate("targets/alice", []string{"ok/", "p\x1b[31mred"})
	for i, tag := range hostileTags {
		r.AddTarget(releasesRole, tag, []byte{byte(i)})
	}
	r.AddTarget(tuf.RoleTargets, "clean", []byte("clean"))
	r.SignAll()
	// The signatures are over canonical JSON, which holds control
	// characters raw; a file must escape them to parse. An attacker
	// serves the escaped form, and re-lists it in the snapshot.
	for _, role := range []string{tuf.RoleTargets, releasesRole, "targets/alice"} {
		r.Signed[role] = escapeControls(r.Signed[role])
	}
	r.SignSnapshot()
	r.SignTimestamp()
	return r
}

// escapeControls spells out the control characters of a JSON text (all
// inside strings: canonical JSON has no whitespace) as \u00XX.
func escapeControls(b []byte) []byte {
	var out []byte
	for _, c := range b {
		if c < 0x20 {
			out = append(out, fmt.Sprintf(`\u%04x`, c)...)
			continue
		}
		out = append(out, c)
	}
	return out
}

// hostileTrustServer serves gun's hostile repository, and for errGUN an
// error envelope whose message and detail hold escapes and newlines.
func hostileTrustServer(t *testing.T, gun, errGUN string) (*httptest.Server, string) {
	srv := tuftest.NewServer(gun)
	srv.Publish(hostileRepo(t, gun, time.Now()))
	mux := http.NewServeMux()
	mux.Handle("/v2/"+gun+"/", srv)
	mux.HandleFunc("/v2/"+errGUN+"/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"errors":[{"code":"DENIED\u001b[2J","message":"go away\u001b]0;pwned\u0007\n* fatal: forged","detail":{"k":` + "\n" + `"\u001b[31m"}}]}`))
	})
	hs := httptest.NewTLSServer(mux)
	t.Cleanup(hs.Close)
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return hs, ca
}

func assertPrintable(t *testing.T, what, s string) {
	t.Helper()
	if i := strings.IndexAny(s, terminalUnsafe); i >= 0 {
		t.Errorf("%s carries a raw control character at %d: %q", what, i, s)
	}
}

// TestHostileMetadataOutput: tag names, delegation paths and server error
// bodies reach the terminal quoted, in every human-readable output; JSON
// output keeps the exact names.
func TestHostileMetadataOutput(t *testing.T) {
	const gun, errGUN = "example.com/hostile/app", "example.com/hostile/err"
	hs, ca := hostileTrustServer(t, gun, errGUN)
	dir := t.TempDir()
	env := map[string]string{"HOME": dir}
	notary := func(args ...string) (int, string, string) {
		return cliRun(env, append([]string{"-d", filepath.Join(dir, "notary"), "-s", hs.URL, "--tlscacert", ca}, args...)...)
	}

	code, out, errOut := notary("list", gun)
	if code != 0 {
		t.Fatalf("list: %d %s", code, errOut)
	}
	assertPrintable(t, "list", out)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 2+len(hostileTags)+1 { // header, rule, one row per target
		t.Errorf("list printed %d lines for %d targets:\n%s", len(lines), len(hostileTags)+1, out)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "forged") {
			t.Errorf("a tag forged a row: %q", l)
		}
	}
	for _, want := range []string{`"v1\x1b[2J\x1b[H"`, `"v3\nforged`, `"v5\u202eexe.txt"`, "clean "} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %s:\n%s", want, out)
		}
	}

	code, out, errOut = notary("-o", "json", "list", gun)
	var rows []targetJSON
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
		t.Fatalf("list -o json: %d %s %s", code, out, errOut)
	}
	names := map[string]bool{}
	for _, r := range rows {
		names[r.Name] = true
	}
	for _, tag := range hostileTags {
		if !names[tag] {
			t.Errorf("JSON output lost the exact name %q", tag)
		}
	}

	code, out, errOut = notary("lookup", gun, hostileTags[0])
	if code != 0 {
		t.Fatalf("lookup: %d %s", code, errOut)
	}
	assertPrintable(t, "lookup", out)

	code, out, errOut = notary("delegation", "list", gun)
	if code != 0 {
		t.Fatalf("delegation list: %d %s", code, errOut)
	}
	assertPrintable(t, "delegation list", out)
	if !strings.Contains(out, `"p\x1b[31mred"`) {
		t.Errorf("delegation list does not quote the path:\n%s", out)
	}

	code, _, errOut = notary("list", errGUN)
	if code != ExitError {
		t.Fatalf("list of the erroring repository: %d", code)
	}
	assertPrintable(t, "the error", errOut)
	if strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "* fatal:") || !strings.Contains(errOut, `\x1b]0;pwned`) {
		t.Errorf("the server's error is not shown quoted on one line: %q", errOut)
	}

	// docker trust inspect --pretty reads the same metadata.
	cfg := filepath.Join(dir, "docker")
	host := strings.TrimPrefix(hs.URL, "https://")
	if err := os.MkdirAll(filepath.Join(cfg, "tls", host), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(ca)
	if err := os.WriteFile(filepath.Join(cfg, "tls", host, "ca.crt"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	denv := map[string]string{"HOME": dir, "DOCKER_CONFIG": cfg, "DOCKER_CONTENT_TRUST_SERVER": hs.URL}
	code, out, errOut = cliRun(denv, "trust", "inspect", "--pretty", gun)
	if code != 0 {
		t.Fatalf("trust inspect --pretty: %d %s", code, errOut)
	}
	assertPrintable(t, "trust inspect --pretty", out)
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "forged") {
			t.Errorf("a tag forged a row: %q", l)
		}
	}
	if !strings.Contains(out, `"v2\x1b]0;pwned\a"`) {
		t.Errorf("trust inspect --pretty does not quote the tag:\n%s", out)
	}
	code, _, errOut = cliRun(denv, "trust", "inspect", errGUN)
	if code == 0 {
		t.Fatal("trust inspect of the erroring repository succeeded")
	}
	assertPrintable(t, "trust inspect's error", errOut)
}

// TestGUNPathSafety: a repository name never leads outside the trust
// directory, neither by its own segments (notary 0.7 deletes
// ../../victim) nor through a symbolic link planted in the directory.
func TestGUNPathSafety(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "trust") // tuf/../../victim is base/victim
	victim := filepath.Join(base, "victim")
	keep := filepath.Join(victim, "app", "keep")
	if err := os.MkdirAll(filepath.Dir(keep), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keep, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": base}
	run := func(args ...string) (int, string, string) {
		return cliRun(env, append([]string{"-d", dir, "-s", "https://127.0.0.1:1"}, args...)...)
	}
	intact := func(what string) {
		t.Helper()
		if b, err := os.ReadFile(keep); err != nil || string(b) != "precious" {
			t.Fatalf("%s: the victim directory was touched: %v", what, err)
		}
		ents, _ := os.ReadDir(filepath.Join(victim, "app"))
		if len(ents) != 1 {
			t.Fatalf("%s: files appeared outside the trust directory: %v", what, ents)
		}
	}
	hash := strings.Repeat("ab", 32)
	for _, gun := range []string{"../../victim/app", "../victim", "..", "example.com/../../../victim/app", "/abs/path", "a//b", "a/./b", "a/b/", "", `a\..\..\victim`, "a\x00b", "a\nb"} {
		for _, args := range [][]string{{"delete", gun}, {"addhash", gun, "v1", "3", "--sha256", hash}, {"list", gun}, {"status", gun}} {
			code, _, errOut := run(args...)
			if code != ExitUsage || !strings.Contains(errOut, "invalid repository name") {
				t.Errorf("%s %q: exit %d, want %d with a clear refusal\n%s", args[0], gun, code, ExitUsage, errOut)
			}
			assertPrintable(t, "the refusal", errOut)
			intact(args[0] + " " + gun)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a refused command created the trust directory: %v", err)
	}

	// A link in the trust directory pointing outside it.
	if err := os.MkdirAll(filepath.Join(dir, "tuf"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, "tuf", "example.com")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"delete", "example.com/app"}, {"addhash", "example.com/app", "v1", "3", "--sha256", hash}, {"status", "example.com/app"}} {
		code, _, errOut := run(args...)
		if code == 0 || !strings.Contains(errOut, "leaves the trust directory") {
			t.Errorf("%s through a link: exit %d\n%s", args[0], code, errOut)
		}
		intact(args[0] + " through a link")
	}
	// A dangling link: following it would create the directory outside.
	outside := filepath.Join(base, "not-yet")
	if err := os.Symlink(outside, filepath.Join(dir, "tuf", "dangling.example")); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run("addhash", "dangling.example/app", "v1", "3", "--sha256", hash); code == 0 || !strings.Contains(errOut, "leaves the trust directory") {
		t.Errorf("addhash through a dangling link: exit %d\n%s", code, errOut)
	}
	if _, err := os.Lstat(outside); !os.IsNotExist(err) {
		t.Fatalf("a directory was created through a dangling link: %v", err)
	}
	// A link that stays inside the trust directory is followed.
	if err := os.MkdirAll(filepath.Join(dir, "tuf", "real.example"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "tuf", "real.example"), filepath.Join(dir, "tuf", "alias.example")); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run("addhash", "alias.example/app", "v1", "3", "--sha256", hash); code != 0 {
		t.Fatalf("addhash through a link inside the trust directory: %d %s", code, errOut)
	}
	if ents, err := os.ReadDir(filepath.Join(dir, "tuf", "real.example", "app", "changelist")); err != nil || len(ents) != 1 {
		t.Fatalf("changelist through the inside link: %v %v", ents, err)
	}
}

// TestImageReferenceGrammar: references outside Docker's grammar are
// refused before anything is read or written.
func TestImageReferenceGrammar(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"HOME": dir, "DOCKER_CONFIG": filepath.Join(dir, "docker")}
	for _, ref := range []string{"example.com/app:-rm", "example.com/app:.hidden", "example.com/../victim:v1", "../victim", "example.com/a//b:v1", "example.com/a/.:v1", "example.com/App:v1", "example.com/app:" + strings.Repeat("x", 129)} {
		for _, args := range [][]string{{"trust", "inspect", ref}, {"trust", "revoke", "-y", ref}, {"verify", ref}, {"trust", "sign", ref}} {
			code, _, errOut := cliRun(env, args...)
			want := ExitUsage
			if args[1] == "inspect" { // as docker: each image's error, then a summary
				want = ExitError
			}
			if code != want || !strings.Contains(errOut, "not a valid image reference") {
				t.Errorf("signet %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, errOut)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "docker")); !os.IsNotExist(err) {
		t.Fatalf("a refused reference created %s: %v", filepath.Join(dir, "docker"), err)
	}
}

// TestKeyOutputFiles: private keys written with -o (and by key passwd) are
// new files at 0600, whatever was planted at the name: an existing file
// keeps neither its content nor its mode, and a symbolic link is replaced,
// never written through.
func TestKeyOutputFiles(t *testing.T) {
	dir := t.TempDir()
	trust := filepath.Join(dir, "trust")
	env := map[string]string{"HOME": dir, "NOTARY_ROOT_PASSPHRASE": "root-passphrase-1", "SIGNET_NEW_PASSPHRASE": "root-passphrase-2"}
	run := func(args ...string) string {
		t.Helper()
		code, out, errOut := cliRun(env, append([]string{"-d", trust}, args...)...)
		if code != 0 {
			t.Fatalf("signet %s: %d %s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("do not overwrite"), 0o644); err != nil {
		t.Fatal(err)
	}
	plantFile := func(p string) {
		if err := os.WriteFile(p, []byte("old"), 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o666); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	checkKeyFile := func(p string) {
		t.Helper()
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want a regular file at 0600", p, fi.Mode(), err)
		}
		b, _ := os.ReadFile(p)
		if !strings.Contains(string(b), "PRIVATE KEY") {
			t.Fatalf("%s holds no key:\n%s", p, b)
		}
		if b, _ := os.ReadFile(victim); string(b) != "do not overwrite" {
			t.Fatalf("the link's target was written: %q", b)
		}
	}

	// key generate -o onto an existing 0666 file, and onto a link.
	existing := filepath.Join(dir, "gen-existing")
	plantFile(existing + "-key.pem")
	run("key", "generate", "-o", existing)
	checkKeyFile(existing + "-key.pem")
	linked := filepath.Join(dir, "gen-linked")
	if err := os.Symlink(victim, linked+"-key.pem"); err != nil {
		t.Fatal(err)
	}
	run("key", "generate", "-o", linked)
	checkKeyFile(linked + "-key.pem")

	// key export -o likewise.
	out := run("key", "generate")
	id := strings.TrimSpace(out[strings.LastIndex(out, ":")+1:])
	export := filepath.Join(dir, "export.pem")
	plantFile(export)
	run("key", "export", "-o", export)
	checkKeyFile(export)
	exportLink := filepath.Join(dir, "export-link.pem")
	if err := os.Symlink(victim, exportLink); err != nil {
		t.Fatal(err)
	}
	run("key", "export", "-o", exportLink)
	checkKeyFile(exportLink)

	// key passwd through a planted <id>.key.new link.
	keyFile := filepath.Join(trust, "private", id+".key")
	if err := os.Symlink(victim, keyFile+".new"); err != nil {
		t.Fatal(err)
	}
	run("key", "passwd", id)
	checkKeyFile(keyFile)
	env["NOTARY_ROOT_PASSPHRASE"] = "root-passphrase-2"
	if out := run("key", "export", "--key", id); !strings.Contains(out, "PRIVATE KEY") {
		t.Fatalf("export after passwd: %s", out)
	}
}

// TestBoundedReads: configuration and key files that are links to an
// endless device fail with a clear error instead of exhausting memory.
func TestBoundedReads(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Fatalf("/dev/zero: %v", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "docker")
	if err := os.MkdirAll(cfg, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(cfg, "config.json")); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": dir, "DOCKER_CONFIG": cfg, "DOCKER_CONTENT_TRUST_SERVER": "https://127.0.0.1:1"}
	code, _, errOut := cliRun(env, "trust", "inspect", "example.com/app:v1")
	if code == 0 || !strings.Contains(errOut, "more than") {
		t.Errorf("config.json linked to /dev/zero: %d %s", code, errOut)
	}

	notaryCfg := filepath.Join(dir, "notary.json")
	if err := os.Symlink("/dev/zero", notaryCfg); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := cliRun(env, "-c", notaryCfg, "-d", filepath.Join(dir, "trust"), "key", "list"); code == 0 || !strings.Contains(errOut, "more than") {
		t.Errorf("notary config linked to /dev/zero: %d %s", code, errOut)
	}

	trust := filepath.Join(dir, "trust")
	if err := os.MkdirAll(filepath.Join(trust, "private"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(trust, "private", strings.Repeat("0", 64)+".key")); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := cliRun(env, "-d", trust, "key", "list"); code == 0 || !strings.Contains(errOut, "more than") {
		t.Errorf("a key file linked to /dev/zero: %d %s", code, errOut)
	}
}

// TestHostileTrustDirectoryOutput: key-file headers, token references and
// changelist files someone else wrote reach the terminal quoted.
func TestHostileTrustDirectoryOutput(t *testing.T) {
	dir := t.TempDir()
	trust := filepath.Join(dir, "trust")
	priv := filepath.Join(trust, "private")
	if err := os.MkdirAll(priv, 0o700); err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := keys.MarshalPrivateKeyPEM(k, "targets\x1b[2J", "example.com/\x1b]0;pwned\x07app", nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := keys.FromCrypto(k.Public())
	if err := os.WriteFile(filepath.Join(priv, pub.ID()+".key"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	ref := `{"role":"root","uri":"pkcs11:token=t\u001b[2J;object=x\n\tforged row"}`
	if err := os.WriteFile(filepath.Join(priv, strings.Repeat("ab", 32)+".pkcs11"), []byte(ref), 0o600); err != nil {
		t.Fatal(err)
	}
	const gun = "example.com/app"
	cl := filepath.Join(trust, "tuf", gun, "changelist")
	if err := os.MkdirAll(cl, 0o700); err != nil {
		t.Fatal(err)
	}
	change := `{"action":"delete","role":"targets","type":"target","path":"v1\u001b[2J\nforged"}`
	if err := os.WriteFile(filepath.Join(cl, "00000000000000000001_x.change"), []byte(change), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": dir}
	for _, args := range [][]string{{"key", "list"}, {"status", gun}} {
		code, out, errOut := cliRun(env, append([]string{"-d", trust, "-s", "https://127.0.0.1:1"}, args...)...)
		if code != 0 {
			t.Fatalf("%s: %d %s", args[0], code, errOut)
		}
		assertPrintable(t, strings.Join(args, " "), out)
		if !strings.Contains(out, `\x1b[2J`) {
			t.Errorf("%s does not show the escape quoted:\n%s", args[0], out)
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "forged") && !strings.Contains(l, `"`) {
				t.Errorf("%s: a forged row: %q", args[0], l)
			}
		}
	}
}

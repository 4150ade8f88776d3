package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRootPinning: --root-key pins a repository's root on a machine that
// has never seen it; --save-root-key writes the file on one that trusts
// it; a wrong key fails naming both key IDs and caches nothing; a
// first-use notice goes to stderr only; trust_pinning from -c applies to
// verify and to signet trust.
func TestRootPinning(t *testing.T) {
	srv := startTrustTestServer(t)
	const gun, other = "example.com/pin/app", "example.com/pin/other"
	admin := newTrustUser(t, srv, "admin")
	x := strings.Repeat("ab", 32)
	admin.ok("trust", "sign", "--signer", "admin", gun+":v1", "--digest", "sha256:"+x, "--size", "10")
	// Another repository, with another root key (a second user's).
	stranger := newTrustUser(t, srv, "stranger")
	stranger.ok("trust", "sign", "--signer", "stranger", other+":v1", "--digest", "sha256:"+x, "--size", "10")

	rootFile := filepath.Join(admin.dir, "root.pem")
	code, out, errOut := admin.run("verify", "--save-root-key", rootFile, gun+":v1")
	if code != 0 || strings.TrimSpace(out) != "sha256:"+x || strings.Contains(errOut, "Notice") {
		t.Fatalf("admin's verify (root cached by the signing): exit %d %q %q", code, out, errOut)
	}
	otherRoot := filepath.Join(admin.dir, "other-root.pem")
	code, _, errOut = admin.run("verify", "--save-root-key", otherRoot, other+":v1")
	if code != 0 || !strings.Contains(errOut, "Notice: trusting the root of "+other+" on first use") {
		t.Fatalf("first use of another repository: exit %d %q", code, errOut)
	}

	ci := newTrustUser(t, srv, "ci")
	rootCache := filepath.Join(ci.dir, "docker", "trust", "tuf", gun, "metadata", "root.json")

	// A wrong pin on a fresh machine: refused, both IDs named, nothing kept.
	code, out, errOut = ci.run("verify", "--root-key", otherRoot, gun+":v1")
	if code != ExitError || out != "" || !strings.Contains(errOut, "the root of "+gun+" is signed by root key ") || !strings.Contains(errOut, "not by the pinned root key ") {
		t.Fatalf("verify with another repository's root key: exit %d %q %q", code, out, errOut)
	}
	if _, err := os.Stat(rootCache); !os.IsNotExist(err) {
		t.Fatalf("a refused root was cached: %v", err)
	}
	// The right pin: verified, no first-use notice.
	code, out, errOut = ci.run("verify", "--root-key", rootFile, gun+":v1")
	if code != 0 || strings.TrimSpace(out) != "sha256:"+x || errOut != "" {
		t.Fatalf("verify with the root key: exit %d %q %q", code, out, errOut)
	}
	// The cached root is checked against a pin too.
	code, _, errOut = ci.run("verify", "--root-key", otherRoot, gun+":v1")
	if code != ExitError || !strings.Contains(errOut, "not by the key in --root-key "+otherRoot) {
		t.Fatalf("cached root against another pin: exit %d %q", code, errOut)
	}
	// A bad file is a bad command line.
	if code, _, errOut := ci.run("verify", "--root-key", filepath.Join(ci.dir, "absent.pem"), gun+":v1"); code != ExitUsage || !strings.Contains(errOut, "--root-key") {
		t.Fatalf("missing --root-key file: exit %d %q", code, errOut)
	}

	// First use without a pin: the notice on stderr, JSON alone on stdout.
	fresh := newTrustUser(t, srv, "fresh")
	code, out, errOut = fresh.run("-o", "json", "verify", gun+":v1")
	var res verifyResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Digest != "sha256:"+x {
		t.Fatalf("verify -o json: exit %d %q", code, out)
	}
	if strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "Notice: trusting the root of "+gun+" on first use (root key ") {
		t.Fatalf("first-use notice: %q", errOut)
	}
	if _, _, errOut := fresh.run("verify", gun+":v1"); errOut != "" {
		t.Fatalf("second verify still notices: %q", errOut)
	}

	// trust_pinning from -c, in verify and in signet trust.
	pinned := newTrustUser(t, srv, "pinned")
	cfg := filepath.Join(pinned.dir, "config.json")
	write := func(s string) {
		if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"trust_pinning": {"certs": {"example.com/pin/*": ["` + strings.Repeat("0", 64) + `"]}}}`)
	for _, args := range [][]string{{"verify", gun + ":v1"}, {"trust", "inspect", gun}} {
		code, _, errOut := pinned.run(append([]string{"-c", cfg}, args...)...)
		if code == 0 || !strings.Contains(errOut, "no root certificate of "+gun+" has a pinned key ID") {
			t.Fatalf("%v with a certs pin that does not match: exit %d %q", args, code, errOut)
		}
	}
	write(`{"trust_pinning": {"disable_tofu": true}}`)
	if code, _, errOut := pinned.run("-c", cfg, "verify", gun+":v1"); code == 0 || !strings.Contains(errOut, "trust on first use is disabled") {
		t.Fatalf("verify with disable_tofu: exit %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(pinned.dir, "docker", "trust", "tuf", gun)); !os.IsNotExist(err) {
		t.Fatalf("refused roots left trust data: %v", err)
	}
	if code, _, errOut := pinned.run("-c", filepath.Join(pinned.dir, "absent.json"), "verify", gun+":v1"); code == 0 || !strings.Contains(errOut, "config file") {
		t.Fatalf("verify with a missing -c file: exit %d %q", code, errOut)
	}
}

// TestTrustSignAsSigner: with keys of two signers in one trust directory,
// --signer NAME signs only as NAME; a name that is not a signer is a
// usage error; a digest given with --digest brings no "now points to"
// note.
func TestTrustSignAsSigner(t *testing.T) {
	srv := startTrustTestServer(t)
	const gun = "example.com/signer/app"
	admin := newTrustUser(t, srv, "admin")
	for _, name := range []string{"alice", "bob"} {
		admin.ok("trust", "key", "generate", name, "--dir", admin.dir)
		admin.ok("trust", "signer", "add", "--key", filepath.Join(admin.dir, name+".pub"), name, gun)
	}
	x, y := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	admin.ok("trust", "sign", "--signer", "alice", gun+":v1", "--digest", "sha256:"+x, "--size", "10")
	if got := tagRows(admin.inspect(gun)); !slices.Equal(got, []string{"v1 " + x + " alice"}) {
		t.Fatalf("signed as alice: %q", got)
	}
	code, _, errOut := admin.run("trust", "sign", "--signer", "alice", gun+":v1", "--digest", "sha256:"+y, "--size", "10")
	if code != 0 || strings.Contains(errOut, "now points to") {
		t.Fatalf("re-sign with --digest: exit %d %q", code, errOut)
	}
	if got := tagRows(admin.inspect(gun)); !slices.Equal(got, []string{"v1 " + y + " alice"}) {
		t.Fatalf("re-signed as alice: %q", got)
	}
	code, _, errOut = admin.run("trust", "sign", "--signer", "mallory", gun+":v1", "--digest", "sha256:"+y, "--size", "10")
	if code != ExitUsage || !strings.Contains(errOut, "--signer mallory: not a signer of "+gun+" (its signers: alice, bob)") {
		t.Fatalf("sign as a stranger: exit %d %q", code, errOut)
	}
	// Without --signer, every signer whose key is held signs (docker).
	admin.ok("trust", "sign", gun+":v2", "--digest", "sha256:"+x, "--size", "10")
	if got := tagRows(admin.inspect(gun + ":v2")); !slices.Equal(got, []string{"v2 " + x + " alice,bob"}) {
		t.Fatalf("signed by every held signer: %q", got)
	}
	// A signer whose key is not held.
	carol := newTrustUser(t, srv, "carol")
	carol.ok("trust", "key", "generate", "carol", "--dir", carol.dir)
	code, _, errOut = carol.run("trust", "sign", "--signer", "alice", gun+":v3", "--digest", "sha256:"+x, "--size", "10")
	if code == 0 || !strings.Contains(errOut, "--signer alice: none of its keys") {
		t.Fatalf("sign as alice without her key: exit %d %q", code, errOut)
	}
}

// TestListOffline: with the trust server out of reach, list shows the
// data verified last with a warning, as notary does; without a cache it
// fails.
func TestListOffline(t *testing.T) {
	srv := startTrustTestServer(t)
	const gun = "example.com/offline/app"
	u := newTrustUser(t, srv, "u")
	x := strings.Repeat("ab", 32)
	u.ok("trust", "sign", "--signer", "u", gun+":v1", "--digest", "sha256:"+x, "--size", "10")
	trustDir := filepath.Join(u.dir, "docker", "trust")
	base := []string{"-d", trustDir, "--tlscacert", srv.caFile}
	if out := u.ok(append(base, "-s", srv.url, "list", gun)...); !strings.Contains(out, x) {
		t.Fatalf("online list: %s", out)
	}
	down := append(base, "-s", "https://127.0.0.1:1", "list", gun)
	code, out, errOut := u.run(down...)
	if code != 0 || !strings.Contains(out, "v1") || !strings.Contains(out, x) ||
		!strings.Contains(errOut, "WARNING: listing the trust data of "+gun+" cached on this machine") {
		t.Fatalf("offline list: exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = u.run(append(base, "-s", "https://127.0.0.1:1", "list", "example.com/offline/never")...)
	if code == 0 || strings.Contains(errOut, "cached on this machine") {
		t.Fatalf("offline list of an uncached repository: exit %d %q", code, errOut)
	}
	// A certificate that does not verify is a setting to fix, not a
	// reason to list the cache.
	code, _, errOut = u.run("-d", trustDir, "-s", srv.url, "list", gun)
	if code == 0 || strings.Contains(errOut, "cached on this machine") || !strings.Contains(errOut, "--tlscacert") {
		t.Fatalf("list without the CA: exit %d %q", code, errOut)
	}
}

// TestCommandLineErrors: one line and a pointer to --help for a bad flag;
// https only; a guessed trust server says how to name the right one; the
// docker commands' help shows their own defaults and no notary ones.
func TestCommandLineErrors(t *testing.T) {
	u := &trustUser{t: t, dir: t.TempDir()}
	u.env = map[string]string{"HOME": u.dir, "DOCKER_CONFIG": filepath.Join(u.dir, "docker")}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"list", "--bogus", "a/b"}, ExitUsage, "* fatal: unknown flag: --bogus (see 'signet list --help')\n"},
		{[]string{"trust", "sign", "--bogus", "a/b:c"}, ExitUsage, "* fatal: unknown flag: --bogus (see 'signet trust sign --help')\n"},
		{[]string{"-s", "http://127.0.0.1:1", "list", "a/b"}, ExitUsage, "the trust server must be https: http://127.0.0.1:1"},
		{[]string{"-s", "http://127.0.0.1:1", "verify", "127.0.0.1:1/a/b:c"}, ExitUsage, "the trust server must be https"},
		{[]string{"verify", "127.0.0.1:1/a/b:c"}, ExitError, "was guessed from the image's registry. If the registry keeps its trust data elsewhere, name that server: export DOCKER_CONTENT_TRUST_SERVER=https://HOST:PORT"},
	} {
		code, out, errOut := u.run(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
		if strings.Contains(errOut, "Usage:") {
			t.Errorf("%v printed the usage:\n%s", tc.args, errOut)
		}
	}
	for _, args := range [][]string{{"trust", "sign", "--help"}, {"verify", "--help"}} {
		out := u.ok(args...)
		for _, bad := range []string{"notary-server:4443", "~/.notary", "--debug", "--verbose"} {
			if strings.Contains(out, bad) {
				t.Errorf("%v shows %q:\n%s", args, bad, out)
			}
		}
		for _, want := range []string{"DOCKER_CONTENT_TRUST_SERVER", "$DOCKER_CONFIG/trust", "trust_pinning"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v lacks %q:\n%s", args, want, out)
			}
		}
		if slices.Contains(args, "verify") != strings.Contains(out, "--output") {
			t.Errorf("%v: --output shown where it does not apply, or hidden where it does:\n%s", args, out)
		}
	}
	out := u.ok("list", "--help")
	for _, want := range []string{"notary-server:4443", "--debug", "~/.notary"} {
		if !strings.Contains(out, want) {
			t.Errorf("list --help lacks the notary default %q:\n%s", want, out)
		}
	}
	// The help of one tree does not leak into the next (flags restored).
	if out := u.ok("list", "--help"); !strings.Contains(out, "--verbose") {
		t.Errorf("flags stayed hidden after the help of trust:\n%s", out)
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if out := u.ok(args...); !strings.HasPrefix(out, "signet ") || !strings.Contains(out, " go1.") {
			t.Errorf("%v: %q", args, out)
		}
	}
}

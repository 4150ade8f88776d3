package cli

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// trustUser is one person with their own Docker configuration.
type trustUser struct {
	t   *testing.T
	env map[string]string
	dir string
}

func newTrustUser(t *testing.T, srv *trustTestServer, name string) *trustUser {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "docker")
	tlsDir := filepath.Join(cfg, "tls", srv.host)
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(srv.caFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tlsDir, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	return &trustUser{t: t, dir: dir, env: map[string]string{
		"HOME":                                       dir,
		"DOCKER_CONFIG":                              cfg,
		"DOCKER_CONTENT_TRUST_SERVER":                srv.url,
		"DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE":       name + "-root-passphrase",
		"DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": name + "-repo-passphrase",
	}}
}

// run runs signet in-process and returns its exit code and output.
func (u *trustUser) run(args ...string) (int, string, string) {
	u.t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, Env{
		Getenv: func(k string) string { return u.env[k] },
		Stdout: &out, Stderr: &errOut,
	})
	return code, out.String(), errOut.String()
}

func (u *trustUser) ok(args ...string) string {
	u.t.Helper()
	code, out, errOut := u.run(args...)
	if code != 0 {
		u.t.Fatalf("signet %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (u *trustUser) inspect(ref string) trustRepoJSON {
	u.t.Helper()
	var repos []trustRepoJSON
	out := u.ok("trust", "inspect", ref)
	if err := json.Unmarshal([]byte(out), &repos); err != nil || len(repos) != 1 {
		u.t.Fatalf("inspect %s: %v\n%s", ref, err, out)
	}
	return repos[0]
}

func tagRows(r trustRepoJSON) []string {
	var out []string
	for _, t := range r.SignedTags {
		out = append(out, t.SignedTag+" "+t.Digest+" "+strings.Join(t.Signers, ","))
	}
	return out
}

// TestTrustAndVerify runs the docker trust commands and signet verify
// against a signet-server: two signers, one of whom moves a tag through the
// shared targets/releases role.
func TestTrustAndVerify(t *testing.T) {
	srv := startTrustTestServer(t)
	const gun = "example.com/signet/app"
	admin := newTrustUser(t, srv, "admin")
	alice := newTrustUser(t, srv, "alice")
	bob := newTrustUser(t, srv, "bob")
	x := strings.Repeat("ab", 32)
	y := strings.Repeat("cd", 32)

	out := alice.ok("trust", "key", "generate", "alice", "--dir", alice.dir)
	if !strings.Contains(out, "Successfully generated and loaded private key") {
		t.Fatalf("key generate: %s", out)
	}
	pub, err := os.ReadFile(filepath.Join(alice.dir, "alice.pub"))
	if err != nil || !strings.Contains(string(pub), "role: alice") {
		t.Fatalf("alice.pub: %v\n%s", err, pub)
	}
	bob.ok("trust", "key", "generate", "bob", "--dir", bob.dir)

	// Before anything is signed.
	if code, _, errOut := admin.run("verify", gun+":v1"); code != ExitNotFound {
		t.Fatalf("verify of an unknown repository: exit %d, want %d\n%s", code, ExitNotFound, errOut)
	}

	out = admin.ok("trust", "signer", "add", "--key", filepath.Join(alice.dir, "alice.pub"), "alice", gun)
	for _, want := range []string{"Initializing signed repository for " + gun, "Successfully added signer: alice to " + gun} {
		if !strings.Contains(out, want) {
			t.Fatalf("signer add output lacks %q:\n%s", want, out)
		}
	}
	admin.ok("trust", "signer", "add", "--key", filepath.Join(bob.dir, "bob.pub"), "bob", gun)
	repo := admin.inspect(gun)
	if len(repo.Signers) != 2 || repo.Signers[0].Name != "alice" || repo.Signers[1].Name != "bob" || len(repo.SignedTags) != 0 {
		t.Fatalf("inspect after signer add: %+v", repo)
	}
	if len(repo.AdministrativeKeys) != 2 || repo.AdministrativeKeys[0].Name != "Root" || repo.AdministrativeKeys[1].Name != "Repository" {
		t.Fatalf("administrative keys: %+v", repo.AdministrativeKeys)
	}

	alice.ok("trust", "sign", gun+":v1", "--digest", "sha256:"+x, "--size", "100")
	bob.ok("trust", "sign", gun+":v1", "--digest", "sha256:"+x, "--size", "100")
	if got := tagRows(alice.inspect(gun + ":v1")); !slices.Equal(got, []string{"v1 " + x + " alice,bob"}) {
		t.Fatalf("signed tags: %q", got)
	}
	if out := admin.ok("verify", "--require-signer", "alice,bob", "--threshold", "2", gun+":v1"); strings.TrimSpace(out) != "sha256:"+x {
		t.Fatalf("verify both: %q", out)
	}

	// bob, who can write targets/releases, moves v1.
	bob.ok("trust", "sign", gun+":v1", "--digest", "sha256:"+y, "--size", "200")
	if out := admin.ok("verify", gun+":v1"); strings.TrimSpace(out) != "sha256:"+y {
		t.Fatalf("docker-style verify follows targets/releases: %q", out)
	}
	code, out, errOut := admin.run("verify", "--require-signer", "alice", gun+":v1")
	if code != 0 || strings.TrimSpace(out) != "sha256:"+x || !strings.Contains(errOut, "WARNING: targets/releases points") {
		t.Fatalf("verify --require-signer alice: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = admin.run("-o", "json", "verify", "--require-signer", "alice", gun+":v1")
	var res verifyResult
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || res.Digest != "sha256:"+x || !slices.Equal(res.Signers, []string{"targets/alice"}) {
		t.Fatalf("verify -o json: exit %d, %v, %q %q", code, err, out, errOut)
	}
	if code, _, errOut := admin.run("verify", "--require-signer", "alice,bob", "--threshold", "2", gun+":v1"); code != ExitVerify {
		t.Fatalf("verify both after the move: exit %d, want %d\n%s", code, ExitVerify, errOut)
	}
	if out := admin.ok("verify", "--require-signer", "alice", gun+"@sha256:"+x); strings.TrimSpace(out) != "sha256:"+x {
		t.Fatalf("verify by digest: %q", out)
	}
	if code, _, _ := admin.run("verify", gun+"@sha256:"+x); code != ExitVerify {
		t.Fatalf("verify by digest that releases no longer has: exit %d, want %d", code, ExitVerify)
	}
	if code, _, _ := admin.run("verify", gun+":nope"); code != ExitNotFound {
		t.Fatalf("verify of an unsigned tag: exit %d, want %d", code, ExitNotFound)
	}
	if code, _, _ := admin.run("verify", "--threshold", "3", "--require-signer", "alice", gun+":v1"); code != ExitUsage {
		t.Fatalf("verify with a bad threshold: exit %d, want %d", code, ExitUsage)
	}

	// inspect --pretty.
	out = admin.ok("trust", "inspect", "--pretty", gun)
	for _, want := range []string{"Signatures for " + gun, "List of signers and their keys for " + gun, "Repository Key:\t", "Root Key:\t"} {
		if !strings.Contains(out, want) {
			t.Fatalf("pretty inspect lacks %q:\n%s", want, out)
		}
	}

	// revoke by bob removes v1 from releases and targets/bob.
	out = bob.ok("trust", "revoke", gun+":v1")
	if !strings.Contains(out, "Successfully deleted signature for "+gun+":v1") {
		t.Fatalf("revoke: %s", out)
	}
	if got := tagRows(admin.inspect(gun)); len(got) != 0 {
		t.Fatalf("signed tags after revoke: %q", got)
	}

	// signer remove: alice leaves; bob, now the only key of releases, is
	// kept unless forced.
	admin.ok("trust", "signer", "remove", "alice", gun)
	code, _, errOut = admin.run("trust", "signer", "remove", "bob", gun)
	if code == 0 || !strings.Contains(errOut, "--force") {
		t.Fatalf("removing the last releases signer should be refused: exit %d\n%s", code, errOut)
	}
	admin.ok("trust", "signer", "remove", "-f", "bob", gun)
	if repo := admin.inspect(gun); len(repo.Signers) != 0 {
		t.Fatalf("signers after remove: %+v", repo.Signers)
	}
}

func TestTrustKeyLoad(t *testing.T) {
	u := &trustUser{t: t, dir: t.TempDir()}
	u.env = map[string]string{"HOME": u.dir, "DOCKER_CONFIG": filepath.Join(u.dir, "docker"), "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "repo-passphrase"}
	k, err := newSignerKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := marshalTestKey(k)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(u.dir, "key.pem")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := u.run("trust", "key", "load", f); code == 0 || !strings.Contains(errOut, "must not be readable or writable by others") {
		t.Fatalf("key load of a 0644 file: exit %d\n%s", code, errOut)
	}
	if err := os.Chmod(f, 0o600); err != nil {
		t.Fatal(err)
	}
	out := u.ok("trust", "key", "load", "--name", "carol", f)
	if !strings.Contains(out, "Successfully imported key from "+f) {
		t.Fatalf("key load: %s", out)
	}
	ents, _ := os.ReadDir(filepath.Join(u.dir, "docker", "trust", "private"))
	if len(ents) != 1 {
		t.Fatalf("private keys: %v", ents)
	}
	kb, _ := os.ReadFile(filepath.Join(u.dir, "docker", "trust", "private", ents[0].Name()))
	if !strings.Contains(string(kb), "role: carol") || !strings.Contains(string(kb), "ENCRYPTED PRIVATE KEY") {
		t.Fatalf("stored key:\n%s", kb)
	}
	if code, _, _ := u.run("trust", "key", "generate", "Bad Name"); code != ExitUsage {
		t.Fatalf("bad key name: exit %d", code)
	}
}

func TestDockerSettings(t *testing.T) {
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls", "notary.example.com:4443")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.crt", "b.crt", "client.cert", "client.key"} {
		if err := os.WriteFile(filepath.Join(tlsDir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"DOCKER_CONFIG": dir}
	a := newApp(Env{Getenv: func(k string) string { return env[k] }})
	d := &dockerTrust{a: a}
	for _, tc := range []struct{ ref, server, want string }{
		{"alpine", "", "https://notary.docker.io"},
		{"registry.example.com:5000/a/b:v1", "", "https://registry.example.com:5000"},
		{"127.0.0.1:5000/a", "https://notary.example.com:4443", "https://notary.example.com:4443"},
	} {
		env["DOCKER_CONTENT_TRUST_SERVER"] = tc.server
		ref, err := parseRef(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		s, err := d.settings(ref)
		if err != nil || s.server != tc.want || s.trustDir != filepath.Join(dir, "trust") || s.skipVerify {
			t.Fatalf("%s: %+v %v", tc.ref, s, err)
		}
		if tc.server != "" && (!slices.Equal(s.cas, []string{filepath.Join(tlsDir, "b.crt"), filepath.Join(tlsDir, "ca.crt")}) || s.certFile != filepath.Join(tlsDir, "client.cert")) {
			t.Fatalf("tls dir: %+v", s)
		}
	}
	env["DOCKER_CONTENT_TRUST_SERVER"] = "http://notary.example.com"
	ref, _ := parseRef("a/b")
	if _, err := d.settings(ref); err == nil || !strings.Contains(err.Error(), "valid https URL required") {
		t.Fatalf("http trust server: %v", err)
	}
}

func marshalTestKey(k interface{ Public() crypto.PublicKey }) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

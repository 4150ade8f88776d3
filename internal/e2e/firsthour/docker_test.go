package firsthour

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

// push copies a one-layer image to the registry as alice with skopeo,
// trusting signet's CA for the token realm, and returns its digest.
func (s *authSetup) push(t *testing.T, ref, content string) string {
	t.Helper()
	e2etest.Need(t, "skopeo")
	dir := t.TempDir()
	layout := e2etest.WriteOCILayout(t, filepath.Join(dir, "layout"), "v", content)
	certDir := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(s.caFile)
	if err := os.WriteFile(filepath.Join(certDir, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	c := e2etest.Command{Env: e2etest.BaseEnv(dir)}
	c.OK(t, "skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", "--dest-cert-dir", certDir,
		"--dest-creds", "alice:"+password("alice"), "oci:"+layout+":v", "docker://"+ref)
	r := c.OK(t, "skopeo", "inspect", "--tls-verify=false", "--cert-dir", certDir, "--creds", "alice:"+password("alice"),
		"--format", "{{.Digest}}", "docker://"+ref)
	return strings.TrimSpace(r.Stdout)
}

type inspected []struct {
	Name       string
	SignedTags []struct {
		SignedTag string
		Digest    string
		Signers   []string
	}
	Signers []struct{ Name string }
}

// dockerInspect runs the real `docker trust inspect` with u's
// configuration and returns the signers of tag and its digest.
func dockerInspect(t *testing.T, u *user, ref, tag string) (string, []string) {
	t.Helper()
	e2etest.Need(t, "docker")
	r := u.cmd.OK(t, "docker", "trust", "inspect", ref)
	var repos inspected
	if err := json.Unmarshal([]byte(r.Stdout), &repos); err != nil || len(repos) != 1 {
		t.Fatalf("docker trust inspect: %v\n%s", err, r)
	}
	for _, st := range repos[0].SignedTags {
		if st.SignedTag == tag {
			return "sha256:" + st.Digest, st.Signers
		}
	}
	t.Fatalf("docker trust inspect shows no tag %s:\n%s", tag, r)
	return "", nil
}

// TestDockerCredentials: signet trust and signet verify log in with the
// registry credentials of the Docker configuration (auths, then a
// credential helper); trust sign resolves the tag in a registry whose
// token realm is the trust server, trusting the CA only from
// ~/.docker/tls/<server>/; --signer NAME signs as NAME alone; the "now
// points to" note appears when the registry's digest moved; docker trust
// inspect sees it all.
func TestDockerCredentials(t *testing.T) {
	e2etest.Need(t, "docker", "skopeo")
	s := newAuthSetup(t)
	ref := s.registry.Host + "/first/app"
	d1 := s.push(t, ref+":v1", "first image\n")

	u := s.newUser(t)
	u.dockerLogin(t, s.registry.Host, "alice", password("alice"))
	// Two signers' keys in one trust directory (alice and bob).
	keyDir := t.TempDir()
	for _, name := range []string{"alice", "bob"} {
		u.cmd.OK(t, s.signet, "trust", "key", "generate", name, "--dir", keyDir)
	}
	u.cmd.OK(t, s.signet, "trust", "signer", "add", "--key", filepath.Join(keyDir, "alice.pub"), "alice", ref)
	u.cmd.OK(t, s.signet, "trust", "signer", "add", "--key", filepath.Join(keyDir, "bob.pub"), "bob", ref)

	// Signing as alice: the digest from the registry (its token realm is
	// the trust server, reached with the CA in ~/.docker/tls/<server>/).
	r := u.cmd.OK(t, s.signet, "trust", "sign", "--signer", "alice", ref+":v1")
	e2etest.WantOutput(t, r, "Successfully signed "+ref+":v1")
	if strings.Contains(r.Stderr, "now points to") {
		t.Errorf("a first signature notes a moved tag:\n%s", r)
	}
	if dg, signers := dockerInspect(t, u, ref, "v1"); dg != d1 || !slices.Equal(signers, []string{"alice"}) {
		t.Errorf("docker trust inspect: v1 %s by %v, want %s by [alice]", dg, signers, d1)
	}
	if r := u.cmd.OK(t, s.signet, "verify", "--require-signer", "alice", ref+":v1"); strings.TrimSpace(r.Stdout) != d1 {
		t.Errorf("verify: %q, want %s", r.Stdout, d1)
	}

	// The tag moves in the registry; signing it again says so.
	d2 := s.push(t, ref+":v1", "second image\n")
	r = u.cmd.OK(t, s.signet, "trust", "sign", "--signer", "alice", ref+":v1")
	e2etest.WantOutput(t, r, "Note: "+ref+":v1 now points to "+d2+" in the registry; signing that digest.")
	if dg, signers := dockerInspect(t, u, ref, "v1"); dg != d2 || !slices.Equal(signers, []string{"alice"}) {
		t.Errorf("docker trust inspect after the move: v1 %s by %v, want %s by [alice]", dg, signers, d2)
	}

	// A CI machine with a credential helper instead of auths.
	ci := s.newUser(t)
	helperDir := t.TempDir()
	helper := fmt.Sprintf("#!/bin/sh\ncat >/dev/null\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"alice\",\"Secret\":\"%s\"}\\n'\n", s.registry.Host, password("alice"))
	if err := os.WriteFile(filepath.Join(helperDir, "docker-credential-firsthour"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{"credHelpers": map[string]string{s.registry.Host: "firsthour"}})
	if err := os.WriteFile(filepath.Join(ci.config, "config.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	ci.cmd = ci.cmd.WithEnv("PATH=" + helperDir + ":" + os.Getenv("PATH"))
	if r := ci.cmd.OK(t, s.signet, "verify", "--require-signer", "alice", ref+":v1"); strings.TrimSpace(r.Stdout) != d2 ||
		!strings.Contains(r.Stderr, "Notice: trusting the root of "+ref+" on first use") {
		t.Errorf("verify with a credential helper: %s", r)
	}
	// Without credentials: refused, with the ways to log in.
	anon := s.newUser(t)
	r = anon.cmd.Fail(t, s.signet, "verify", ref+":v1")
	e2etest.WantOutput(t, r, "refused the request", "docker login")
	// NOTARY_AUTH works for verify too.
	anon.cmd.WithEnv(notaryAuth("alice", password("alice"))).OK(t, s.signet, "verify", ref+":v1")
}

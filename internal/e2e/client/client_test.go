package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/cli"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/inproc"
)

// manifestDigest asks the registry for the tag's manifest and hashes it.
func manifestDigest(t *testing.T, host, repo, tag string) (string, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET manifest: %s\n%s", resp.Status, b)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), len(b)
}

// run runs a client program and returns its standard output; a failure
// fails the test.
func run(t *testing.T, env []string, args ...string) string {
	t.Helper()
	return e2etest.Command{Env: env}.OK(t, args...).Stdout
}

// TestSignDaemonless pushes an image to a real registry, signs it with
// `signet trust sign` (the digest comes from the registry), and checks
// what the real docker and notary clients see.
func TestSignDaemonless(t *testing.T) {
	e2etest.Need(t, "docker-registry", "skopeo", "docker", "notary")
	home := t.TempDir()
	reg := e2etest.StartRegistry(t, "").Host
	layout := e2etest.WriteOCILayout(t, filepath.Join(home, "oci"), "v1", "signed by signet without a docker daemon\n")
	baseEnv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_RUNTIME_DIR=" + home}
	run(t, baseEnv, "skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", "oci:"+layout+":v1", "docker://"+reg+"/test/app:v1")
	digest, size := manifestDigest(t, reg, "test/app", "v1")
	gun := reg + "/test/app"

	srv := inproc.StartServer(t, inproc.ServerOptions{})
	srvHost, caFile := srv.Host, srv.CAFile
	dockerConfig := filepath.Join(home, "docker")
	tlsDir := filepath.Join(dockerConfig, "tls", srvHost)
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(caFile)
	if err := os.WriteFile(filepath.Join(tlsDir, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"HOME":                                       home,
		"DOCKER_CONFIG":                              dockerConfig,
		"DOCKER_CONTENT_TRUST_SERVER":                "https://" + srvHost,
		"DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE":       "e2e-root-passphrase",
		"DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "e2e-repo-passphrase",
	}
	var out, errOut bytes.Buffer
	code := cli.Main(t.Context(), []string{"trust", "sign", "--signer", "ci", gun + ":v1"}, cli.Env{
		Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errOut,
	})
	if code != 0 {
		t.Fatalf("signet trust sign: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "Successfully signed "+gun+":v1") {
		t.Fatalf("signet trust sign output:\n%s", out.String())
	}

	// The real Docker CLI (no daemon needed for inspect).
	var denv []string
	for k, v := range env {
		denv = append(denv, k+"="+v)
	}
	denv = append(denv, "PATH="+os.Getenv("PATH"), "DOCKER_HOST=unix://"+filepath.Join(home, "no-daemon.sock"), "DOCKER_CLI_HINTS=false")
	inspect := run(t, denv, "docker", "trust", "inspect", gun+":v1")
	var repos []struct {
		Name       string
		SignedTags []struct {
			SignedTag string
			Digest    string
			Signers   []string
		}
		Signers []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(inspect), &repos); err != nil || len(repos) != 1 {
		t.Fatalf("docker trust inspect: %v\n%s", err, inspect)
	}
	r := repos[0]
	if r.Name != gun+":v1" || len(r.SignedTags) != 1 || r.SignedTags[0].SignedTag != "v1" || r.SignedTags[0].Digest != digest ||
		strings.Join(r.SignedTags[0].Signers, ",") != "ci" || len(r.Signers) != 1 || r.Signers[0].Name != "ci" {
		t.Fatalf("docker trust inspect: want v1 → %s signed by ci\n%s", digest, inspect)
	}

	// The real notary CLI.
	list := run(t, append(baseEnv, "NOTARY_ROOT_PASSPHRASE=x"), "notary", "-s", "https://"+srvHost, "--tlscacert", caFile,
		"-d", filepath.Join(home, "notary"), "list", gun, "--roles", "targets/releases")
	found := false
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == "v1" && f[1] == digest && f[2] == fmt.Sprint(size) && f[3] == "targets/releases" {
			found = true
		}
	}
	if !found {
		t.Fatalf("notary list lacks v1 %s %d targets/releases:\n%s", digest, size, list)
	}

	// signet verify agrees, with the signer's own role required.
	out.Reset()
	errOut.Reset()
	code = cli.Main(t.Context(), []string{"verify", "--require-signer", "ci", gun + ":v1"}, cli.Env{
		Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errOut,
	})
	if code != 0 || strings.TrimSpace(out.String()) != "sha256:"+digest {
		t.Fatalf("signet verify: exit %d %q %s", code, out.String(), errOut.String())
	}
}

package compat

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

// registry is a Debian docker-registry (e2etest.StartRegistry).
type registry struct{ *e2etest.Registry }

func startRegistry(t *testing.T) *registry {
	t.Helper()
	return &registry{e2etest.StartRegistry(t, "")}
}

// push copies the OCI layout's tag into the registry with skopeo.
func (reg *registry) push(t *testing.T, home, layout, repo, tag string) {
	t.Helper()
	e2etest.Need(t, "skopeo")
	c := command{Env: e2etest.BaseEnv(home), Dir: home}
	c.OK(t, "skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
		"oci:"+layout+":"+tag, "docker://"+reg.Host+"/"+repo+":"+tag)
}

// manifest returns the registry's digest (hex, no "sha256:") and the
// length in bytes of repo:tag's manifest.
func (reg *registry) manifest(t *testing.T, repo, tag string) (digest, size string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+reg.Host+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", strings.Join([]string{
		"application/vnd.oci.image.manifest.v1+json",
		"application/vnd.docker.distribution.manifest.v2+json",
	}, ", "))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET manifest %s:%s: %v", repo, tag, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET manifest %s:%s: %s %v %s\n%s", repo, tag, resp.Status, err, body, reg.Proc.LogTail(20))
	}
	sum := sha256.Sum256(body)
	digest = hex.EncodeToString(sum[:])
	if h := resp.Header.Get("Docker-Content-Digest"); h != "sha256:"+digest {
		t.Fatalf("registry says the manifest digest is %q, the body hashes to sha256:%s", h, digest)
	}
	return digest, strconv.Itoa(len(body))
}

// writeOCILayout writes a one-layer image (a tiny text file) as an OCI
// image layout with tag, and returns the layout directory.
func writeOCILayout(t *testing.T, dir, tag string) string {
	t.Helper()
	return e2etest.WriteOCILayout(t, dir, tag, "hello from the signet compatibility tests\n")
}

package compat

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// registry is a Debian docker-registry (distribution 2.8) on 127.0.0.1
// over plain HTTP with filesystem storage in the test's temp dir.
type registry struct {
	host    string // 127.0.0.1:port
	logFile string
}

func startRegistry(t *testing.T, dir string) *registry {
	t.Helper()
	need(t, "docker-registry")
	if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "storage"), addr)
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "registry.log")
	d := startDaemon(t, "docker-registry", dir, logFile, nil, "docker-registry", "serve", cfgFile)

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-d.done:
			t.Fatalf("docker-registry exited at start (%v):\n%s", d.exitError(), fileTail(logFile, 30))
		default:
		}
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer GET /v2/ on %s within 20s (last error %v):\n%s", addr, err, fileTail(logFile, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &registry{host: addr, logFile: logFile}
}

// push copies the OCI layout's tag into the registry with skopeo.
func (reg *registry) push(t *testing.T, home, layout, repo, tag string) {
	t.Helper()
	need(t, "skopeo")
	c := command{env: baseEnv(home), dir: home}
	c.mustOK(t, "skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
		"oci:"+layout+":"+tag, "docker://"+reg.host+"/"+repo+":"+tag)
}

// manifest returns the registry's digest (hex, no "sha256:") and the
// length in bytes of repo:tag's manifest.
func (reg *registry) manifest(t *testing.T, repo, tag string) (digest, size string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+reg.host+"/v2/"+repo+"/manifests/"+tag, nil)
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
		t.Fatalf("GET manifest %s:%s: %s %v %s\n%s", repo, tag, resp.Status, err, body, fileTail(reg.logFile, 20))
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
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	type descriptor struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int               `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	writeBlob := func(mediaType string, b []byte) descriptor {
		sum := sha256.Sum256(b)
		h := hex.EncodeToString(sum[:])
		if err := os.WriteFile(filepath.Join(blobs, h), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return descriptor{MediaType: mediaType, Digest: "sha256:" + h, Size: len(b)}
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// The layer: a tar with one file, gzip-compressed.
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	content := []byte("hello from the signet compatibility tests\n")
	if err := tw.WriteHeader(&tar.Header{
		Name: "hello.txt", Mode: 0o644, Size: int64(len(content)),
		ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	diffID := sha256.Sum256(tarBuf.Bytes())
	var gzBuf bytes.Buffer
	gz := gzip.NewWriter(&gzBuf)
	if _, err := gz.Write(tarBuf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	layer := writeBlob("application/vnd.oci.image.layer.v1.tar+gzip", gzBuf.Bytes())

	config := writeBlob("application/vnd.oci.image.config.v1+json", mustJSON(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Cmd": []string{"/hello.txt"}},
		"rootfs": map[string]any{
			"type":     "layers",
			"diff_ids": []string{"sha256:" + hex.EncodeToString(diffID[:])},
		},
	}))
	manifest := writeBlob("application/vnd.oci.image.manifest.v1+json", mustJSON(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        config,
		"layers":        []descriptor{layer},
	}))
	manifest.Annotations = map[string]string{"org.opencontainers.image.ref.name": tag}
	index := mustJSON(map[string]any{
		"schemaVersion": 2,
		"manifests":     []descriptor{manifest},
	})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

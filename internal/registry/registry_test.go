package registry

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestParseReference(t *testing.T) {
	for _, tc := range []struct{ in, gun, registry, repo, tag, digest string }{
		{"alpine", "docker.io/library/alpine", "index.docker.io", "library/alpine", "", ""},
		{"alpine:3", "docker.io/library/alpine", "index.docker.io", "library/alpine", "3", ""},
		{"docker.io/me/app:v1", "docker.io/me/app", "index.docker.io", "me/app", "v1", ""},
		{"127.0.0.1:5000/test/app:v1", "127.0.0.1:5000/test/app", "127.0.0.1:5000", "test/app", "v1", ""},
		{"example.com/a/b@sha256:" + strings.Repeat("a", 64), "example.com/a/b", "example.com", "a/b", "", "sha256:" + strings.Repeat("a", 64)},
		{"localhost:5000/x:t@sha256:" + strings.Repeat("b", 64), "localhost:5000/x", "localhost:5000", "x", "t", "sha256:" + strings.Repeat("b", 64)},
		{"a.b-c__d/e-f:V_1.-x", "a.b-c__d/e-f", "a.b-c__d", "e-f", "V_1.-x", ""},
		{"[::1]:5000/a:v1", "[::1]:5000/a", "[::1]:5000", "a", "v1", ""},
		{"a:" + strings.Repeat("x", 128), "docker.io/library/a", "index.docker.io", "library/a", strings.Repeat("x", 128), ""},
	} {
		r, err := ParseReference(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if r.GUN() != tc.gun || r.Registry != tc.registry || r.Repository != tc.repo || r.Tag != tc.tag || r.Digest != tc.digest {
			t.Errorf("%s: got %+v (GUN %s)", tc.in, r, r.GUN())
		}
	}
	for _, bad := range []string{"", "UPPER/case", "a:", "a@sha256:short",
		// Docker's grammar: no empty, "." or ".." components, no tag
		// starting with "-" or ".", at most 128 characters of tag.
		"../x", "a/../b:v1", "example.com/a/..", "example.com/a/b/.:v", "a//b", "a/", "/a", "..:5000/a", "-a/b", "a/b-", "a/_b", "a___b",
		"a:-x", "a:.x", "a:" + strings.Repeat("x", 129), "a:v\x1b", "a b", strings.Repeat("a", 64), "example.com/" + strings.Repeat("a", 250)} {
		if _, err := ParseReference(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// fakeRegistry serves one manifest behind distribution's token auth.
func fakeRegistry(t *testing.T, manifest []byte, user, pass string, lie bool) *httptest.Server {
	sum := sha256.Sum256(manifest)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	var srv *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /token", func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass || r.URL.Query().Get("scope") != "repository:test/app:pull" || r.URL.Query().Get("service") != "fake" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"token":"tok-123"}`))
	})
	mux.HandleFunc("GET /v2/test/app/manifests/{ref}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-123" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="fake",scope="repository:test/app:pull"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if ref := r.PathValue("ref"); ref != "v1" && ref != digest {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		if lie {
			w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("0", 64))
		} else {
			w.Header().Set("Docker-Content-Digest", digest)
		}
		_, _ = w.Write(manifest)
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func writeDockerConfig(t *testing.T, registry, user, pass string) string {
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	cfg := `{"auths":{"http://` + registry + `":{"auth":"` + auth + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestResolve(t *testing.T) {
	manifest := testManifest
	sum := sha256.Sum256(manifest)
	want := "sha256:" + hex.EncodeToString(sum[:])
	srv := fakeRegistry(t, manifest, "ci", "s3cret", false)
	host := strings.TrimPrefix(srv.URL, "http://")
	cfg, err := LoadDockerConfig(writeDockerConfig(t, host, "ci", "s3cret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{Keychain: cfg}
	ctx := context.Background()
	ref, _ := ParseReference(host + "/test/app:v1")
	d, err := c.Resolve(ctx, ref)
	if err != nil || d.Digest != want || d.Size != int64(len(manifest)) || d.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Fatalf("Resolve: %+v %v", d, err)
	}
	ref, _ = ParseReference(host + "/test/app@" + want)
	if d, err := c.Resolve(ctx, ref); err != nil || d.Digest != want {
		t.Fatalf("Resolve by digest: %+v %v", d, err)
	}
	ref, _ = ParseReference(host + "/test/app:v2")
	if _, err := c.Resolve(ctx, ref); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing tag: %v", err)
	}
	ref, _ = ParseReference(host + "/test/app:v1")
	if _, err := (&Client{Keychain: Anonymous}).Resolve(ctx, ref); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("anonymous: %v", err)
	}
	bad, _ := LoadDockerConfig(writeDockerConfig(t, host, "ci", "wrong"), nil)
	if _, err := (&Client{Keychain: bad}).Resolve(ctx, ref); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong password: %v", err)
	}
	liar := fakeRegistry(t, manifest, "ci", "s3cret", true)
	lhost := strings.TrimPrefix(liar.URL, "http://")
	lcfg, _ := LoadDockerConfig(writeDockerConfig(t, lhost, "ci", "s3cret"), nil)
	ref, _ = ParseReference(lhost + "/test/app:v1")
	if _, err := (&Client{Keychain: lcfg}).Resolve(ctx, ref); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("lying registry: %v", err)
	}
}

func TestDockerConfigCredentials(t *testing.T) {
	dir := t.TempDir()
	cfg := `{"auths":{"https://index.docker.io/v1/":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("hubuser:hubpass")) + `"},
	"registry.example.com:5000":{"identitytoken":"refresh-me"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadDockerConfig(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got, _ := c.Credentials(ctx, "index.docker.io"); got.Username != "hubuser" || got.Password != "hubpass" {
		t.Errorf("hub: %+v", got)
	}
	if got, _ := c.Credentials(ctx, "registry.example.com:5000"); got.IdentityToken != "refresh-me" {
		t.Errorf("identity token: %+v", got)
	}
	if got, _ := c.Credentials(ctx, "other.example.com"); !got.Empty() {
		t.Errorf("unknown registry: %+v", got)
	}
	if c, err := LoadDockerConfig(t.TempDir(), nil); err != nil || len(c.Auths) != 0 {
		t.Errorf("missing config: %v", err)
	}
}

func TestParseChallenge(t *testing.T) {
	s, p := parseChallenge(`Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"`)
	if s != "Bearer" || p["realm"] != "https://auth.example.com/token" || p["service"] != "registry.example.com" || p["scope"] != "repository:a/b:pull,push" {
		t.Fatalf("%s %v", s, p)
	}
	s, p = parseChallenge(`Basic realm=registry`)
	if s != "Basic" || p["realm"] != "registry" {
		t.Fatalf("%s %v", s, p)
	}
}

// TestCredentialHelperNames: a credential helper named in config.json runs
// as docker-credential-<name> from PATH; a name that is a path (which would
// run any program on disk) is refused without running anything.
func TestCredentialHelperNames(t *testing.T) {
	bin := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	script := "#!/bin/sh\nread server\necho ran > " + marker + "\necho '{\"Username\":\"u\",\"Secret\":\"s3cret\"}'\n"
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-good"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH")) // the helper is looked up on the process's PATH
	// A name with a slash is a path: from a directory holding
	// docker-credential-x/, "x/evil" would run docker-credential-x/evil.
	cwd := t.TempDir()
	if err := os.MkdirAll(filepath.Join(cwd, "docker-credential-x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cwd, "docker-credential-x", "evil"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(cwd)
	env := []string{"PATH=" + bin}
	for name, ok := range map[string]bool{
		"good": true, "x/evil": false, "../good": false, "x/../../good": false, "/bin/sh": false, "": false, "-good": false, "good\nx": false,
	} {
		dir := t.TempDir()
		cfg := `{"credHelpers":{"registry.example.com":` + strconv.Quote(name) + `}}`
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadDockerConfig(dir, env)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(marker)
		cred, err := c.Credentials(t.Context(), "registry.example.com")
		_, statErr := os.Stat(marker)
		switch {
		case ok && (err != nil || cred.Password != "s3cret"):
			t.Errorf("helper %q: %+v %v", name, cred, err)
		case !ok && name == "" && (err != nil || !cred.Empty()):
			t.Errorf("no helper: %+v %v", cred, err) // an empty name means none
		case !ok && name != "" && (err == nil || statErr == nil):
			t.Errorf("helper %q: ran=%v err=%v", name, statErr == nil, err)
		}
	}
}

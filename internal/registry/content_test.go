package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// tokenRegistry is go-containerregistry's registry behind distribution's
// token auth: a bearer token from /token for user:pass, valid for the
// scope it was issued for.
func tokenRegistry(t *testing.T, user, pass string) *httptest.Server {
	t.Helper()
	inner := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)), ggcrregistry.WithReferrersSupport(true))
	var srv *httptest.Server
	var mu sync.Mutex
	issued := map[string]string{} // token → scope
	mux := http.NewServeMux()
	mux.HandleFunc("GET /token", func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		scope := r.URL.Query().Get("scope")
		tok := base64.RawURLEncoding.EncodeToString([]byte(scope))
		mu.Lock()
		issued[tok] = scope
		mu.Unlock()
		_, _ = w.Write([]byte(`{"token":"` + tok + `"}`))
	})
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		need := "repository:team/app:pull"
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			need = "repository:team/app:push,pull"
		}
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.Lock()
		scope, ok := issued[tok]
		mu.Unlock()
		if !ok || (scope != need && scope != "repository:team/app:push,pull") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="test",scope="`+need+`"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestRepositoryWithCredentials: writes and reads with the Docker
// configuration's credentials (token auth, push scope); without them, or
// with a wrong password, nothing is written.
func TestRepositoryWithCredentials(t *testing.T) {
	ctx := context.Background()
	srv := tokenRegistry(t, "ci", "s3cret")
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := Reference{Registry: host, Repository: "team/app"}
	cfg, err := LoadDockerConfig(writeDockerConfig(t, host, "ci", "s3cret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := (&Client{Keychain: cfg}).Repository(ref, "push,pull")
	blob := []byte(`{"config":true}`)
	digest, err := r.PutBlob(ctx, blob)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := r.Blob(ctx, digest, 1024); err != nil || string(b) != string(blob) {
		t.Fatalf("blob: %q %v", b, err)
	}
	man := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":15,"digest":"` + digest + `"},"layers":[]}`)
	d, _, err := r.PutManifest(ctx, "v1", MediaTypeOCIManifest, man)
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Manifest(ctx, "v1")
	if err != nil || m.Digest != d.Digest || string(m.Bytes) != string(man) {
		t.Fatalf("manifest: %+v %v", m.Descriptor, err)
	}
	// A referrer of v1, listed by the Referrers API.
	referrer := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/example","config":{"mediaType":"application/vnd.oci.empty.v1+json","size":15,"digest":"` + digest + `"},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":` + strconv.Itoa(len(man)) + `,"digest":"` + d.Digest + `"}}`)
	rd, _, err := r.PutManifest(ctx, "", MediaTypeOCIManifest, referrer)
	if err != nil {
		t.Fatal(err)
	}
	pages, supported, err := r.Referrers(ctx, d.Digest)
	if err != nil || !supported || len(pages) != 1 || !strings.Contains(string(pages[0]), rd.Digest) {
		t.Fatalf("referrers: %v %v %s", supported, err, pages)
	}

	// Read-only access cannot write; no credentials or a wrong password
	// cannot even read.
	ro := (&Client{Keychain: cfg}).Repository(ref, "pull")
	if _, err := ro.PutBlob(ctx, []byte("x")); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("push with a pull token: %v", err)
	}
	for name, kc := range map[string]Keychain{"anonymous": Anonymous, "wrong password": mustConfig(t, host, "ci", "wrong")} {
		r := (&Client{Keychain: kc}).Repository(ref, "push,pull")
		if _, err := r.Manifest(ctx, "v1"); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("%s: read: %v", name, err)
		}
		if _, _, err := r.PutManifest(ctx, "v2", MediaTypeOCIManifest, man); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("%s: write: %v", name, err)
		}
	}
	if _, err := r.Manifest(ctx, "v2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("v2 exists after refused writes: %v", err)
	}
}

func mustConfig(t *testing.T, host, user, pass string) *DockerConfig {
	c, err := LoadDockerConfig(writeDockerConfig(t, host, user, pass), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCredentialsStayWithTheRegistry: a blob download redirected to
// another host (storage) goes there without the registry's credentials,
// and an upload location on another host is refused.
func TestCredentialsStayWithTheRegistry(t *testing.T) {
	ctx := context.Background()
	var storageAuth []string
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		storageAuth = append(storageAuth, r.Header.Get("Authorization"))
		_, _ = w.Write([]byte("blob"))
	}))
	defer storage.Close()
	blobDigest := sha256Digest([]byte("blob"))
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+blobDigest):
			http.Redirect(w, r, storage.URL+"/bucket/blob", http.StatusTemporaryRedirect)
		case r.Method == http.MethodHead:
			w.WriteHeader(http.StatusNotFound)
		case r.Method == http.MethodPost:
			w.Header().Set("Location", storage.URL+"/upload/1")
			w.WriteHeader(http.StatusAccepted)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("ci:s3cret"))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadDockerConfig(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := (&Client{Keychain: cfg}).Repository(Reference{Registry: host, Repository: "team/app"}, "push,pull")
	b, err := r.Blob(ctx, blobDigest, 100)
	if err != nil || string(b) != "blob" {
		t.Fatalf("redirected blob: %q %v", b, err)
	}
	if len(storageAuth) != 1 || storageAuth[0] != "" {
		t.Fatalf("the storage host received Authorization %q", storageAuth)
	}
	if _, err := r.PutBlob(ctx, []byte("new blob")); err == nil || !strings.Contains(err.Error(), "another host") {
		t.Fatalf("upload location on another host: %v", err)
	}
	if len(storageAuth) != 1 {
		t.Fatalf("the blob was sent to the other host (%d requests)", len(storageAuth))
	}
}

func TestNextLink(t *testing.T) {
	base, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:5000/v2/a/referrers/sha256:x", nil)
	for h, want := range map[string]string{
		"": "",
		`</v2/a/referrers/sha256:x?n=2&last=y>; rel="next"`: "http://127.0.0.1:5000/v2/a/referrers/sha256:x?n=2&last=y",
		`<http://127.0.0.1:5000/next>; rel="prev"`:          "",
	} {
		got, err := nextLink(base.URL, h)
		if err != nil || got != want {
			t.Errorf("%q: %q %v", h, got, err)
		}
	}
	if _, err := nextLink(base.URL, `<http://evil.example.com/x>; rel="next"`); err == nil {
		t.Error("a next link to another host was followed")
	}
}

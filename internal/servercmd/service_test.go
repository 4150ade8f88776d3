package servercmd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/oci"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/service"
)

func TestServiceConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := parseConfig([]string{"--config", write("ok.yaml", `service:
  base_url: https://signet.example.com
  docker_config: /etc/signet/docker
  request_expiry: 48h
  retention: 720h
  rate_limit: 10
  signing_lease: 5s
  max_attempts: 3
  smtp:
    addr: 127.0.0.1:2525
    from: signet@example.com
    password_env: SMTP_PW
`)}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Service
	if s.BaseURL != "https://signet.example.com" || s.RequestExpiry != 48*time.Hour || s.Retention != 720*time.Hour || s.RateLimit != 10 ||
		s.SigningLease != 5*time.Second || s.MaxAttempts != 3 || s.SMTP == nil || s.SMTP.PasswordEnv != "SMTP_PW" || s.Disabled {
		t.Errorf("parsed %+v", s)
	}
	for body, want := range map[string]string{
		"service:\n  retention: -1h\n":      "service.retention -1h0m0s",
		"service:\n  rate_limit: -1\n":      "must not be negative",
		"service:\n  smtp:\n    bogus: 1\n": "field bogus not found",
	} {
		_, err := parseConfig([]string{"--config", write("bad.yaml", body)}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error containing %q", body, err, want)
		}
	}
	// The SMTP password comes from the environment, and must be there.
	if _, err := notifier(ServiceConfig{SMTP: &SMTPConfig{Addr: "127.0.0.1:2525", From: "s@example.com", PasswordEnv: "SMTP_PW"}}, nil,
		func(string) string { return "" }, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "SMTP_PW is not set") {
		t.Errorf("notifier without the password: %v", err)
	}
}

// TestDockerKeychainReloads: the service's registry credentials follow
// config.json as it changes, without a restart.
func TestDockerKeychainReloads(t *testing.T) {
	dir := t.TempDir()
	k := &dockerKeychain{dir: dir}
	ctx := context.Background()
	if c, err := k.Credentials(ctx, "registry.example.com"); err != nil || !c.Empty() {
		t.Fatalf("without config.json: %+v, %v", c, err)
	}
	write := func(auth string) {
		body := `{"auths":{"registry.example.com":{"auth":"` + auth + `"}}}`
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("dXNlcjpvbmU=") // user:one
	if c, _ := k.Credentials(ctx, "registry.example.com"); c != (registry.Credentials{Username: "user", Password: "one"}) {
		t.Errorf("after writing config.json: %+v", c)
	}
	write("dXNlcjp0d28=") // user:two (same size: the time tells)
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(filepath.Join(dir, "config.json"), later, later)
	if c, _ := k.Credentials(ctx, "registry.example.com"); c.Password != "two" {
		t.Errorf("after rotating the password: %+v", c)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{"), 0o600)
	if _, err := k.Credentials(ctx, "registry.example.com"); err == nil {
		t.Error("a broken config.json was accepted")
	}
}

// TestCosignRegistry: the service's cosign writer on a registry without
// the Referrers API signs a manifest in both forms, idempotently, and
// sorts its failures for the service: a registry refusing the push is
// ErrRegistryAuth; a tag in the way of the referrers index (not an index)
// is ErrCosignRefused, which a retry does not change.
func TestCosignRegistry(t *testing.T) {
	ctx := context.Background()
	var gate atomic.Bool // refuse writes
	inner := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gate.Load() && r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	c := &registry.Client{Keychain: registry.Anonymous}
	repo := c.Repository(registry.Reference{Registry: host, Repository: "org/app"}, "push,pull")
	put := func(tag string, body string) registry.Descriptor {
		t.Helper()
		d, _, err := repo.PutManifest(ctx, tag, registry.MediaTypeOCIManifest, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	cfgDigest, err := repo.PutBlob(ctx, []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	manifest := func(n int) string {
		return fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":%q},"layers":[],"annotations":{"n":"%d"}}`, cfgDigest, n)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	w := CosignRegistry(c)
	image := host + "/org/app:v1"
	m := put("v1", manifest(1))
	sm := service.Manifest{Digest: m.Digest, Size: m.Size, MediaType: m.MediaType}

	if err := w.CheckPush(ctx, image); err != nil {
		t.Fatalf("CheckPush: %v", err)
	}
	for i, existing := range []bool{false, true} {
		sigs, err := w.Sign(ctx, image, sm, key, time.Now())
		if err != nil || len(sigs) != 2 || sigs[0].Form != audit.CosignBundle || sigs[1].Form != audit.CosignLegacy ||
			sigs[0].Existing != existing || sigs[1].Existing != existing || sigs[1].Ref != "sha256-"+strings.TrimPrefix(m.Digest, "sha256:")+".sig" {
			t.Fatalf("Sign #%d = %+v, %v", i+1, sigs, err)
		}
		for _, s := range sigs {
			if s.Digest != m.Digest {
				t.Errorf("signature of %s, want %s", s.Digest, m.Digest)
			}
		}
	}
	tg, err := oci.Resolve(ctx, repo, m.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := oci.Verify(ctx, tg, key.Public(), oci.Options{Now: time.Now()}); err != nil || len(rep.Verified) != 2 {
		t.Fatalf("verify: %v %+v", err, rep)
	}

	// A manifest (not an index) at the referrers tag of another image.
	m2 := put("v2", manifest(2))
	put(registry.FallbackTag(m2.Digest), manifest(3))
	_, err = w.Sign(ctx, host+"/org/app:v2", service.Manifest{Digest: m2.Digest, Size: m2.Size, MediaType: m2.MediaType}, key, time.Now())
	if !errors.Is(err, service.ErrCosignRefused) {
		t.Errorf("Sign over a tag in the way: %v, want ErrCosignRefused", err)
	}

	gate.Store(true)
	if err := w.CheckPush(ctx, image); !errors.Is(err, service.ErrRegistryAuth) {
		t.Errorf("CheckPush refused: %v, want ErrRegistryAuth", err)
	}
	m4 := registry.Descriptor{Digest: "sha256:" + strings.Repeat("0", 64), Size: 2, MediaType: registry.MediaTypeOCIManifest}
	if _, err := w.Sign(ctx, image, service.Manifest{Digest: m4.Digest, Size: m4.Size, MediaType: m4.MediaType}, key, time.Now()); !errors.Is(err, service.ErrRegistryAuth) {
		t.Errorf("Sign refused: %v, want ErrRegistryAuth", err)
	}
}

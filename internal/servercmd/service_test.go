package servercmd

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/registry"
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

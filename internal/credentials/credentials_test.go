package credentials

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/signet-trust/signet/internal/registry"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestOrder(t *testing.T) {
	dir := t.TempDir()
	cfg := `{"auths": {"registry.example.com": {"auth": "` + b64("docker-user:docker-pw") + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	prompts := 0
	k := &Keychain{
		Getenv: func(n string) string { return env[n] },
		Docker: func() (registry.Keychain, error) { return registry.LoadDockerConfig(dir, nil) },
		Prompt: func(_ context.Context, host string) (string, string, error) {
			prompts++
			return "typed-" + host, "typed-pw", nil
		},
	}
	ctx := context.Background()
	// Docker's configuration for its host.
	if c, err := k.Credentials(ctx, "registry.example.com"); err != nil || c.Username != "docker-user" || c.Password != "docker-pw" {
		t.Fatalf("docker config: %+v %v", c, err)
	}
	// Another host: the prompt, once.
	for range 2 {
		if c, err := k.Credentials(ctx, "other.example.com"); err != nil || c.Username != "typed-other.example.com" || c.Password != "typed-pw" {
			t.Fatalf("prompt: %+v %v", c, err)
		}
	}
	if prompts != 1 {
		t.Fatalf("prompted %d times", prompts)
	}
	// NOTARY_AUTH wins over both.
	env[EnvNotaryAuth] = b64("alice:pa:ss")
	for _, host := range []string{"registry.example.com", "other.example.com"} {
		if c, err := k.Credentials(ctx, host); err != nil || c.Username != "alice" || c.Password != "pa:ss" {
			t.Fatalf("NOTARY_AUTH for %s: %+v %v", host, c, err)
		}
	}
	for _, bad := range []string{"not base64!", b64("no-colon"), b64(":pw")} {
		env[EnvNotaryAuth] = bad
		if _, err := k.Credentials(ctx, "registry.example.com"); !errors.Is(err, ErrNotaryAuth) {
			t.Errorf("NOTARY_AUTH=%q: %v", bad, err)
		}
	}
}

func TestNoSources(t *testing.T) {
	var k Keychain
	if c, err := k.Credentials(context.Background(), "h"); err != nil || !c.Empty() {
		t.Fatalf("zero Keychain: %+v %v", c, err)
	}
	k.Prompt = func(context.Context, string) (string, string, error) { return "", "", errors.New("no terminal") }
	if _, err := k.Credentials(context.Background(), "h"); err == nil {
		t.Fatal("a failing prompt gave credentials")
	}
	k = Keychain{Docker: func() (registry.Keychain, error) { return nil, errors.New("broken config") }}
	if _, err := k.Credentials(context.Background(), "h"); err == nil {
		t.Fatal("a broken docker config was ignored")
	}
}

package e2etest

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Registry is a Debian docker-registry (distribution 2.8) on 127.0.0.1
// over plain HTTP, with filesystem storage in the test's temporary
// directory.
type Registry struct {
	Host string // 127.0.0.1:port
	Proc *Process
}

// StartRegistry runs docker-registry (skipping or failing the test as Need
// does when it is missing) and waits until GET /v2/ answers. auth is the
// registry's `auth:` section (YAML, indented two spaces), empty for none;
// with token auth /v2/ answers 401, which counts as up.
func StartRegistry(t testing.TB, auth string) *Registry {
	t.Helper()
	Need(t, "docker-registry")
	dir := t.TempDir()
	addr := FreeAddr(t)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
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
	if auth != "" {
		cfg += "auth:\n" + auth
	}
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := Daemon(t, ProcessOptions{Name: "docker-registry", Args: []string{"docker-registry", "serve", cfgFile},
		Dir: dir, Env: BaseEnv(dir), LogFile: filepath.Join(dir, "registry.log")})
	up := func(status int) bool {
		return status == http.StatusOK || auth != "" && status == http.StatusUnauthorized
	}
	if err := WaitHTTP(t.Context(), &http.Client{Timeout: 2 * time.Second}, "http://"+addr+"/v2/", up, p.Done(), 30*time.Second); err != nil {
		t.Fatalf("docker-registry: %v\n%s", err, p.LogTail(30))
	}
	return &Registry{Host: addr, Proc: p}
}

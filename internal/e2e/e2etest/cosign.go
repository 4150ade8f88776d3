package e2etest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// CosignVersion is the cosign scripts/test-deps.sh builds from the Go
// module proxy.
const CosignVersion = "v3.1.3"

// CosignBin finds the real cosign: $SIGNET_COSIGN_BIN (the Makefile sets
// it), else test-deps.sh's cache, else cosign on PATH. A missing cosign
// skips the test, or fails it as SIGNET_TEST_REQUIRE asks ("cosign").
func CosignBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SIGNET_COSIGN_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			Missing(t, "cosign", "SIGNET_COSIGN_BIN=%s: %v", p, err)
		}
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache")
		}
	}
	p := filepath.Join(cache, "signet", "tools", "cosign@"+CosignVersion, "cosign")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath("cosign"); err == nil {
		return p
	}
	Missing(t, "cosign", "cosign %s not found (neither $SIGNET_COSIGN_BIN, %s nor cosign on PATH)", CosignVersion, p)
	return ""
}

// CosignCommand runs cosign offline (no transparency log, no Sigstore
// TUF), with its own HOME and Docker configuration under dir and the key
// password COSIGN_PASSWORD=password.
func CosignCommand(dir, password string) Command {
	extra := []string{"COSIGN_PASSWORD=" + password, "COSIGN_YES=true", "DOCKER_CONFIG=" + filepath.Join(dir, "cosign-docker"), "TUF_ROOT=" + filepath.Join(dir, "cosign-tuf")}
	return Command{Env: append(BaseEnv(dir), extra...), Extra: extra, Dir: dir}
}

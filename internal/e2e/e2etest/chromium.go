package e2etest

import (
	"os"
	"os/exec"
	"testing"
)

// ChromiumBin finds the real headless browser of the web dashboard's
// tests: $SIGNET_CHROMIUM_BIN, else chromium (Debian's package, which
// scripts/test-deps.sh installs) or chromium-browser on PATH. A missing
// browser skips the test, or fails it as SIGNET_TEST_REQUIRE asks
// ("chromium").
func ChromiumBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SIGNET_CHROMIUM_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			Missing(t, "chromium", "SIGNET_CHROMIUM_BIN=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Missing(t, "chromium", "chromium not found (neither $SIGNET_CHROMIUM_BIN nor chromium or chromium-browser on PATH)")
	return ""
}

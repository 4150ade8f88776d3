package e2etest

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// requireList is SIGNET_TEST_REQUIRE split at commas and spaces.
func requireList() []string {
	return strings.FieldsFunc(os.Getenv("SIGNET_TEST_REQUIRE"), func(r rune) bool { return r == ',' || r == ' ' })
}

// Required reports whether SIGNET_TEST_REQUIRE (comma or space separated)
// holds "all" or component: then a missing component fails a test instead
// of skipping it.
func Required(component string) bool {
	l := requireList()
	return slices.Contains(l, "all") || slices.Contains(l, component)
}

// RequiredByName reports whether SIGNET_TEST_REQUIRE names component
// itself, not through "all" (for checks that need more than a package
// install, such as mounting a tmpfs).
func RequiredByName(component string) bool {
	return slices.Contains(requireList(), component)
}

// Missing skips the test because component is missing, or fails it when
// SIGNET_TEST_REQUIRE asks for the component.
func Missing(t testing.TB, component, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required(component) {
		t.Fatalf("%s (SIGNET_TEST_REQUIRE=%q makes this an error)", msg, os.Getenv("SIGNET_TEST_REQUIRE"))
	}
	t.Skipf("%s (set SIGNET_TEST_REQUIRE=all to fail instead; scripts/test-deps.sh installs it)", msg)
}

// Need skips (or, as Missing, fails) the test unless every program is on
// PATH; the program's name is its component name.
func Need(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			Missing(t, p, "%s not found on PATH", p)
		}
	}
}

// Have reports whether program is on PATH. When it is not, a test that
// SIGNET_TEST_REQUIRE makes require it fails, and otherwise the test goes
// on (with a log line) so that it can leave out what needs the program.
func Have(t testing.TB, program string) bool {
	t.Helper()
	if _, err := exec.LookPath(program); err == nil {
		return true
	}
	if Required(program) {
		t.Fatalf("%s not found on PATH (SIGNET_TEST_REQUIRE=%q makes this an error; scripts/test-deps.sh installs it)", program, os.Getenv("SIGNET_TEST_REQUIRE"))
	}
	t.Logf("%s not found on PATH: what needs it is left out (set SIGNET_TEST_REQUIRE=all to fail instead)", program)
	return false
}

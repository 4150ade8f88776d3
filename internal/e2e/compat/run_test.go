package compat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

// Commands and their results are e2etest's.
type (
	command   = e2etest.Command
	cmdResult = e2etest.Result
)

// wantContains fails the test unless s contains every one of subs.
func wantContains(t testing.TB, r *cmdResult, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Fatalf("output lacks %q:\n%s", sub, r)
		}
	}
}

// copyDir copies a directory tree (regular files and directories only),
// keeping file modes.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copying %s to %s: %v", src, dst, err)
	}
}

// mustModuleRoot is the directory of go.mod.
func mustModuleRoot(t testing.TB) string {
	t.Helper()
	root, err := e2etest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

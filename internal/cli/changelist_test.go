package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnknownChangeFile: a changelist file that holds no change notary
// applies is listed by status, refused by publish with its file named
// (before anything is sent, and nothing is dropped), and dropped by reset.
func TestUnknownChangeFile(t *testing.T) {
	const gun = "example.com/changes/app"
	dir := t.TempDir()
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), append([]string{"-d", dir, "-s", "https://127.0.0.1:1"}, args...), Env{
			Getenv: func(k string) string { return map[string]string{"HOME": dir}[k] },
			Stdout: &out, Stderr: &errOut,
		})
		return code, out.String(), errOut.String()
	}
	if code, _, errOut := run("addhash", gun, "v1", "3", "--sha256", strings.Repeat("ab", 32)); code != 0 {
		t.Fatalf("addhash: %d %s", code, errOut)
	}
	clDir := filepath.Join(dir, "tuf", gun, "changelist")
	bad := filepath.Join(clDir, "99999999999999999999_x.change")
	if err := os.WriteFile(bad, []byte(`{"action":"update","role":"targets","type":"target","path":"v2","data":null}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run("status", gun)
	if code != 0 || !strings.Contains(out, "create") || !strings.Contains(out, "update    targets    target    v2") {
		t.Fatalf("status: %d\n%s", code, out)
	}
	code, out, errOut := run("publish", gun)
	if code != ExitError || strings.Contains(out, "Pushing") || !strings.Contains(errOut, bad) || !strings.Contains(errOut, "not a change notary applies") {
		t.Fatalf("publish: %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if ents, _ := os.ReadDir(clDir); len(ents) != 2 {
		t.Fatalf("a refused publish changed the changelist: %d files", len(ents))
	}
	if code, _, errOut := run("reset", gun, "-n", "1"); code != 0 {
		t.Fatalf("reset: %d %s", code, errOut)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatalf("reset left the file: %v", err)
	}
	if code, out, _ := run("status", gun); code != 0 || strings.Contains(out, "update") || !strings.Contains(out, "v1") {
		t.Fatalf("status after reset: %s", out)
	}
}

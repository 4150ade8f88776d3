package compat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// commandTimeout bounds every external command; nothing a client does in
// these tests should take more than a few seconds.
const commandTimeout = 90 * time.Second

// requireAll reports whether a missing component named name must fail the
// run instead of skipping it: SIGNET_TEST_REQUIRE is a list (commas or
// spaces) of component names, or "all".
func requireAll(name string) bool {
	for _, f := range strings.FieldsFunc(os.Getenv("SIGNET_TEST_REQUIRE"), func(r rune) bool {
		return r == ',' || r == ' '
	}) {
		if f == "all" || f == name {
			return true
		}
	}
	return false
}

// missing skips the test, or fails it when SIGNET_TEST_REQUIRE asks for the
// component.
func missing(t testing.TB, component, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if requireAll(component) {
		t.Fatalf("%s (SIGNET_TEST_REQUIRE=%q makes this an error)", msg, os.Getenv("SIGNET_TEST_REQUIRE"))
	}
	t.Skipf("%s (set SIGNET_TEST_REQUIRE=all to fail instead; scripts/test-deps.sh installs it)", msg)
}

// need skips (or fails) the test unless every program is on PATH.
func need(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			missing(t, p, "%s not found on PATH", p)
		}
	}
}

var (
	moduleRootOnce sync.Once
	moduleRootDir  string
	moduleRootErr  error
)

// moduleRoot is the directory holding go.mod, found upwards from the
// package directory (the working directory of a test).
func moduleRoot(t testing.TB) string {
	t.Helper()
	moduleRootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			moduleRootErr = err
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				moduleRootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				moduleRootErr = errors.New("no go.mod above the working directory")
				return
			}
			dir = parent
		}
	})
	if moduleRootErr != nil {
		t.Fatalf("finding module root: %v", moduleRootErr)
	}
	return moduleRootDir
}

// baseEnv is the environment every client starts from: nothing of the
// caller's environment leaks in except PATH (and TMPDIR), so a developer's
// ~/.notary, ~/.docker or DOCKER_HOST never changes a result.
func baseEnv(home string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"LANG=C.UTF-8",
		"XDG_RUNTIME_DIR=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
	}
	if v := os.Getenv("TMPDIR"); v != "" {
		env = append(env, "TMPDIR="+v)
	}
	return env
}

// cmdResult is one finished external command.
type cmdResult struct {
	args    []string
	extra   []string // environment beyond baseEnv, for the failure report
	dir     string
	stdin   string
	stdout  string
	stderr  string
	code    int // -1 when the command could not run or was killed
	err     error
	elapsed time.Duration
}

func (r *cmdResult) ok() bool { return r.err == nil && r.code == 0 }

// output is stdout followed by stderr. The notary CLI prints its
// "* fatal: …" messages on stdout, so failures are matched against both.
func (r *cmdResult) output() string { return r.stdout + r.stderr }

// String renders everything needed to reproduce and understand a failure.
func (r *cmdResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ %s\n", shellQuote(r.args))
	if len(r.extra) > 0 {
		fmt.Fprintf(&b, "  env: %s\n", strings.Join(r.extra, " "))
	}
	if r.dir != "" {
		fmt.Fprintf(&b, "  dir: %s\n", r.dir)
	}
	if r.stdin != "" {
		fmt.Fprintf(&b, "  stdin: %q\n", r.stdin)
	}
	fmt.Fprintf(&b, "  exit: %d after %v", r.code, r.elapsed.Round(time.Millisecond))
	if r.err != nil {
		fmt.Fprintf(&b, " (%v)", r.err)
	}
	fmt.Fprintf(&b, "\n--- stdout ---\n%s--- stderr ---\n%s--- end ---", ensureNL(r.stdout), ensureNL(r.stderr))
	return b.String()
}

func ensureNL(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"$`\\*?[]{}()<>|&;") {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// command describes how to run a program.
type command struct {
	env     []string // full environment
	extra   []string // the part of env worth printing
	dir     string
	stdin   string
	timeout time.Duration
}

// run executes args and never fails the test itself.
func (c command) run(t testing.TB, args ...string) *cmdResult {
	t.Helper()
	timeout := c.timeout
	if timeout == 0 {
		timeout = commandTimeout
	}
	ctx, cancel := context.WithTimeout(testContext(t), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = c.env
	cmd.Dir = c.dir
	cmd.Stdin = strings.NewReader(c.stdin) // empty reader: stdin is closed
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second // a grandchild holding our pipes cannot hang us
	start := time.Now()
	err := cmd.Run()
	r := &cmdResult{
		args: args, extra: c.extra, dir: c.dir, stdin: c.stdin,
		stdout: stdout.String(), stderr: stderr.String(),
		code: -1, elapsed: time.Since(start),
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		r.code = 0
	case errors.As(err, &exitErr) && exitErr.Exited():
		r.code = exitErr.ExitCode()
	default:
		r.err = err
	}
	if ctx.Err() == context.DeadlineExceeded {
		r.err = fmt.Errorf("killed after timeout %v", timeout)
	}
	return r
}

// testContext is t.Context() when t has one.
func testContext(t testing.TB) context.Context {
	if c, ok := t.(interface{ Context() context.Context }); ok {
		return c.Context()
	}
	return context.Background()
}

// mustOK runs args and fails the test unless they exit 0.
func (c command) mustOK(t testing.TB, args ...string) *cmdResult {
	t.Helper()
	r := c.run(t, args...)
	if !r.ok() {
		t.Fatalf("command failed:\n%s", r)
	}
	return r
}

// mustFail runs args and fails the test unless they exit non-zero.
func (c command) mustFail(t testing.TB, args ...string) *cmdResult {
	t.Helper()
	r := c.run(t, args...)
	if r.err != nil || r.code == 0 {
		t.Fatalf("command should have failed:\n%s", r)
	}
	return r
}

// wantContains fails the test unless s contains every one of subs.
func wantContains(t testing.TB, r *cmdResult, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Fatalf("output lacks %q:\n%s", sub, r)
		}
	}
}

// withEnv returns a copy of c with more environment variables.
func (c command) withEnv(kv ...string) command {
	c.env = append(slices.Clip(c.env), kv...)
	c.extra = append(slices.Clip(c.extra), kv...)
	return c
}

// withStdin returns a copy of c that feeds s to the program.
func (c command) withStdin(s string) command {
	c.stdin = s
	return c
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

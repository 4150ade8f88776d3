package e2etest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// CommandTimeout bounds a Command without a Timeout of its own: nothing a
// client does in these tests should take more than a few seconds.
const CommandTimeout = 90 * time.Second

// Command describes how to run a program: its whole environment, working
// directory and standard input (closed when empty), under a timeout.
type Command struct {
	Env     []string // the whole environment (start from BaseEnv)
	Extra   []string // the part of Env worth printing in a failure report
	Dir     string
	Stdin   string
	Timeout time.Duration // default CommandTimeout
}

// Result is one finished command.
type Result struct {
	Args    []string
	Extra   []string
	Dir     string
	Stdin   string
	Stdout  string
	Stderr  string
	Code    int   // -1 when the command could not run or was killed
	Err     error // set when the command could not run or was killed
	Elapsed time.Duration
}

// Succeeded reports whether the command ran and exited 0.
func (r *Result) Succeeded() bool { return r.Err == nil && r.Code == 0 }

// Output is stdout followed by stderr (the notary CLI prints its
// "* fatal: …" messages on stdout, so failures are matched against both).
func (r *Result) Output() string { return r.Stdout + r.Stderr }

// String renders everything needed to reproduce and understand a failure.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ %s\n", ShellQuote(r.Args))
	if len(r.Extra) > 0 {
		fmt.Fprintf(&b, "  env: %s\n", strings.Join(r.Extra, " "))
	}
	if r.Dir != "" {
		fmt.Fprintf(&b, "  dir: %s\n", r.Dir)
	}
	if r.Stdin != "" {
		fmt.Fprintf(&b, "  stdin: %q\n", r.Stdin)
	}
	fmt.Fprintf(&b, "  exit: %d after %v", r.Code, r.Elapsed.Round(time.Millisecond))
	if r.Err != nil {
		fmt.Fprintf(&b, " (%v)", r.Err)
	}
	fmt.Fprintf(&b, "\n--- stdout ---\n%s--- stderr ---\n%s--- end ---", ensureNL(r.Stdout), ensureNL(r.Stderr))
	return b.String()
}

func ensureNL(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

// ShellQuote renders args as a shell command line.
func ShellQuote(args []string) string {
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

// Run executes args; it never fails the test itself.
func (c Command) Run(t testing.TB, args ...string) *Result {
	t.Helper()
	timeout := c.Timeout
	if timeout == 0 {
		timeout = CommandTimeout
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env, cmd.Dir = c.Env, c.Dir
	cmd.Stdin = strings.NewReader(c.Stdin) // empty reader: stdin is closed
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second // a grandchild holding our pipes cannot hang us
	start := time.Now()
	err := cmd.Run()
	r := &Result{
		Args: args, Extra: c.Extra, Dir: c.Dir, Stdin: c.Stdin,
		Stdout: stdout.String(), Stderr: stderr.String(),
		Code: -1, Elapsed: time.Since(start),
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		r.Code = 0
	case errors.As(err, &exitErr) && exitErr.Exited():
		r.Code = exitErr.ExitCode()
	default:
		r.Err = err
	}
	if ctx.Err() == context.DeadlineExceeded {
		r.Err = fmt.Errorf("killed after timeout %v", timeout)
	}
	return r
}

// OK runs args and fails the test unless they exit 0.
func (c Command) OK(t testing.TB, args ...string) *Result {
	t.Helper()
	r := c.Run(t, args...)
	if !r.Succeeded() {
		t.Fatalf("command failed:\n%s", r)
	}
	return r
}

// Fail runs args and fails the test unless they ran and exited non-zero.
func (c Command) Fail(t testing.TB, args ...string) *Result {
	t.Helper()
	r := c.Run(t, args...)
	if r.Err != nil || r.Code == 0 {
		t.Fatalf("command should have failed:\n%s", r)
	}
	return r
}

// WithEnv returns a copy of c with more environment variables (later ones
// win), shown in failure reports.
func (c Command) WithEnv(kv ...string) Command {
	c.Env = append(slices.Clip(c.Env), kv...)
	c.Extra = append(slices.Clip(c.Extra), kv...)
	return c
}

// WithStdin returns a copy of c that feeds s to the program.
func (c Command) WithStdin(s string) Command {
	c.Stdin = s
	return c
}

// WantOutput fails the test unless r's output contains every one of subs.
func WantOutput(t testing.TB, r *Result, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(r.Output(), sub) {
			t.Fatalf("output lacks %q:\n%s", sub, r)
		}
	}
}

package auth

import (
	"testing"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

// run executes args with env (and stdin) under e2etest's timeout; it never
// fails the test itself.
func run(t testing.TB, env []string, stdin string, args ...string) *e2etest.Result {
	t.Helper()
	return e2etest.Command{Env: env, Stdin: stdin}.Run(t, args...)
}

func mustOK(t testing.TB, env []string, stdin string, args ...string) *e2etest.Result {
	t.Helper()
	return e2etest.Command{Env: env, Stdin: stdin}.OK(t, args...)
}

func mustFail(t testing.TB, env []string, stdin string, args ...string) *e2etest.Result {
	t.Helper()
	return e2etest.Command{Env: env, Stdin: stdin}.Fail(t, args...)
}

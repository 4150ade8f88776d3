// Package cli is the `signet` command line: the notary client's commands at
// the top level (init, add, list, publish, key …, delegation …), docker
// trust's under `signet trust`, and `signet verify` for deploy pipelines.
// Each command reads the same trust directories, key files and
// environment variables as the tool it replaces.
//
// Main takes everything from its arguments (args, environment, standard
// streams), so every command runs in-process in tests.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/signet-trust/signet/internal/printable"
)

// Exit codes of signet.
const (
	ExitOK       = 0
	ExitError    = 1 // the command failed
	ExitUsage    = 2 // bad command line
	ExitVerify   = 3 // signet verify: not signed as required
	ExitNotFound = 4 // signet verify: no trust data for the image or tag
)

// Env is what a command may read from its surroundings.
type Env struct {
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Terminal reports whether stdin is an interactive terminal (for
	// passphrase prompts and progress output).
	Terminal bool
	// ReadPassword reads a line from the terminal without echo.
	ReadPassword func() ([]byte, error)
}

// exitError carries a specific exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// Main runs signet with args (without the program name).
func Main(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	app := newApp(env)
	defer app.tokens.close()
	root := app.rootCommand()
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	code := ExitError
	if errors.As(err, &ee) {
		code = ee.code
	} else if isUsageError(err) {
		code = ExitUsage
	}
	if app.jsonOutput() && !app.printedJSON {
		// -o json: a program reads stdout, so the failure is there too, as
		// one JSON object (the message is also on stderr for a person),
		// unless the command's own result (which says what failed) is.
		_ = app.printJSON(errorJSON(code, err))
	}
	fmt.Fprintf(env.Stderr, "* fatal: %s\n", printable.Lines(err.Error()))
	return code
}

// jsonError is the object -o json prints on stdout when a command fails:
// {"error":{"code":"NOT_SIGNED","message":"…","exit_code":3}}.
type jsonError struct {
	Error struct {
		Code     string `json:"code"`
		Message  string `json:"message"`
		ExitCode int    `json:"exit_code"`
	} `json:"error"`
}

// errorCodes name the exit codes in a JSON error.
var errorCodes = map[int]string{
	ExitError:    "ERROR",
	ExitUsage:    "USAGE",
	ExitVerify:   "NOT_SIGNED",
	ExitNotFound: "NO_TRUST_DATA",
}

func errorJSON(code int, err error) jsonError {
	var e jsonError
	e.Error.Code, e.Error.Message, e.Error.ExitCode = errorCodes[code], err.Error(), code
	return e
}

func isUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "flag needs an argument", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// usageError marks a bad command line.
func usageError(format string, args ...any) error {
	return withCode(ExitUsage, fmt.Errorf(format, args...))
}

// OSEnv is the Env of a real process.
func OSEnv(terminal bool, readPassword func() ([]byte, error)) Env {
	return Env{Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Terminal: terminal, ReadPassword: readPassword}
}

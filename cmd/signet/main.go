// Command signet is the Signet client: a drop-in for the notary CLI and for
// docker trust, daemonless image signing, and verification for pipelines.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/signet-trust/signet/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	fd := int(os.Stdin.Fd())
	env := cli.OSEnv(term.IsTerminal(fd), func() ([]byte, error) { return term.ReadPassword(fd) })
	code := cli.Main(ctx, os.Args[1:], env)
	stop()
	os.Exit(code)
}

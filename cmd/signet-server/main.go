// Command signet-server is the Notary v1-compatible trust server.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/signet-trust/signet/internal/servercmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := servercmd.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

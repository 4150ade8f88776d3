// Command signet-signer holds signet-server's online keys and signs with
// them over mutual TLS.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/signet-trust/signet/internal/signercmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := signercmd.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

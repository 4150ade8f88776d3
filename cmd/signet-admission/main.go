// Command signet-admission is the Kubernetes admission webhook that
// enforces image signatures at deploy time.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/signet-trust/signet/internal/admission"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := admission.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

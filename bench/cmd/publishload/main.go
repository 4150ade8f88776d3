// Command publishload measures publishing through the real notary v0.7.0
// client library against any Notary v1 server.
//
//	publishload -url https://127.0.0.1:24443 -ca ca.crt -workers 4 -publishes 10 -d 20s -label reference
//
// Each of -workers goroutines repeatedly initialises a fresh repository (new
// root key, GET timestamp.key) and publishes it -publishes times, one new tag
// per publish (the first publish uploads root, targets and snapshot), until -d
// has passed; a publish started before the deadline is allowed to finish. Then
// every repository is listed through a cold cache and each acknowledged tag
// must be there (durability). One JSON line (bench/internal/result) reports
// publishes per second, p50/p99 publish latency, errors, and the check.
//
// Like the notary CLI, the client opens a new TLS connection per request
// unless -keepalive is given.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

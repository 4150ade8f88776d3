// Command notaryload puts GET load on a Notary v1 server (signet-server, the
// reference notary-server, or bareserver) and prepares the repository it reads.
//
//	notaryload setup -url https://127.0.0.1:24443 -ca ca.crt -gun example.com/bench/app -tags 20
//	notaryload get   -url https://127.0.0.1:24443 -ca ca.crt -gun example.com/bench/app \
//	                 -workload timestamp -c 32 -d 10s -label reference
//
// setup publishes one repository with K tags through the real notary v0.7.0
// client library, so targets.json has K entries. get holds -c keep-alive
// HTTP/1.1 connections, each with one request in flight, for -warmup plus -d,
// and prints one JSON line (bench/internal/result) for the -d window: requests
// per second, p50/p99 latency, errors. Every run stops by itself.
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

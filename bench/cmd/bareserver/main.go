// Command bareserver is the ceiling of the GET benchmark: a bare net/http TLS
// server that answers the metadata paths of one repository with fixed bytes
// copied at start-up from the server under test. Whatever a Notary server does
// per request beyond that (routing, storage, headers) shows as its distance
// from this one.
//
//	bareserver -listen 127.0.0.1:24445 -cert server.crt -key server.key \
//	           -origin https://127.0.0.1:24443 -ca ca.crt -gun example.com/bench/app
//
// It serves, at the origin's paths: timestamp.json, snapshot.json,
// targets.json, targets.<sha256>.json, plus /v2/ and /_notary_server/health
// (body {}) for readiness probes. HTTP/1.1 only, like the clients. It runs
// until SIGINT/SIGTERM, or for -max-lifetime.
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

// Command clientbench times client commands against one repository with
// many tags: `signet list` vs `notary list`, and `signet trust inspect` vs
// `docker trust inspect`, against each server given, with a cold local cache
// on every run.
//
//	clientbench -signet bin/signet -notary notary -docker docker -ca ca.crt \
//	            -gun example.com/bench/tags -tags 10000 -reps 5 \
//	            -server signet=https://127.0.0.1:24444 -server reference=https://127.0.0.1:24443
//
// Every run gets a fresh HOME and, for list, a fresh empty trust directory
// (so the root is trusted on first use), for trust inspect a fresh
// DOCKER_CONFIG holding only tls/<host:port>/ca.crt. Runs are interleaved
// (each repetition runs every client against every server in turn), each
// is bounded by -timeout, and its output must list exactly -tags tags. It
// prints one JSON line (bench/internal/result, kind "client") per run.
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

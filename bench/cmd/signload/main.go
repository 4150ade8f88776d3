// Command signload measures signatures per second through a signet-signer,
// over its API (HTTP/2 over mutual TLS, as signet-server's client uses it).
//
//	signload -url https://127.0.0.1:4444 -ca ca.crt -cert client.crt -key client.key -c 8 -d 10s -label software
//
// It creates one key (-alg, default ecdsa) for a GUN of its own, then -c
// workers each keep one sign request in flight for -warmup, then -d
// measured (a hard deadline). Each request signs a fresh SHA-256 digest
// (ecdsa) or a 512-byte message (ed25519) exactly as signet-server does, and
// every signature is verified against the key's public half; a signature
// that does not verify counts as an error. One JSON line
// (bench/internal/result, kind "sign") reports signatures/s, p50/p99 latency
// and errors.
//
// The protocol types are written out here rather than imported, so the
// bench module does not depend on the main module
// (docs/adr/0006-signer-protocol.md has the routes).
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

// Command notary-reference runs the reference notary-server and
// notary-signer (Debian's notary 0.7) with this project's recipe
// (internal/e2e/reference) until it is interrupted, for tools that are not
// Go tests — the benchmarks in bench/ build and start it.
//
//	notary-reference -dir DIR [-postgres ADMIN_URL] [-server-addr ADDR] [-signer-addr ADDR]
//
// It writes the recipe into DIR (certs/, the configs, the logs) and, once
// the server answers its health check, DIR/reference.env: shell
// assignments of REFERENCE_URL, REFERENCE_HOST, REFERENCE_CA,
// REFERENCE_SERVER_CERT, REFERENCE_SERVER_KEY, REFERENCE_SERVER_LOG and
// REFERENCE_SIGNER_LOG. With -postgres (a postgres:// URL allowed to create
// databases) both programs use the PostgreSQL backend, on two databases it
// creates with the reference schema and drops on exit. On SIGINT or
// SIGTERM it stops both programs and exits 0; if either dies first it
// exits 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/reference"
)

func main() {
	os.Exit(run())
}

func run() int {
	dir := flag.String("dir", "", "run `directory` (created if need be)")
	postgres := flag.String("postgres", "", "PostgreSQL admin `url` (postgres://…); empty: memory backends")
	serverAddr := flag.String("server-addr", "", "notary-server's `address` (default: a free 127.0.0.1 port)")
	signerAddr := flag.String("signer-addr", "", "notary-signer's `address` (default: a free 127.0.0.1 port)")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		flag.Usage()
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "notary-reference: %v\n", err)
		return 1
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	o := reference.Options{Dir: abs, ServerAddr: *serverAddr, SignerAddr: *signerAddr}
	if *postgres != "" {
		for _, db := range []struct {
			url    *string
			prefix string
		}{{&o.ServerDB, "notaryserver_ref_"}, {&o.SignerDB, "notarysigner_ref_"}} {
			u, drop, err := e2etest.CreateDatabase(ctx, *postgres, db.prefix)
			if err != nil {
				return fail(err)
			}
			defer func() {
				dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := drop(dctx); err != nil {
					fmt.Fprintf(os.Stderr, "notary-reference: %v\n", err)
				}
			}()
			*db.url = u
		}
	}
	r, err := reference.Launch(ctx, o)
	if err != nil {
		return fail(err)
	}
	defer r.Stop()
	env := map[string]string{
		"REFERENCE_URL": r.URL, "REFERENCE_HOST": r.Host, "REFERENCE_CA": r.CAFile,
		"REFERENCE_SERVER_CERT": r.ServerCert, "REFERENCE_SERVER_KEY": r.ServerKey,
		"REFERENCE_SERVER_LOG": r.ServerLog, "REFERENCE_SIGNER_LOG": r.SignerLog,
	}
	var b strings.Builder
	for _, k := range []string{"REFERENCE_URL", "REFERENCE_HOST", "REFERENCE_CA", "REFERENCE_SERVER_CERT", "REFERENCE_SERVER_KEY", "REFERENCE_SERVER_LOG", "REFERENCE_SIGNER_LOG"} {
		fmt.Fprintf(&b, "%s='%s'\n", k, strings.ReplaceAll(env[k], "'", `'\''`))
	}
	envFile := filepath.Join(abs, "reference.env")
	if err := os.WriteFile(envFile+".tmp", []byte(b.String()), 0o644); err != nil {
		return fail(err)
	}
	if err := os.Rename(envFile+".tmp", envFile); err != nil {
		return fail(err)
	}
	backend := "memory"
	if *postgres != "" {
		backend = "PostgreSQL"
	}
	fmt.Printf("notary-reference: notary-server on %s (notary-signer %s, %s backend); %s\n", r.URL, r.SignerHost, backend, envFile)
	select {
	case <-ctx.Done():
		return 0
	case <-r.Server.Done():
		return fail(fmt.Errorf("notary-server exited (%v):\n%s", r.Server.ExitError(), e2etest.FileTail(r.ServerLog, 30)))
	case <-r.Signer.Done():
		return fail(fmt.Errorf("notary-signer exited (%v):\n%s", r.Signer.ExitError(), e2etest.FileTail(r.SignerLog, 30)))
	}
}

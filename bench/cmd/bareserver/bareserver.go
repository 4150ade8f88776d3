package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/signet-trust/signet/bench/internal/httpclient"
	"github.com/signet-trust/signet/bench/internal/workload"
)

// Main fetches the fixed bytes, then serves them until ctx ends.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bareserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:24445", "address to listen on")
	cert := fs.String("cert", "", "TLS certificate (PEM)")
	key := fs.String("key", "", "TLS private key (PEM)")
	origin := fs.String("origin", "", "base URL of the server under test to copy the bytes from")
	ca := fs.String("ca", "", "CA (PEM) for -origin")
	gun := fs.String("gun", "example.com/bench/app", "repository whose metadata to copy")
	lifetime := fs.Duration("max-lifetime", 2*time.Hour, "exit after this long even if nobody stops us")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := run(ctx, log, *listen, *cert, *key, *origin, *ca, *gun, *lifetime, stdout); err != nil {
		log.Error("bareserver failed", "err", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, log *slog.Logger, listen, cert, key, origin, ca, gun string, lifetime time.Duration, stdout io.Writer) error {
	if cert == "" || key == "" || origin == "" {
		return errors.New("-cert, -key and -origin are required")
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return err
	}
	rt, err := httpclient.New(httpclient.Options{CAFile: ca, Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	c := &http.Client{Transport: rt}

	mux := http.NewServeMux()
	empty := []byte("{}")
	mux.Handle("GET /v2/{$}", fixed(empty))
	mux.Handle("GET /_notary_server/health", fixed(empty))
	for _, w := range workload.Names {
		path, body, err := workload.Resolve(ctx, c, origin, gun, w)
		if err != nil {
			return err
		}
		mux.Handle("GET "+path, fixed(body))
		log.Info("serving", "path", path, "bytes", len(body))
	}

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}},
		Protocols:         protos,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ctx, cancel := context.WithTimeout(ctx, lifetime)
	defer cancel()
	go func() {
		<-ctx.Done()
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
	}()
	fmt.Fprintf(stdout, "bareserver listening on https://%s\n", ln.Addr())
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// fixed answers with body, as the reference does: 200, no explicit
// Content-Type beyond what Go would sniff for it.
func fixed(body []byte) http.Handler {
	n := strconv.Itoa(len(body))
	ct := http.DetectContentType(body)
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", ct)
		h.Set("Content-Length", n)
		w.Write(body)
	})
}

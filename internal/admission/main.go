package admission

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
	"os"
	"strings"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/daemon"
)

const usage = `Usage: signet-admission --tls-cert FILE --tls-key FILE --policy FILE [flags]

The Kubernetes admission webhook of Signet (admission.k8s.io/v1): POST /validate decides,
POST /mutate pins verified tags to their digests; GET /healthz and GET /metrics.
The policy file is described in docs/admission.md.

Flags:
`

// Main runs signet-admission until ctx ends; it returns the exit code (0
// after a graceful stop, 1 on a failure, 2 on a bad command line or policy
// file).
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("signet-admission", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	listen := fs.String("listen", ":8443", "`address` to listen on (host:port)")
	certFile := fs.String("tls-cert", "", "TLS certificate `file` (PEM; re-read when it changes, as cert-manager renews it)")
	keyFile := fs.String("tls-key", "", "TLS private key `file` (PEM)")
	policyFile := fs.String("policy", "", "policy `file` (YAML)")
	revalidate := fs.Duration("revalidate-interval", 10*time.Minute, "how often admitted images are verified again (0: never)")
	revalidatePods := fs.Bool("revalidate-pods", false, "revalidation also lists the running pods through the Kubernetes API (in-cluster service account, or --kube-*) and verifies their images")
	kubeAPI := fs.String("kube-api", "", "`URL` of the Kubernetes API for --revalidate-pods (default: in-cluster)")
	kubeToken := fs.String("kube-token-file", "", "bearer token `file` for --kube-api (default: the service account's)")
	kubeCA := fs.String("kube-ca", "", "CA `file` of --kube-api (default: the service account's)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	checkOnly := fs.Bool("check", false, "check the policy file (and the files it names), print its order of matching, and exit")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *version {
		daemon.Version(stdout, "signet-admission")
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "signet-admission: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "signet-admission: --log-level %q: want debug, info, warn or error\n", *logLevel)
		return 2
	}
	if *policyFile == "" {
		fmt.Fprintln(stderr, "signet-admission: --policy FILE is required")
		return 2
	}
	pol, err := LoadFile(*policyFile)
	if err != nil {
		fmt.Fprintf(stderr, "signet-admission: policy %v\n", err)
		return 2
	}
	if *checkOnly {
		printPolicy(stdout, pol)
		return 0
	}
	if *certFile == "" || *keyFile == "" {
		fmt.Fprintln(stderr, "signet-admission: --tls-cert and --tls-key are required (the API server calls webhooks over TLS only)")
		return 2
	}
	if *revalidate < 0 {
		fmt.Fprintln(stderr, "signet-admission: --revalidate-interval must not be negative")
		return 2
	}
	certs := &certReloader{certFile: *certFile, keyFile: *keyFile}
	if _, err := certs.load(); err != nil {
		fmt.Fprintf(stderr, "signet-admission: %v\n", err)
		return 2
	}
	if (*kubeAPI != "" || *kubeToken != "" || *kubeCA != "") && !*revalidatePods {
		fmt.Fprintln(stderr, "signet-admission: --kube-api, --kube-token-file and --kube-ca go with --revalidate-pods")
		return 2
	}
	if *revalidatePods && *revalidate == 0 {
		fmt.Fprintln(stderr, "signet-admission: --revalidate-pods needs a --revalidate-interval")
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	o := Options{Policy: pol, Logger: log}
	if *revalidatePods {
		o.Pods = &PodSource{URL: *kubeAPI, TokenFile: *kubeToken, CAFile: *kubeCA, Getenv: getenv}
	}
	wh, err := New(o)
	if err != nil {
		fmt.Fprintf(stderr, "signet-admission: %v\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "signet-admission: %v\n", err)
		return 1
	}
	srv := &http.Server{
		Handler:           wh.Handler(),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	wh.Start(runCtx, *revalidate)
	fmt.Fprintf(stdout, "signet-admission: listening on https://%s (policy %s, %d namespace entries)\n", ln.Addr(), *policyFile, len(pol.spaces))
	log.Info("listening", "addr", ln.Addr().String(), "policy", *policyFile, "revalidate_interval", revalidate.String())
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		cancel()
		wh.Wait()
		fmt.Fprintf(stderr, "signet-admission: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer scancel()
	err = srv.Shutdown(sctx)
	cancel()
	wh.Wait()
	if err != nil {
		fmt.Fprintf(stderr, "signet-admission: shutdown: %v\n", err)
		return 1
	}
	return 0
}

// printPolicy prints the order in which namespace entries and rules are
// tried.
func printPolicy(w io.Writer, p *Policy) {
	fmt.Fprintf(w, "policy OK: images without a rule: %s\n", p.noMatch)
	for _, n := range p.spaces {
		fmt.Fprintf(w, "namespace %q (line %d): mode %s, break-glass %v, without a rule: %s\n", n.name, n.line, n.mode, n.breakGlass, n.noMatch)
		for _, r := range n.rules {
			var needs []string
			if r.dct != nil {
				needs = append(needs, fmt.Sprintf("dct %d of %v", r.dct.pol.Threshold, r.dct.pol.Signers))
			}
			if len(r.cosign) > 0 {
				needs = append(needs, fmt.Sprintf("cosign (%d keys)", len(r.cosign)))
			}
			fmt.Fprintf(w, "  %s (line %d): %s\n", r.pattern, r.line, strings.Join(needs, " and "))
		}
	}
}

// certReloader serves the certificate files, read again when they change
// (checked at most every few seconds).
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

func (c *certReloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	c.cert = &cert
	if fi, err := os.Stat(c.certFile); err == nil {
		c.modTime = fi.ModTime()
	}
	return c.cert, nil
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) > 5*time.Second {
		c.checked = time.Now()
		if fi, err := os.Stat(c.certFile); err == nil && !fi.ModTime().Equal(c.modTime) {
			if _, err := c.load(); err != nil {
				return c.cert, nil // keep serving the one that worked
			}
		}
	}
	return c.cert, nil
}

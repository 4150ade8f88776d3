package servercmd

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/signet-trust/signet/internal/daemon"
)

// healthcheckMain is `signet-server healthcheck [flags]`: with the flags
// and --config of the server it checks, it asks that server's
// /_notary_server/health on its own address and exits 0 when the answer is
// 200. It is what a container's HEALTHCHECK runs: the image has no curl,
// and the server's certificate need not name the address the check uses,
// because the check trusts exactly the certificate the server serves
// (--tls-cert, or the local CA's server.crt in the data directory).
func healthcheckMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := readConfig(args, stdout)
	switch {
	case errors.Is(err, flag.ErrHelp), errors.Is(err, daemon.ErrVersion):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "signet-server healthcheck: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := healthcheck(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "signet-server healthcheck: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "healthy")
	return 0
}

func healthcheck(ctx context.Context, cfg Config) error {
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %v", cfg.Listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	certFile := cfg.TLSCert
	if certFile == "" {
		certFile = filepath.Join(cfg.DataDir, "tls", "server.crt")
	}
	b, err := os.ReadFile(certFile)
	if err != nil {
		return fmt.Errorf("the server's certificate: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return fmt.Errorf("%s holds no PEM certificate", certFile)
	}
	want := block.Bytes
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The check pins the one certificate the server is configured
		// with instead of verifying a chain and a name.
		InsecureSkipVerify: true, //nolint:gosec // VerifyPeerCertificate pins the leaf
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], want) {
				return fmt.Errorf("the server at %s does not serve the certificate in %s", cfg.Listen, certFile)
			}
			return nil
		},
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}}
	u := "https://" + net.JoinHostPort(host, port) + "/_notary_server/health"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s %s", u, resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

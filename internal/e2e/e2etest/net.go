package e2etest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago.
// Servers that can listen on 127.0.0.1:0 and report their address should
// rather do that (see Start); this is for programs that cannot.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := FreeLoopbackAddr()
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	return addr
}

// FreeLoopbackAddr is FreeAddr outside a test.
func FreeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// WaitListening waits until addr accepts TCP connections, done is closed
// (the process serving it exited), ctx ends or timeout passes.
func WaitListening(ctx context.Context, addr string, done <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-done:
			return errors.New("the process exited")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %v: %w", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitHTTP polls GET url with c until ok accepts the status, done is closed
// (the process serving it exited), ctx ends or timeout passes.
func WaitHTTP(ctx context.Context, c *http.Client, url string, ok func(status int) bool, done <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	lastErr := errors.New("no answer yet")
	for {
		select {
		case <-done:
			return fmt.Errorf("the process exited before %s answered (last: %v)", url, lastErr)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if ok(resp.StatusCode) {
				return nil
			}
			lastErr = fmt.Errorf("GET %s: %s %q", url, resp.Status, body)
		} else {
			lastErr = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %v", url, timeout, lastErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Status200 is the ok of WaitHTTP for a health endpoint.
func Status200(status int) bool { return status == http.StatusOK }

// CertPool reads the PEM certificates of caFile into a pool.
func CertPool(caFile string) (*x509.CertPool, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no certificate", caFile)
	}
	return pool, nil
}

// HTTPSClient is a client that trusts only the certificates in caFile,
// with a 20 s timeout and no connection reuse.
func HTTPSClient(t testing.TB, caFile string) *http.Client {
	t.Helper()
	pool, err := CertPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	return httpsClient(pool)
}

func httpsClient(pool *x509.CertPool) *http.Client {
	return &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true},
	}
}

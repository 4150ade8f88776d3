// Package httpclient builds the HTTP/1.1-over-TLS transports the load tools use
// to talk to a server under test. Only the CA given is trusted; HTTP/2 is never
// negotiated, so every server is measured over the protocol the notary and
// Docker clients use.
package httpclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// Options shape a transport.
type Options struct {
	// CAFile is a PEM bundle of the CAs to trust; empty means the system pool.
	CAFile string
	// Conns caps connections to the server (0: unlimited).
	Conns int
	// KeepAlive reuses connections; false opens one TLS connection per
	// request, as the notary CLI does.
	KeepAlive bool
	// Timeout bounds each request, headers and body (0: none). It costs a
	// timer per request; GET load uses HeaderTimeout and a run deadline.
	Timeout time.Duration
	// HeaderTimeout bounds the wait for response headers (0: none).
	HeaderTimeout time.Duration
}

// New returns a transport for o. With a Timeout the transport cancels every
// request that runs longer, so a stuck server cannot stall a bounded run.
func New(o Options) (http.RoundTripper, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("httpclient: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("httpclient: no certificates in %s", o.CAFile)
		}
		tc.RootCAs = pool
	}
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   5 * time.Second,
		DisableKeepAlives:     !o.KeepAlive,
		MaxConnsPerHost:       o.Conns,
		MaxIdleConns:          max(o.Conns, 2),
		MaxIdleConnsPerHost:   max(o.Conns, 2),
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: o.HeaderTimeout,
		Protocols:             protos,
	}
	if o.Timeout <= 0 {
		return t, nil
	}
	return timeoutTransport{next: t, timeout: o.Timeout}, nil
}

// timeoutTransport bounds a request, including reading its body.
type timeoutTransport struct {
	next    http.RoundTripper
	timeout time.Duration
}

func (t timeoutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// The notary client builds its requests without a context, and reads the
	// body after RoundTrip returns: the deadline lives until Close.
	ctx, cancel := context.WithTimeout(req.Context(), t.timeout)
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
)

// Docker trusts a server certificate that chains to the system's roots or
// to the CAs of its tls/ directory (or --tlscacert). Loading the system's
// roots parses every certificate of the system bundle, tens of
// milliseconds for a command that often takes little more; and a trust
// server's certificate usually chains to the host's own CA. So the CAs of
// the host are tried alone first, and only a certificate they do not
// verify is verified again against the union, loaded then: crypto/tls
// verifies both times, and a chain that verifies against some of the roots
// verifies against all of them, so what is accepted is exactly what the
// union accepts.

// systemCertPool is x509.SystemCertPool (a test stands in its own roots).
var systemCertPool = x509.SystemCertPool

// unionRoots is an http.RoundTripper that verifies the server against the
// host CAs alone, then, if that fails verification, against the system's
// roots and the host CAs together, from then on.
type unionRoots struct {
	host    *http.Transport
	pems    [][]byte
	once    sync.Once
	union   *http.Transport
	useBoth atomic.Bool
}

// trustHostAndSystemRoots returns tr, set to trust the host's CAs (pool,
// made of pems), as a transport that trusts them and the system's roots.
func trustHostAndSystemRoots(tr *http.Transport, pool *x509.CertPool, pems [][]byte) http.RoundTripper {
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr.TLSClientConfig.RootCAs = pool
	return &unionRoots{host: tr, pems: pems}
}

// unionTransport builds the transport of the union, once.
func (u *unionRoots) unionTransport() *http.Transport {
	u.once.Do(func() {
		pool, err := systemCertPool()
		if err != nil {
			pool = x509.NewCertPool() // no system roots: the host CAs alone
		}
		for _, p := range u.pems {
			pool.AppendCertsFromPEM(p)
		}
		u.union = u.host.Clone()
		u.union.TLSClientConfig = u.host.TLSClientConfig.Clone()
		u.union.TLSClientConfig.RootCAs = pool
	})
	return u.union
}

func (u *unionRoots) RoundTrip(req *http.Request) (*http.Response, error) {
	if u.useBoth.Load() {
		return u.unionTransport().RoundTrip(req)
	}
	resp, err := u.host.RoundTrip(req)
	var verr *tls.CertificateVerificationError
	if err == nil || !errors.As(err, &verr) {
		return resp, err
	}
	// The handshake failed, so nothing of the request was sent: send it
	// again, over a connection verified against the union.
	retry := req
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil, err
		}
		body, gerr := req.GetBody()
		if gerr != nil {
			return nil, fmt.Errorf("%w (and the request body could not be read again: %v)", err, gerr)
		}
		retry = req.Clone(req.Context())
		retry.Body = body
	}
	u.useBoth.Store(true)
	return u.unionTransport().RoundTrip(retry)
}

// CloseIdleConnections closes both transports' idle connections.
func (u *unionRoots) CloseIdleConnections() {
	u.host.CloseIdleConnections()
	if u.useBoth.Load() {
		u.unionTransport().CloseIdleConnections()
	}
}

package servercmd

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestTLSKeyExchange connects a client offering Go's default key exchanges
// (the hybrid post-quantum one first) and checks which one the server
// picks: X25519MLKEM768 by default, X25519 with tls_no_post_quantum; and
// that no session ticket is issued.
func TestTLSKeyExchange(t *testing.T) {
	for _, tc := range []struct {
		noPostQuantum bool
		want          tls.CurveID
	}{{false, tls.X25519MLKEM768}, {true, tls.X25519}} {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		tuneTLS(srv.TLS, tc.noPostQuantum)
		srv.StartTLS()
		c := srv.Client()
		tr := c.Transport.(*http.Transport)
		cache := tls.NewLRUClientSessionCache(4)
		tr.TLSClientConfig.ClientSessionCache = cache
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.TLS.CurveID; got != tc.want {
			t.Errorf("tls_no_post_quantum %v: key exchange %v; want %v", tc.noPostQuantum, got, tc.want)
		}
		tr.CloseIdleConnections()
		resp, err = c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.TLS.DidResume {
			t.Errorf("tls_no_post_quantum %v: the second connection resumed a session; want no session tickets", tc.noPostQuantum)
		}
		srv.Close()
	}
}

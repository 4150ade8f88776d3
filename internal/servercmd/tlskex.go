package servercmd

import "crypto/tls"

// Key exchange of the server's TLS handshakes. By default the server
// prefers the hybrid post-quantum exchange X25519MLKEM768 for clients that
// offer it (Go 1.24 and later, docker 28), then X25519 and P-256: what
// crosses the connection includes registry passwords on their way to the
// token service, which should not be recorded now and opened later.
// tls_no_post_quantum drops the hybrid exchange: Notary clients open a
// connection per request, and the hybrid exchange roughly doubles the
// server's handshake cost (docs/benchmarks.md measures it), so an operator
// may trade it away, by name.
func tuneTLS(t *tls.Config, noPostQuantum bool) {
	if noPostQuantum {
		t.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
	} else {
		t.CurvePreferences = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}
	}
	// Every request is a new connection and no Notary client resumes a
	// session: tickets would be sealed and sent for nothing.
	t.SessionTicketsDisabled = true
}

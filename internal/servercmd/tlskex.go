package servercmd

import "crypto/tls"

// Key exchange of the server's TLS handshakes. Notary clients and docker
// open a new connection for every request of a publish (keep-alive off),
// so the server does a full handshake several times per publish, and its
// key exchange is most of the handshake's cost. X25519 (and P-256 for
// clients without it) by default; the hybrid post-quantum exchange
// X25519MLKEM768, which roughly doubles that cost for the clients that
// offer it (Go 1.24 and later), when tls_post_quantum is set.
func tuneTLS(t *tls.Config, postQuantum bool) {
	if postQuantum {
		t.CurvePreferences = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}
	} else {
		t.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
	}
	// Every request is a new connection and no Notary client resumes a
	// session: tickets would be sealed and sent for nothing.
	t.SessionTicketsDisabled = true
}

package admission

import (
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/signet-trust/signet/internal/audit"
)

// TestCredentialedClientsRefuseRedirects: the audit log and the
// Kubernetes API are reached with the webhook's bearer tokens. When either
// answers with a redirect — here to another port of the same host, which
// answers 201 as an audit log would — the redirect is an error: the token
// is not sent there, and an audit record (a break-glass's) is not counted
// as recorded.
func TestCredentialedClientsRefuseRedirects(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"items":[]}`))
	}))
	t.Cleanup(other.Close)
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redirector := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+r.URL.RequestURI(), code)
		}))
		redirector.TLS = other.TLS // the same certificate: following would succeed
		redirector.StartTLS()
		t.Cleanup(redirector.Close)
		pool := x509.NewCertPool()
		pool.AddCert(other.Certificate())

		p := &Policy{cfg: &Config{Audit: AuditConfig{URL: redirector.URL}}, auditToken: "audit-secret", auditHTTP: transport(pool)}
		sink := newAuditSink(p, slog.New(slog.DiscardHandler), newMetrics(func() int { return 0 }))
		err := sink.append(t.Context(), audit.Event{Type: audit.AdmissionBreakGlass})
		if err == nil || !strings.Contains(err.Error(), "not followed") {
			t.Errorf("%d: a redirected audit record: %v, want an error", code, err)
		}

		dir := t.TempDir()
		tokenFile, caFile := filepath.Join(dir, "token"), filepath.Join(dir, "ca.crt")
		if err := os.WriteFile(tokenFile, []byte("kube-secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := newPodLister(func(string) string { return "" }, redirector.URL, tokenFile, caFile)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.pods(t.Context()); err == nil || !strings.Contains(err.Error(), "not followed") {
			t.Errorf("%d: a redirected pod listing: %v, want an error", code, err)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("%d requests followed a redirect, with the bearer token", n)
	}
}

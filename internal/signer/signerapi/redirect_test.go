package signerapi_test

import (
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/signer/signerapi"
)

// TestClientRefusesRedirects: a "signer" that answers 3xx towards a real
// signer (same CA, so following would succeed) gets an error naming the
// redirect; the request, its body and the client certificate never reach
// the other signer, which holds no key afterwards.
func TestClientRefusesRedirects(t *testing.T) {
	svc := newService(t)
	target := startSigner(t, svc, nil, signerapi.ClientOptions{})
	srvCert, srvKey := target.ca.issue(t, "redirector", x509.ExtKeyUsageServerAuth)
	srvTLS, err := signerapi.ServerTLSConfig(srvCert, srvKey, target.ca.file)
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			var asked atomic.Int64
			ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				asked.Add(1)
				http.Redirect(w, r, target.url+r.URL.RequestURI(), code)
			}))
			ts.TLS = srvTLS
			ts.StartTLS()
			defer ts.Close()
			c, err := signerapi.NewClient(ts.URL, target.clientTLS, signerapi.ClientOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			before := target.calls.Load()
			gun := uniqueGUN(t)
			for name, call := range map[string]func() error{
				"create": func() error { _, err := c.Create(t.Context(), gun, "timestamp"); return err },
				"keys":   func() error { _, err := c.Keys(t.Context(), gun, "timestamp"); return err },
				"check":  func() error { return c.Check(t.Context()) },
			} {
				err := call()
				if err == nil || !strings.Contains(err.Error(), "does not redirect") || !strings.Contains(err.Error(), target.url) {
					t.Errorf("%s through a %d: %v", name, code, err)
				}
			}
			if asked.Load() == 0 {
				t.Fatal("the redirecting signer was never asked")
			}
			if n := target.calls.Load() - before; n != 0 {
				t.Fatalf("%d requests followed the redirect to the other signer", n)
			}
			if held, err := svc.ListKeys(t.Context(), custody.Filter{}); err != nil || len(held) != 0 {
				t.Fatalf("the other signer holds %d keys (%v)", len(held), err)
			}
		})
	}
}

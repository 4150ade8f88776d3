package client_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/origin"
	"github.com/signet-trust/signet/internal/origin/origintest"
	"github.com/signet-trust/signet/internal/registry"
)

// TestRemoteRedirects: the trust-server client never follows a redirect
// from https to http, even when the caller's http.Client has no redirect
// policy of its own, and the registry credentials of the transport Docker
// uses stay with the trust server.
func TestRemoteRedirects(t *testing.T) {
	const pass = "registry-password-s3cret"
	n := origintest.New(t)
	trust := n.Serve("https://trust.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="notary"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, "http://evil.test"+r.URL.Path, http.StatusFound)
	}))
	plain := n.Serve("http://evil.test", http.NotFoundHandler())
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"registry.test":{"username":"ci","password":"`+pass+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	kc, err := registry.LoadDockerConfig(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &registry.AuthTransport{Base: n.Transport(), Keychain: kc, Server: "https://trust.test", Registry: "registry.test", Repository: "registry.test/app"}}
	remote, err := client.NewRemote("https://trust.test", hc, "registry.test/app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.GetCurrent(t.Context(), "root", client.MaxMetadataSize); !errors.Is(err, origin.ErrDowngrade) {
		t.Fatalf("GetCurrent: %v, want ErrDowngrade", err)
	}
	if !trust.Saw(pass) {
		t.Fatal("the trust server never got the password: the test proves nothing")
	}
	if len(plain.Requests()) != 0 {
		t.Fatalf("the plain-http host got %v", plain.Requests())
	}
}

// TestServerErrorIsPrintable: what a trust server puts in its error
// envelope reaches a person quoted, with no escape sequence or line break.
func TestServerErrorIsPrintable(t *testing.T) {
	n := origintest.New(t)
	n.Serve("https://trust.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		switch {
		case strings.HasSuffix(r.URL.Path, "root.json"):
			_, _ = w.Write([]byte(`{"errors":[{"code":"DENIED\u001b]0;pwned\u0007","message":"no\u001b[2J\nroot  sha256:forged  1  targets","detail":{"x":` + "\n" + `"\u001b[31m"}}]}`))
		default:
			_, _ = w.Write([]byte(`{"errors":[{"code":"INVALID_UPDATE","message":"bad","detail":{"Name":"ErrBad\u001b[8m","Error":{"Msg":"hidden\r\nforged line"}}}]}`))
		}
	}))
	hc := &http.Client{Transport: n.Transport()}
	remote, err := client.NewRemote("https://trust.test", hc, "registry.test/app")
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"root", "targets"} {
		_, err := remote.GetCurrent(t.Context(), role, client.MaxMetadataSize)
		var se *client.ServerError
		if !errors.As(err, &se) {
			t.Fatalf("%s: %v", role, err)
		}
		msg := err.Error()
		if strings.ContainsAny(msg, "\x1b\x07\r\n") {
			t.Errorf("%s: the error carries control characters: %q", role, msg)
		}
		if !strings.Contains(msg, `\x1b`) {
			t.Errorf("%s: the escape is not shown quoted: %q", role, msg)
		}
	}
}

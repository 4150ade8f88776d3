//go:build !pkcs11

package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/trustdir"
)

// TestNoPKCS11Build: a build without -tags pkcs11 explains itself, for the
// flags and for a trust directory whose root key is on a token.
func TestNoPKCS11Build(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"HOME": dir}
	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), append([]string{"-d", dir, "-s", "https://127.0.0.1:1"}, args...), Env{
			Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errOut,
		})
		return code, out.String() + errOut.String()
	}
	uri := "pkcs11:token=signet?module-path=/usr/lib/softhsm/libsofthsm2.so"
	for _, args := range [][]string{
		{"init", "example.com/app", "--root-pkcs11", uri},
		{"key", "rotate", "example.com/app", "root", "--root-pkcs11", uri},
	} {
		code, out := run(args...)
		if code != ExitUsage || !strings.Contains(out, "built without PKCS#11") {
			t.Errorf("signet %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
	}

	// A token reference in the trust directory: signing with it says why not.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a := newApp(Env{Getenv: func(k string) string { return env[k] }})
	ks := a.keyStore(trustdir.Dir{Path: dir}, false)
	id, err := ks.AddTokenRef(k.Public(), "root", uri)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := ks.Signer(t.Context(), id); ok || err == nil || !strings.Contains(err.Error(), "built without PKCS#11") || !strings.Contains(err.Error(), uri) {
		t.Errorf("Signer of a token key: ok=%v err=%v", ok, err)
	}
	code, out := run("key", "list")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, uri) {
		t.Errorf("key list: exit %d\n%s", code, out)
	}
}

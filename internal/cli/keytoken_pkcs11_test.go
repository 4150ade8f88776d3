//go:build pkcs11

package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/keys/pkcs11/pkcs11test"
	"github.com/signet-trust/signet/internal/trustdir"
)

// TestTokenModuleAllowList: a pkcs11: URI on the command line or in a
// trust directory someone else wrote cannot make signet load a library
// outside the allow-list; nothing is created and the library is never
// mapped into the process.
func TestTokenModuleAllowList(t *testing.T) {
	hsm := pkcs11test.New(t)
	hsm.Setenv(t)
	dir := t.TempDir()
	body, err := os.ReadFile(hsm.Module)
	if err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(dir, "libplanted.so")
	if err := os.WriteFile(planted, body, 0o644); err != nil {
		t.Fatal(err)
	}
	trust := filepath.Join(dir, "trust")
	env := map[string]string{"HOME": dir, envPKCS11PIN: "1234"}
	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), append([]string{"-d", trust, "-s", "https://127.0.0.1:1"}, args...), Env{
			Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errOut,
		})
		return code, out.String() + errOut.String()
	}
	notMapped := func() {
		t.Helper()
		if maps, err := os.ReadFile("/proc/self/maps"); err == nil && strings.Contains(string(maps), planted) {
			t.Fatal("the planted module was mapped into the process")
		}
	}

	uri := "pkcs11:token=signet;object=root?module-path=" + planted
	if code, out := run("init", "example.com/app", "--root-pkcs11", uri); code != ExitUsage ||
		!strings.Contains(out, planted+" is not an allowed PKCS#11 module") || !strings.Contains(out, envPKCS11Modules) {
		t.Errorf("init --root-pkcs11 with a planted module: exit %d\n%s", code, out)
	}
	notMapped()
	if _, err := os.Stat(filepath.Join(trust, "tuf", "example.com", "app")); err == nil {
		t.Error("a refused init created the repository's trust data")
	}

	// A token reference planted in the trust directory.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a := newApp(Env{Getenv: func(k string) string { return env[k] }})
	ks := a.keyStore(trustdir.Dir{Path: trust}, false)
	id, err := ks.AddTokenRef(k.Public(), "root", uri)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := ks.Signer(t.Context(), id); ok || err == nil || !strings.Contains(err.Error(), "is not an allowed PKCS#11 module") {
		t.Errorf("Signer of a planted token reference: ok=%v err=%v", ok, err)
	}
	notMapped()

	// Allowed by SIGNET_PKCS11_MODULE (the user's own setting), the module
	// is loaded and the token asked for (absent here).
	env[envPKCS11Module] = hsm.Module
	code, out := run("init", "example.com/app", "--root-pkcs11", "pkcs11:token=absent;object=root")
	if code == 0 || strings.Contains(out, "not an allowed") || !strings.Contains(out, `token "absent" is not present`) {
		t.Errorf("a module from %s: exit %d\n%s", envPKCS11Module, code, out)
	}
}

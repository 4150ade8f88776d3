//go:build pkcs11

package cli

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/keys/pkcs11"
	"github.com/signet-trust/signet/internal/keys/pkcs11/pkcs11test"
)

// TestCosignSignPKCS11: signet cosign sign --key pkcs11:… signs with a key
// inside a SoftHSM2 token, and the signature verifies with its public key.
func TestCosignSignPKCS11(t *testing.T) {
	hsm := pkcs11test.New(t)
	hsm.Setenv(t)
	tok := hsm.InitToken(t, "cosign")
	ctx := context.Background()
	token, err := pkcs11.Open(ctx, pkcs11.Config{ModulePath: hsm.Module, Token: tok.Label, PIN: tok.PIN})
	if err != nil {
		t.Fatal(err)
	}
	k, err := token.GenerateECDSA(ctx, "release-key")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keys.FromCrypto(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	token.Close()

	host := testRegistry(t, true)
	img := host + "/team/app"
	d := pushTestImage(t, host, "team/app", "v1")
	u := cosignUser(t)
	if err := os.WriteFile(u.path("hsm.pub"), keys.MarshalPublicKeyPEM(pub, ""), 0o600); err != nil {
		t.Fatal(err)
	}
	u.env[envPKCS11PIN] = tok.PIN
	uri := "pkcs11:token=" + tok.Label + ";object=release-key?module-path=" + hsm.Module
	out := u.ok("cosign", "sign", "--key", uri, img+":v1")
	if strings.Count(out, "(written)") != 2 {
		t.Fatalf("sign with the token key:\n%s", out)
	}
	if out := u.ok("cosign", "verify", "--key", u.path("hsm.pub"), img+":v1"); strings.TrimSpace(out) != d.Digest {
		t.Fatalf("verify: %q", out)
	}
	// A wrong PIN signs nothing.
	u.env[envPKCS11PIN] = "0000"
	d2 := pushTestImage(t, host, "team/app", "v2")
	if code, _, errOut := u.run("cosign", "sign", "--key", uri, img+":v2"); code != ExitError || !strings.Contains(strings.ToLower(errOut), "pin") {
		t.Fatalf("wrong PIN: exit %d\n%s", code, errOut)
	}
	if code, _, _ := u.run("cosign", "verify", "--key", u.path("hsm.pub"), img+"@"+d2.Digest); code != ExitNotFound {
		t.Fatalf("a signature appeared after a wrong PIN: exit %d", code)
	}

	// A module the allow-list does not hold is never loaded, whatever the
	// URI says: a copy of the real module elsewhere, a relative path, a
	// writable file; and SIGNET_PKCS11_MODULES replaces the default list.
	u.env[envPKCS11PIN] = tok.PIN
	body, err := os.ReadFile(hsm.Module)
	if err != nil {
		t.Fatal(err)
	}
	planted := u.path("libplanted.so")
	if err := os.WriteFile(planted, body, 0o644); err != nil {
		t.Fatal(err)
	}
	writable := u.path("libwritable.so")
	if err := os.WriteFile(writable, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(writable, 0o666); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, module, allow, want string
	}{
		{"not allowed", planted, "", "is not an allowed PKCS#11 module"},
		{"relative", "libsofthsm2.so", "", "not an absolute path"},
		{"allowed but writable", writable, writable, "may be written by group or other"},
		{"the list replaces the defaults", hsm.Module, planted, "is not an allowed PKCS#11 module (allowed: " + planted + ")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u.t = t
			u.env[envPKCS11Modules] = tc.allow
			defer delete(u.env, envPKCS11Modules)
			uri := "pkcs11:token=" + tok.Label + ";object=release-key?module-path=" + tc.module
			code, _, errOut := u.run("cosign", "sign", "--key", uri, img+":v2")
			if code != ExitError || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, want %d saying %q:\n%s", code, ExitError, tc.want, errOut)
			}
			if tc.name == "not allowed" && !strings.Contains(errOut, envPKCS11Modules) {
				t.Errorf("the message does not say how to allow a module:\n%s", errOut)
			}
			if code, _, _ := u.run("cosign", "verify", "--key", u.path("hsm.pub"), img+"@"+d2.Digest); code != ExitNotFound {
				t.Fatalf("a signature appeared: exit %d", code)
			}
			if maps, err := os.ReadFile("/proc/self/maps"); err == nil && strings.Contains(string(maps), u.dir) {
				t.Fatalf("a refused module was mapped into the process")
			}
		})
	}
}

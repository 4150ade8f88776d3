//go:build pkcs11

package pkcs11_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/keys/pkcs11"
	"github.com/signet-trust/signet/internal/keys/pkcs11/pkcs11test"
)

// open gives the test a fresh SoftHSM2 token and a session on it.
func open(t *testing.T) (*pkcs11.Token, pkcs11.Config, *pkcs11test.SoftHSM) {
	t.Helper()
	hsm := pkcs11test.New(t)
	hsm.Setenv(t)
	tok := hsm.InitToken(t, "signet")
	cfg := pkcs11.Config{ModulePath: hsm.Module, Token: tok.Label, PIN: tok.PIN}
	tk, err := pkcs11.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { tk.Close() })
	return tk, cfg, hsm
}

func TestGenerateFindSign(t *testing.T) {
	tk, cfg, _ := open(t)
	ctx := context.Background()
	k, err := tk.GenerateECDSA(ctx, "root-example.com/app")
	if err != nil {
		t.Fatalf("GenerateECDSA: %v", err)
	}
	pub, ok := k.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("public key %T, want ECDSA P-256", k.Public())
	}

	// The private key is sensitive, not extractable, private and on the token.
	attrs, err := tk.Attributes(k, p11.CKA_SENSITIVE, p11.CKA_EXTRACTABLE, p11.CKA_TOKEN, p11.CKA_PRIVATE, p11.CKA_ALWAYS_SENSITIVE, p11.CKA_NEVER_EXTRACTABLE)
	if err != nil {
		t.Fatalf("Attributes: %v", err)
	}
	for typ, want := range map[crypto11.AttributeType]bool{
		p11.CKA_SENSITIVE: true, p11.CKA_EXTRACTABLE: false, p11.CKA_TOKEN: true, p11.CKA_PRIVATE: true,
		p11.CKA_ALWAYS_SENSITIVE: true, p11.CKA_NEVER_EXTRACTABLE: true,
	} {
		if attrs[typ] != want {
			t.Errorf("attribute %#x = %v, want %v", typ, attrs[typ], want)
		}
	}

	// Notary signatures made in the token verify.
	msg := []byte(`{"signed":"bytes"}`)
	method, sig, err := keys.Sign(k, msg)
	if err != nil {
		t.Fatalf("keys.Sign: %v", err)
	}
	pk, err := keys.FromCrypto(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := pk.Verify(method, msg, sig); err != nil {
		t.Fatalf("verify: %v", err)
	}

	// A label names one key.
	if _, err := tk.GenerateECDSA(ctx, "root-example.com/app"); !errors.Is(err, pkcs11.ErrKeyExists) {
		t.Errorf("second key with the same label: %v, want ErrKeyExists", err)
	}

	// Found again by label, by ID, by URI, and from a new session.
	for name, find := range map[string]func(*pkcs11.Token) (*pkcs11.Key, error){
		"label": func(tk *pkcs11.Token) (*pkcs11.Key, error) { return tk.Find(ctx, "root-example.com/app", nil) },
		"id":    func(tk *pkcs11.Token) (*pkcs11.Key, error) { return tk.Find(ctx, "", k.ID()) },
		"uri": func(tk *pkcs11.Token) (*pkcs11.Key, error) {
			u, err := pkcs11.ParseURI(k.URI().String())
			if err != nil {
				return nil, err
			}
			return tk.FindURI(ctx, u)
		},
	} {
		got, err := find(tk)
		if err != nil {
			t.Fatalf("find by %s: %v", name, err)
		}
		if !got.Public().(*ecdsa.PublicKey).Equal(pub) || got.Label() != k.Label() || string(got.ID()) != string(k.ID()) {
			t.Errorf("find by %s: got %v, want %v", name, got, k)
		}
	}
	tk.Close()
	tk2, err := pkcs11.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tk2.Close()
	again, err := tk2.Find(ctx, "root-example.com/app", nil)
	if err != nil {
		t.Fatalf("after reopening: %v", err)
	}
	if _, _, err := keys.Sign(again, msg); err != nil {
		t.Fatalf("sign after reopening: %v", err)
	}
	if _, err := tk2.Find(ctx, "nope", nil); !errors.Is(err, pkcs11.ErrKeyNotFound) {
		t.Errorf("missing key: %v, want ErrKeyNotFound", err)
	}
}

func TestOpenErrors(t *testing.T) {
	tk, cfg, _ := open(t)
	// Login state is per process: while a session is logged in, the module
	// takes any PIN. Close it so the wrong PIN is seen.
	tk.Close()
	ctx := context.Background()
	cases := []struct {
		name string
		cfg  pkcs11.Config
		is   error
		want []string
	}{
		{"missing module", pkcs11.Config{ModulePath: "/nonexistent/libnope.so", Token: "signet", PIN: "not-the-pin-4711"}, pkcs11.ErrModule, []string{"/nonexistent/libnope.so", "install"}},
		{"no module", pkcs11.Config{Token: "signet", PIN: "not-the-pin-4711"}, pkcs11.ErrModule, []string{"module-path"}},
		{"relative module", pkcs11.Config{ModulePath: filepath.Base(cfg.ModulePath), Token: "signet", PIN: cfg.PIN}, pkcs11.ErrModuleRefused, []string{"not an absolute path"}},
		{"module is a directory", pkcs11.Config{ModulePath: filepath.Dir(cfg.ModulePath), Token: "signet", PIN: cfg.PIN}, pkcs11.ErrModuleRefused, []string{"not a regular file"}},
		{"missing token", pkcs11.Config{ModulePath: cfg.ModulePath, Token: "other", PIN: cfg.PIN}, pkcs11.ErrTokenNotFound, []string{`"other"`, `present: "signet"`}},
		{"missing serial", pkcs11.Config{ModulePath: cfg.ModulePath, Serial: "0000", PIN: cfg.PIN}, pkcs11.ErrTokenNotFound, []string{`serial "0000"`}},
		{"wrong PIN", pkcs11.Config{ModulePath: cfg.ModulePath, Token: "signet", PIN: "wrong-pin-1234"}, pkcs11.ErrPINIncorrect, []string{`"signet"`}},
		{"no PIN", pkcs11.Config{ModulePath: cfg.ModulePath, Token: "signet"}, nil, []string{"no PIN"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tk, err := pkcs11.Open(ctx, tc.cfg)
			if err == nil {
				tk.Close()
				t.Fatal("Open succeeded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v, want %v", err, tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tc.cfg.PIN != "" && strings.Contains(err.Error(), tc.cfg.PIN) {
				t.Errorf("error shows the PIN: %v", err)
			}
		})
	}
}

// TestOpenRefusesWritableModule: a copy of the real module that group or
// other may write is not loaded, with a message that says why, and the
// process's memory map shows it was never mapped.
func TestOpenRefusesWritableModule(t *testing.T) {
	hsm := pkcs11test.New(t)
	hsm.Setenv(t)
	tok := hsm.InitToken(t, "signet")
	body, err := os.ReadFile(hsm.Module)
	if err != nil {
		t.Fatal(err)
	}
	for _, perm := range []os.FileMode{0o666, 0o775} {
		copyPath := filepath.Join(t.TempDir(), "libplanted.so")
		if err := os.WriteFile(copyPath, body, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(copyPath, perm); err != nil {
			t.Fatal(err)
		}
		tk, err := pkcs11.Open(t.Context(), pkcs11.Config{ModulePath: copyPath, Token: tok.Label, PIN: tok.PIN})
		if err == nil {
			tk.Close()
			t.Fatalf("mode %04o: Open loaded a module others may write", perm)
		}
		if !errors.Is(err, pkcs11.ErrModuleRefused) || !strings.Contains(err.Error(), "group or other") || !strings.Contains(err.Error(), copyPath) {
			t.Errorf("mode %04o: %v", perm, err)
		}
		maps, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Skipf("no /proc/self/maps to check what was loaded: %v", err)
		}
		if strings.Contains(string(maps), copyPath) {
			t.Fatalf("mode %04o: the refused module was mapped into the process", perm)
		}
	}
}

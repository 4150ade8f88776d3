//go:build pkcs11

package hsm

import (
	"bytes"
	"context"
	"crypto"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/keys/pkcs11"
	"github.com/signet-trust/signet/internal/keys/pkcs11/pkcs11test"
	"github.com/signet-trust/signet/internal/signer"
)

const gun = "example.com/app"

// softToken gives the test its own SoftHSM2 token and its URI and PIN.
func softToken(t *testing.T) (pkcs11.URI, string) {
	t.Helper()
	h := pkcs11test.New(t)
	h.Setenv(t)
	tok := h.InitToken(t, "signet-signer")
	return pkcs11.URI{ModulePath: h.Module, Token: tok.Label}, tok.PIN
}

func openToken(t *testing.T, uri pkcs11.URI, pin string) *Token {
	t.Helper()
	tk, err := Open(t.Context(), uri, pin)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return tk
}

// passphrase gives every alias the same passphrase.
func passphrase(string) []byte { return []byte("test passphrase") }

func openService(t *testing.T, dbPath string, tok signer.Token, log *slog.Logger) (*signer.Service, *signer.DB) {
	t.Helper()
	db, err := signer.OpenDB(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	opts := signer.Options{DefaultAlias: "default", Passphrase: passphrase, Logger: log}
	if tok != nil { // a nil *Token must not become a non-nil interface
		opts.Token = tok
	}
	svc, err := signer.Open(t.Context(), db, opts)
	if err != nil {
		db.Close()
		t.Fatalf("signer.Open: %v", err)
	}
	return svc, db
}

// serviceSigner is a crypto.Signer over Service.Sign.
type serviceSigner struct {
	s   *signer.Service
	ctx context.Context
	gun string
	pub *keys.PublicKey
}

func (x serviceSigner) Public() crypto.PublicKey { return x.pub.CryptoKey() }
func (x serviceSigner) Sign(_ io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return x.s.Sign(x.ctx, x.gun, x.pub.ID(), d, o)
}

func signVerify(t *testing.T, s *signer.Service, gun string, pub *keys.PublicKey) error {
	t.Helper()
	msg := []byte(`{"signed":{"_type":"Timestamp"}}`)
	method, sig, err := keys.Sign(serviceSigner{s: s, ctx: t.Context(), gun: gun, pub: pub}, msg)
	if err != nil {
		return err
	}
	if err := pub.Verify(method, msg, sig); err != nil {
		t.Fatalf("signature made in the token does not verify: %v", err)
	}
	return nil
}

// TestTokenKeys: keys created through the signer core live in the token,
// are not extractable, sign (also concurrently), are listed beside sealed
// keys, and keep working after the signer and the token session restart.
func TestTokenKeys(t *testing.T) {
	uri, pin := softToken(t)
	ctx := t.Context()
	dbPath := filepath.Join(t.TempDir(), "signer.db")

	// A software key made before the token was configured.
	svc, db := openService(t, dbPath, nil, nil)
	soft, err := svc.Create(ctx, gun, "snapshot", signer.AlgorithmED25519)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	tok := openToken(t, uri, pin)
	if tok.Name() != "pkcs11:token=signet-signer" {
		t.Errorf("Name = %q", tok.Name())
	}
	svc, db = openService(t, dbPath, tok, nil)
	pub, err := svc.Create(ctx, gun, "timestamp", signer.AlgorithmECDSA)
	if err != nil {
		t.Fatalf("Create in token: %v", err)
	}
	if pub.Type() != keys.TypeECDSA {
		t.Fatalf("type %s", pub.Type())
	}
	if err := signVerify(t, svc, gun, pub); err != nil {
		t.Fatal(err)
	}
	if err := signVerify(t, svc, gun, soft); err != nil {
		t.Fatalf("the sealed key beside the token: %v", err)
	}
	if _, err := svc.Create(ctx, gun, "timestamp", signer.AlgorithmED25519); !errors.Is(err, signer.ErrInvalid) {
		t.Errorf("ed25519 in the token: %v, want ErrInvalid", err)
	}
	if got, err := svc.Keys(ctx, gun, "timestamp"); err != nil || len(got) != 1 || got[0].ID() != pub.ID() {
		t.Fatalf("Keys = %v, %v", got, err)
	}
	if k, err := svc.Key(ctx, gun, pub.ID()); err != nil || k.ID() != pub.ID() {
		t.Fatalf("Key = %v, %v", k, err)
	}
	if _, err := svc.Key(ctx, "example.com/other", pub.ID()); !errors.Is(err, keys.ErrKeyNotHeld) {
		t.Fatalf("Key for another GUN: %v", err)
	}
	if err := signVerify(t, svc, "example.com/other", pub); !errors.Is(err, keys.ErrKeyNotHeld) {
		t.Fatalf("Sign for another GUN: %v", err)
	}

	// Concurrent signatures share the token's sessions.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			msg := []byte("concurrent")
			method, sig, err := keys.Sign(serviceSigner{s: svc, ctx: ctx, gun: gun, pub: pub}, msg)
			if err == nil {
				err = pub.Verify(method, msg, sig)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent sign: %v", err)
		}
	}

	// The private key object is sensitive and was never extractable.
	var label string
	var objectID []byte
	raw, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.QueryRowContext(ctx, "SELECT label, object_id FROM token_keys WHERE id = ?", pub.ID()).Scan(&label, &objectID); err != nil {
		t.Fatalf("token key record: %v", err)
	}
	var sealed int
	if err := raw.QueryRowContext(ctx, "SELECT COUNT(*) FROM keys WHERE id = ?", pub.ID()).Scan(&sealed); err != nil || sealed != 0 {
		t.Fatalf("the token key also has a sealed record (%d, %v)", sealed, err)
	}
	if !strings.Contains(label, gun) || !strings.Contains(label, "timestamp") {
		t.Errorf("label %q does not name the GUN and role", label)
	}
	k, err := tok.tok.Find(ctx, label, objectID)
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := tok.tok.Attributes(k, p11.CKA_SENSITIVE, p11.CKA_EXTRACTABLE, p11.CKA_ALWAYS_SENSITIVE, p11.CKA_NEVER_EXTRACTABLE, p11.CKA_TOKEN)
	if err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[crypto11.AttributeType]bool{
		p11.CKA_SENSITIVE: true, p11.CKA_EXTRACTABLE: false, p11.CKA_ALWAYS_SENSITIVE: true,
		p11.CKA_NEVER_EXTRACTABLE: true, p11.CKA_TOKEN: true,
	} {
		if attrs[typ] != want {
			t.Errorf("private key attribute %#x = %v, want %v", typ, attrs[typ], want)
		}
	}

	// Restart: close everything, open the token and the database again.
	db.Close()
	if err := tok.Close(); err != nil {
		t.Fatal(err)
	}
	tok = openToken(t, uri, pin)
	defer tok.Close()
	svc, db = openService(t, dbPath, tok, nil)
	defer db.Close()
	if err := signVerify(t, svc, gun, pub); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if err := signVerify(t, svc, gun, soft); err != nil {
		t.Fatalf("sealed key after restart: %v", err)
	}
}

// TestTokenKeyWithoutToken: a signer started without the token reports its
// token keys at start and refuses them clearly; a token key that is gone
// from the token is an error, not a panic.
func TestTokenKeyWithoutToken(t *testing.T) {
	uri, pin := softToken(t)
	ctx := t.Context()
	dbPath := filepath.Join(t.TempDir(), "signer.db")
	tok := openToken(t, uri, pin)
	svc, db := openService(t, dbPath, tok, nil)
	pub, err := svc.Create(ctx, gun, "timestamp", signer.AlgorithmECDSA)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	var logs bytes.Buffer
	svc2, db2 := openService(t, dbPath, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	defer db2.Close()
	if !strings.Contains(logs.String(), "no token configured") || !strings.Contains(logs.String(), "pkcs11:token=signet-signer") {
		t.Errorf("start without the token logs:\n%s", &logs)
	}
	if k, err := svc2.Key(ctx, gun, pub.ID()); err != nil || k.ID() != pub.ID() {
		t.Errorf("Key without the token: %v, %v (the public half is recorded)", k, err)
	}
	if err := signVerify(t, svc2, gun, pub); !errors.Is(err, signer.ErrTokenNotConfigured) {
		t.Errorf("Sign without the token: %v, want ErrTokenNotConfigured", err)
	}

	// The key deleted from the token behind the signer's back.
	var label string
	var objectID []byte
	raw, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.QueryRowContext(ctx, "SELECT label, object_id FROM token_keys").Scan(&label, &objectID); err != nil {
		t.Fatal(err)
	}
	k, err := tok.tok.Find(ctx, label, objectID)
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.tok.Delete(k); err != nil {
		t.Fatal(err)
	}
	svc3, db3 := openService(t, dbPath, tok, nil)
	defer db3.Close()
	if err := signVerify(t, svc3, gun, pub); !errors.Is(err, pkcs11.ErrKeyNotFound) {
		t.Errorf("Sign with the key gone from the token: %v, want ErrKeyNotFound", err)
	}
	tok.Close()
}

// TestOpenErrors: a missing token or module, a wrong PIN and a URI naming
// a key are refused with errors that say so.
func TestOpenErrors(t *testing.T) {
	uri, pin := softToken(t)
	for _, tt := range []struct {
		name string
		uri  pkcs11.URI
		pin  string
		is   error
		want string
	}{
		{"token missing", pkcs11.URI{ModulePath: uri.ModulePath, Token: "absent"}, pin, pkcs11.ErrTokenNotFound, `token "absent" is not present`},
		{"module missing", pkcs11.URI{ModulePath: "/nonexistent/libpkcs11.so", Token: uri.Token}, pin, pkcs11.ErrModule, "/nonexistent/libpkcs11.so"},
		{"wrong PIN", uri, "0000", pkcs11.ErrPINIncorrect, "PIN incorrect"},
		{"names a key", pkcs11.URI{ModulePath: uri.ModulePath, Token: uri.Token, Object: "k"}, pin, pkcs11.ErrInvalidURI, "not a key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tk, err := Open(t.Context(), tt.uri, tt.pin)
			if err == nil {
				tk.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open: %v; want %v saying %q", err, tt.is, tt.want)
			}
			if strings.Contains(err.Error(), pin) {
				t.Fatalf("the error shows the PIN: %v", err)
			}
		})
	}
}

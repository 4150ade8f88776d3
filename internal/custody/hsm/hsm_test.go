//go:build pkcs11

package hsm

import (
	"bytes"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/custody/custodiantest"
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

// openService opens signet-signer's service over dir with tok (nil for
// none) for new keys.
func openService(t *testing.T, dir string, tok *Token, log *slog.Logger) *signer.Service {
	t.Helper()
	opts := custody.Options{Passphrase: passphrase, Logger: log, InsecureAliasKDF: "scrypt-n1024-r8-p1"}
	if tok != nil { // a nil *Token must not become a non-nil interface
		opts.Token = tok
	}
	svc, err := signer.Open(t.Context(), dir, opts)
	if err != nil {
		t.Fatalf("signer.Open: %v", err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

func signVerify(t *testing.T, c custody.Custodian, gun string, pub *keys.PublicKey) error {
	t.Helper()
	return custodiantest.Sign(t.Context(), c, gun, pub)
}

// TestConformance runs custodiantest against signet-signer's service with
// new keys made in a real SoftHSM2 token.
func TestConformance(t *testing.T) {
	custodiantest.Run(t, func(t *testing.T) custodiantest.Subject {
		uri, pin := softToken(t)
		tok := openToken(t, uri, pin)
		t.Cleanup(func() { tok.Close() })
		dir := t.TempDir()
		return custodiantest.Subject{
			Custodian: openService(t, dir, tok, nil), Token: true,
			Restart: func(t *testing.T) custody.Custodian { return openService(t, dir, tok, nil) },
		}
	})
}

// tokenRecord reads where the database says a token key is.
func tokenRecord(t *testing.T, dir, id string) (label string, objectID, sealed []byte) {
	t.Helper()
	raw, err := sql.Open("sqlite", filepath.Join(dir, signer.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.QueryRowContext(t.Context(), "SELECT label, object_id, sealed FROM private_keys WHERE key_id = ?", id).Scan(&label, &objectID, &sealed); err != nil {
		t.Fatalf("token key record: %v", err)
	}
	return label, objectID, sealed
}

// TestTokenKeys: keys created through the custody core live in the token,
// are not extractable, sign (also concurrently), are listed beside sealed
// keys, keep working after the signer and the token session restart, and
// are destroyed in the token when deleted.
func TestTokenKeys(t *testing.T) {
	uri, pin := softToken(t)
	ctx := t.Context()
	dir := t.TempDir()

	// A software key made before the token was configured.
	svc := openService(t, dir, nil, nil)
	soft, err := svc.CreateKey(ctx, custody.Spec{GUN: gun, Role: "snapshot", Purpose: custody.PurposeSnapshot, Owner: custody.OwnerServer, Algorithm: custody.AlgorithmED25519})
	if err != nil {
		t.Fatal(err)
	}
	svc.Close()

	tok := openToken(t, uri, pin)
	if tok.Name() != "pkcs11:token=signet-signer" {
		t.Errorf("Name = %q", tok.Name())
	}
	svc = openService(t, dir, tok, nil)
	pub, err := svc.Create(ctx, gun, "timestamp")
	if err != nil {
		t.Fatalf("Create in token: %v", err)
	}
	if pub.Type() != keys.TypeECDSA {
		t.Fatalf("type %s", pub.Type())
	}
	for _, k := range []*keys.PublicKey{pub, soft.Public} {
		if err := signVerify(t, svc, gun, k); err != nil {
			t.Fatal(err)
		}
	}
	if k, err := svc.Key(ctx, pub.ID()); err != nil || k.Token != tok.Name() || k.Alias != "" {
		t.Fatalf("Key = %+v, %v", k, err)
	}
	if err := signVerify(t, svc, "example.com/other", pub); !errors.Is(err, keys.ErrKeyNotHeld) {
		t.Fatalf("sign for another GUN: %v", err)
	}

	// Concurrent signatures share the token's sessions.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() { errs <- signVerify(t, svc, gun, pub) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent sign: %v", err)
		}
	}

	// The private key object is sensitive and was never extractable; the
	// record holds nothing sealed.
	label, objectID, sealed := tokenRecord(t, dir, pub.ID())
	if len(sealed) != 0 {
		t.Fatalf("the token key also has a sealed private key (%d bytes)", len(sealed))
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
	svc.Close()
	if err := tok.Close(); err != nil {
		t.Fatal(err)
	}
	tok = openToken(t, uri, pin)
	defer tok.Close()
	svc = openService(t, dir, tok, nil)
	for _, k := range []*keys.PublicKey{pub, soft.Public} {
		if err := signVerify(t, svc, gun, k); err != nil {
			t.Fatalf("after restart: %v", err)
		}
	}

	// Delete: retired first, then gone from the token.
	if _, err := svc.RetireKey(ctx, pub.ID()); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteKey(ctx, pub.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := tok.tok.Find(ctx, label, objectID); !errors.Is(err, pkcs11.ErrKeyNotFound) {
		t.Fatalf("the deleted key is still in the token: %v", err)
	}
}

// TestTokenKeyWithoutToken: a signer started without the token reports its
// token keys at start and refuses them clearly; a token key that is gone
// from the token is an error, not a panic.
func TestTokenKeyWithoutToken(t *testing.T) {
	uri, pin := softToken(t)
	ctx := t.Context()
	dir := t.TempDir()
	tok := openToken(t, uri, pin)
	defer tok.Close()
	svc := openService(t, dir, tok, nil)
	pub, err := svc.Create(ctx, gun, "timestamp")
	if err != nil {
		t.Fatal(err)
	}
	svc.Close()

	var logs bytes.Buffer
	svc2 := openService(t, dir, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if !strings.Contains(logs.String(), "no token configured") || !strings.Contains(logs.String(), "pkcs11:token=signet-signer") {
		t.Errorf("start without the token logs:\n%s", &logs)
	}
	if k, err := svc2.Key(ctx, pub.ID()); err != nil || k.ID() != pub.ID() {
		t.Errorf("Key without the token: %v, %v (the public half is recorded)", k, err)
	}
	if err := signVerify(t, svc2, gun, pub); !errors.Is(err, custody.ErrTokenNotConfigured) {
		t.Errorf("sign without the token: %v, want ErrTokenNotConfigured", err)
	}
	svc2.Close()

	// The key deleted from the token behind the signer's back.
	label, objectID, _ := tokenRecord(t, dir, pub.ID())
	k, err := tok.tok.Find(ctx, label, objectID)
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.tok.Delete(k); err != nil {
		t.Fatal(err)
	}
	svc3 := openService(t, dir, tok, nil)
	if err := signVerify(t, svc3, gun, pub); !errors.Is(err, pkcs11.ErrKeyNotFound) || !errors.Is(err, custody.ErrNotHeld) {
		t.Errorf("sign with the key gone from the token: %v, want ErrKeyNotFound and ErrNotHeld", err)
	}
}

// legacySignerSchema is signet-signer's own schema as the release at
// de57e35 made it (PRAGMA user_version 2).
const legacySignerSchema = `
CREATE TABLE aliases (alias TEXT PRIMARY KEY, kdf TEXT NOT NULL, salt BLOB NOT NULL, check_value BLOB NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE keys (id TEXT PRIMARY KEY, gun TEXT NOT NULL, role TEXT NOT NULL, algorithm TEXT NOT NULL, public BLOB NOT NULL,
	alias TEXT NOT NULL REFERENCES aliases(alias), wrapped_dek BLOB NOT NULL, sealed BLOB NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX keys_gun_role ON keys (gun, role, created_at);
CREATE INDEX keys_alias ON keys (alias);
CREATE TABLE token_keys (id TEXT PRIMARY KEY, gun TEXT NOT NULL, role TEXT NOT NULL, algorithm TEXT NOT NULL, public BLOB NOT NULL,
	token TEXT NOT NULL, label TEXT NOT NULL, object_id BLOB NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX token_keys_gun_role ON token_keys (gun, role, created_at);
PRAGMA user_version = 2;
`

// TestReleaseTokenKeys: a key generated in a token by signet-signer of the
// release at de57e35 (recorded in its token_keys table, label format
// "signet-signer GUN ROLE <random>") signs after the database is taken
// over, from the same token.
func TestReleaseTokenKeys(t *testing.T) {
	uri, pin := softToken(t)
	ctx := t.Context()
	tok := openToken(t, uri, pin)
	defer tok.Close()
	k, err := tok.GenerateECDSA(ctx, "signet-signer "+gun+" timestamp 0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keys.FromCrypto(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	raw, err := sql.Open("sqlite", filepath.Join(dir, signer.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 12, 6, 5, 59, 0, 123456789, time.UTC)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{legacySignerSchema, nil},
		{"INSERT INTO token_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", []any{pub.ID(), gun, "timestamp", pub.Type(), pub.Public(), tok.Name(), k.Label(), k.ID(), created.UnixNano()}},
	} {
		if _, err := raw.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()

	svc := openService(t, dir, tok, nil)
	got, err := svc.Key(ctx, pub.ID())
	if err != nil {
		t.Fatal(err)
	}
	if got.GUN != gun || got.Role != "timestamp" || got.Purpose != custody.PurposeTimestamp || got.Owner != custody.OwnerServer ||
		got.Token != tok.Name() || !got.CreatedAt.Equal(created.Truncate(time.Microsecond)) {
		t.Fatalf("the release's token key after the takeover: %+v", got)
	}
	if err := signVerify(t, svc, gun, pub); err != nil {
		t.Fatalf("sign with the release's token key: %v", err)
	}
	if ks, err := svc.Keys(ctx, gun, "timestamp"); err != nil || len(ks) != 1 || ks[0].ID() != pub.ID() {
		t.Fatalf("Keys = %v, %v", ks, err)
	}
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

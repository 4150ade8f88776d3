package signer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
)

// fakeToken keeps software keys by label, standing in for a PKCS#11 token
// (the real one is tested in internal/signer/hsm with -tags pkcs11).
type fakeToken struct {
	mu   sync.Mutex
	keys map[string]*fakeKey
}

type fakeKey struct {
	*ecdsa.PrivateKey
	label string
	id    []byte
}

func (k *fakeKey) Label() string { return k.label }
func (k *fakeKey) ID() []byte    { return k.id }

func (f *fakeToken) Name() string { return "pkcs11:token=fake" }

func (f *fakeToken) GenerateECDSA(_ context.Context, label string) (TokenKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	k := &fakeKey{PrivateKey: priv, label: label, id: random(16)}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[label] = k
	return k, nil
}

func (f *fakeToken) Find(_ context.Context, label string, id []byte) (TokenKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k, ok := f.keys[label]; ok && string(k.id) == string(id) {
		return k, nil
	}
	return nil, errors.New("fake: no such key")
}

func (f *fakeToken) Delete(_ context.Context, k TokenKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.keys, k.Label())
	return nil
}

// TestTokenBackend: with a Token, new keys go into it (no passphrase
// needed), are recorded without private material, list and sign beside
// sealed keys, and a signer without the token refuses them clearly.
func TestTokenBackend(t *testing.T) {
	db, _ := openDB(t)
	ctx := t.Context()
	sealed := openService(t, db, "default", map[string]string{"default": "pw"})
	soft, err := sealed.Create(ctx, gun, "snapshot", AlgorithmECDSA)
	if err != nil {
		t.Fatal(err)
	}

	tok := &fakeToken{keys: map[string]*fakeKey{}}
	s, err := Open(ctx, db, Options{DefaultAlias: "other", Token: tok}) // no passphrase for "other"
	if err != nil {
		t.Fatalf("Open with a token and no passphrase: %v", err)
	}
	pub, err := s.Create(ctx, gun, "timestamp", AlgorithmECDSA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, gun, "timestamp", AlgorithmED25519); !errors.Is(err, ErrInvalid) {
		t.Errorf("ed25519 in a token: %v", err)
	}
	if len(tok.keys) != 1 {
		t.Fatalf("token holds %d keys", len(tok.keys))
	}
	if rec, ok, err := db.getTokenKey(ctx, pub.ID()); err != nil || !ok || rec.token != "pkcs11:token=fake" || rec.label == "" || len(rec.objectID) != 16 {
		t.Fatalf("token key record %+v, %v, %v", rec, ok, err)
	}
	if _, ok, _ := db.getKey(ctx, pub.ID()); ok {
		t.Fatal("a token key has a sealed record")
	}
	// A fresh service (nothing cached) finds it in the token.
	s, err = Open(ctx, db, Options{DefaultAlias: "default", Passphrase: passphrases(map[string]string{"default": "pw"}), Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct{ role, id string }{{"timestamp", pub.ID()}, {"snapshot", soft.ID()}} {
		if got, err := s.Keys(ctx, gun, k.role); err != nil || len(got) != 1 || got[0].ID() != k.id {
			t.Fatalf("Keys(%s) = %v, %v", k.role, got, err)
		}
	}
	if err := signVerify(t, s, gun, pub); err != nil {
		t.Fatal(err)
	}
	if err := signVerify(t, s, gun, soft); err != nil {
		t.Fatal(err)
	}
	if err := signVerify(t, s, "example.com/other", pub); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("another GUN: %v", err)
	}

	// Without the token: listed and described, not usable.
	s = openService(t, db, "default", map[string]string{"default": "pw"})
	if k, err := s.Key(ctx, gun, pub.ID()); err != nil || k.ID() != pub.ID() {
		t.Fatalf("Key without the token: %v, %v", k, err)
	}
	if err := signVerify(t, s, gun, pub); !errors.Is(err, ErrTokenNotConfigured) {
		t.Fatalf("Sign without the token: %v", err)
	}

	// A key swapped in the token for another is refused.
	for _, k := range tok.keys {
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		k.PrivateKey = other
	}
	s, err = Open(ctx, db, Options{DefaultAlias: "default", Passphrase: passphrases(map[string]string{"default": "pw"}), Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if err := signVerify(t, s, gun, pub); !errors.Is(err, ErrTampered) {
		t.Fatalf("Sign with a swapped token key: %v", err)
	}
}

// TestMigrateFromV1: a database of schema 1 (no token_keys) gains the
// table and keeps its keys.
func TestMigrateFromV1(t *testing.T) {
	db, path := openDB(t)
	ctx := t.Context()
	s := openService(t, db, "default", map[string]string{"default": "pw"})
	pub, err := s.Create(ctx, gun, "timestamp", AlgorithmECDSA)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TABLE token_keys", "PRAGMA user_version = 1"} {
		if _, err := db.db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db2, err := OpenDB(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	var v int
	if err := db2.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v != schemaVersion {
		t.Fatalf("user_version %d, %v", v, err)
	}
	s2 := openService(t, db2, "default", map[string]string{"default": "pw"})
	if got, err := s2.Keys(ctx, gun, "timestamp"); err != nil || len(got) != 1 || got[0].ID() != pub.ID() {
		t.Fatalf("Keys after migration = %v, %v", got, err)
	}
}

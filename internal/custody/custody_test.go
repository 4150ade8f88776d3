package custody_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

func openStore(t *testing.T) (*sqlstore.Store, string) {
	t.Helper()
	url := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	st, err := sqlstore.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, url
}

func TestCreateSignReopen(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []string{custody.AlgorithmECDSA, custody.AlgorithmED25519} {
		t.Run(alg, func(t *testing.T) {
			st, url := openStore(t)
			c, err := custody.Open(ctx, st, []byte("correct horse"), alg, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := c.Create(ctx, "example.com/a", "timestamp")
			if err != nil {
				t.Fatal(err)
			}
			if pub.Type() != alg {
				t.Fatalf("key type %s", pub.Type())
			}
			st.Close()
			st2, err := sqlstore.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer st2.Close()
			c2, err := custody.Open(ctx, st2, []byte("correct horse"), alg, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			held, err := c2.Keys(ctx, "example.com/a", "timestamp")
			if err != nil || len(held) != 1 || held[0].ID() != pub.ID() {
				t.Fatalf("Keys after reopen: %v %v", held, err)
			}
			s, err := c2.Signer(ctx, "example.com/a", pub.ID())
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte(`{"_type":"Timestamp"}`)
			method, sig, err := keys.Sign(s, msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Verify(method, msg, sig); err != nil {
				t.Fatalf("signature by reopened key: %v", err)
			}
			if _, err := c2.Signer(ctx, "example.com/a", "0000"); !errors.Is(err, custody.ErrNotHeld) {
				t.Errorf("unknown key: %v", err)
			}
			if _, err := c2.Signer(ctx, "example.com/other", pub.ID()); !errors.Is(err, custody.ErrNotHeld) {
				t.Errorf("key lent to another repository: %v", err)
			}
		})
	}
}

func TestWrongPassphrase(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	if _, err := custody.Open(ctx, st, []byte("first"), custody.AlgorithmECDSA, time.Now); err != nil {
		t.Fatal(err)
	}
	if _, err := custody.Open(ctx, st, []byte("second"), custody.AlgorithmECDSA, time.Now); !errors.Is(err, custody.ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := custody.Open(ctx, st, nil, custody.AlgorithmECDSA, time.Now); err == nil {
		t.Fatal("empty passphrase accepted")
	}
	if _, err := custody.Open(ctx, st, []byte("first"), "rsa", time.Now); err == nil {
		t.Fatal("rsa accepted")
	}
}

// tamperStore returns a key record altered by f, to check the seal.
type tamperStore struct {
	store.KeyStore
	f func(*store.KeyRecord)
}

func (s tamperStore) GetKey(ctx context.Context, id string) (store.KeyRecord, error) {
	r, err := s.KeyStore.GetKey(ctx, id)
	if err == nil {
		s.f(&r)
	}
	return r, err
}

func TestTamperedKeysRefused(t *testing.T) {
	ctx := context.Background()
	tests := map[string]func(*store.KeyRecord){
		"flipped byte":  func(r *store.KeyRecord) { r.Sealed[len(r.Sealed)/2] ^= 1 },
		"truncated":     func(r *store.KeyRecord) { r.Sealed = r.Sealed[:len(r.Sealed)-5] },
		"too short":     func(r *store.KeyRecord) { r.Sealed = r.Sealed[:4] },
		"moved to GUN":  func(r *store.KeyRecord) { r.GUN = "example.com/other" },
		"moved to role": func(r *store.KeyRecord) { r.Role = "snapshot" },
		"swapped ID": func(r *store.KeyRecord) {
			sum := sha256.Sum256([]byte(r.ID))
			r.ID = string(sum[:])
		},
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) {
			st, _ := openStore(t)
			c, err := custody.Open(ctx, st, []byte("pw"), custody.AlgorithmECDSA, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := c.Create(ctx, "example.com/a", "timestamp")
			if err != nil {
				t.Fatal(err)
			}
			// A fresh custodian (empty cache) over the tampering store.
			c2, err := custody.Open(ctx, tamperStore{st, f}, []byte("pw"), custody.AlgorithmECDSA, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			askGUN := "example.com/a"
			if name == "moved to GUN" { // ask as the record now claims, so only the seal can object
				askGUN = "example.com/other"
			}
			if _, err := c2.Signer(ctx, askGUN, pub.ID()); !errors.Is(err, custody.ErrTampered) {
				t.Fatalf("tampered key: %v, want ErrTampered", err)
			}
		})
	}
}

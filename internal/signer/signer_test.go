package signer

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/keys"
)

const gun = "example.com/app"

// passphrases returns an Options.Passphrase for a fixed set of aliases.
func passphrases(m map[string]string) func(string) []byte {
	return func(alias string) []byte {
		if p, ok := m[alias]; ok {
			return []byte(p)
		}
		return nil
	}
}

func openDB(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signer.db")
	db, err := OpenDB(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func openService(t *testing.T, db *DB, def string, pass map[string]string) *Service {
	t.Helper()
	s, err := Open(t.Context(), db, Options{DefaultAlias: def, Passphrase: passphrases(pass)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signVerify signs msg through keys.Sign with the service's signer for id
// and checks the signature with keys.Verify.
func signVerify(t *testing.T, s *Service, gun string, pub *keys.PublicKey) error {
	t.Helper()
	msg := []byte(`{"signed":"something"}`)
	method, sig, err := keys.Sign(serviceSigner{s: s, ctx: t.Context(), gun: gun, pub: pub}, msg)
	if err != nil {
		return err
	}
	if err := pub.Verify(method, msg, sig); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	return nil
}

// serviceSigner is a crypto.Signer over Service.Sign, as signerapi's client
// is over the wire.
type serviceSigner struct {
	s   *Service
	ctx context.Context
	gun string
	pub *keys.PublicKey
}

func (x serviceSigner) Public() crypto.PublicKey { return x.pub.CryptoKey() }
func (x serviceSigner) Sign(_ io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return x.s.Sign(x.ctx, x.gun, x.pub.ID(), d, o)
}

func TestCreateSignReopen(t *testing.T) {
	for _, alg := range []string{AlgorithmECDSA, AlgorithmED25519} {
		t.Run(alg, func(t *testing.T) {
			db, path := openDB(t)
			pass := map[string]string{"alpha": "correct horse"}
			s := openService(t, db, "alpha", pass)
			pub, err := s.Create(t.Context(), gun, "timestamp", alg)
			if err != nil {
				t.Fatal(err)
			}
			if pub.Type() != alg {
				t.Fatalf("type %s, want %s", pub.Type(), alg)
			}
			if err := signVerify(t, s, gun, pub); err != nil {
				t.Fatal(err)
			}
			db.Close()

			// A new process: nothing in memory, the key comes from the database.
			db2, err := OpenDB(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer db2.Close()
			s2 := openService(t, db2, "alpha", pass)
			held, err := s2.Keys(t.Context(), gun, "timestamp")
			if err != nil || len(held) != 1 || held[0].ID() != pub.ID() {
				t.Fatalf("Keys after reopen = %v, %v", held, err)
			}
			if k, err := s2.Key(t.Context(), gun, pub.ID()); err != nil || k.ID() != pub.ID() {
				t.Fatalf("Key = %v, %v", k, err)
			}
			if err := signVerify(t, s2, gun, pub); err != nil {
				t.Fatal(err)
			}
			// Another GUN never gets the key.
			if _, err := s2.Key(t.Context(), "example.com/other", pub.ID()); !errors.Is(err, keys.ErrKeyNotHeld) {
				t.Fatalf("Key for another GUN: %v", err)
			}
			if err := signVerify(t, s2, "example.com/other", pub); !errors.Is(err, keys.ErrKeyNotHeld) {
				t.Fatalf("Sign for another GUN: %v", err)
			}
			if _, err := s2.Key(t.Context(), gun, "0000"); !errors.Is(err, ErrNotHeld) {
				t.Fatalf("unknown key: %v", err)
			}
		})
	}
}

func TestSignRefusesWrongShape(t *testing.T) {
	db, _ := openDB(t)
	s := openService(t, db, "a", map[string]string{"a": "p"})
	ec, err := s.Create(t.Context(), gun, "timestamp", AlgorithmECDSA)
	if err != nil {
		t.Fatal(err)
	}
	ed, err := s.Create(t.Context(), gun, "snapshot", AlgorithmED25519)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("x"))
	for name, call := range map[string]func() error{
		"ecdsa without hash": func() error { _, err := s.Sign(t.Context(), gun, ec.ID(), d[:], crypto.Hash(0)); return err },
		"ecdsa short digest": func() error { _, err := s.Sign(t.Context(), gun, ec.ID(), d[:10], crypto.SHA256); return err },
		"ed25519 with hash":  func() error { _, err := s.Sign(t.Context(), gun, ed.ID(), d[:], crypto.SHA256); return err },
	} {
		if err := call(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := s.Create(t.Context(), gun, "timestamp", "rsa"); !errors.Is(err, ErrInvalid) {
		t.Errorf("create rsa: %v", err)
	}
	if _, err := s.Create(t.Context(), "bad\x00gun", "timestamp", AlgorithmECDSA); !errors.Is(err, ErrInvalid) {
		t.Errorf("create with NUL in GUN: %v", err)
	}
}

func TestKeysNewestFirst(t *testing.T) {
	db, _ := openDB(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(t.Context(), db, Options{DefaultAlias: "a", Passphrase: passphrases(map[string]string{"a": "p"}),
		Now: func() time.Time { now = now.Add(time.Second); return now }})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 3 {
		k, err := s.Create(t.Context(), gun, "timestamp", AlgorithmECDSA)
		if err != nil {
			t.Fatal(err)
		}
		ids = append([]string{k.ID()}, ids...)
	}
	got, err := s.Keys(t.Context(), gun, "timestamp")
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range got {
		if k.ID() != ids[i] {
			t.Fatalf("key %d = %s, want %s", i, k.ID(), ids[i])
		}
	}
	if other, _ := s.Keys(t.Context(), gun, "snapshot"); len(other) != 0 {
		t.Fatalf("snapshot keys: %v", other)
	}
}

func TestPassphrases(t *testing.T) {
	db, path := openDB(t)
	s := openService(t, db, "alpha", map[string]string{"alpha": "one"})
	pub, err := s.Create(t.Context(), gun, "timestamp", AlgorithmECDSA)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("wrong passphrase refused at open", func(t *testing.T) {
		_, err := Open(t.Context(), db, Options{DefaultAlias: "alpha", Passphrase: passphrases(map[string]string{"alpha": "two"})})
		if !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("Open: %v", err)
		}
		// Also for an alias in use that is not the default.
		_, err = Open(t.Context(), db, Options{DefaultAlias: "beta", Passphrase: passphrases(map[string]string{"alpha": "two", "beta": "b"})})
		if !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("Open with a wrong passphrase for a non-default alias: %v", err)
		}
	})
	t.Run("default alias needs a passphrase", func(t *testing.T) {
		_, err := Open(t.Context(), db, Options{DefaultAlias: "gamma"})
		if !errors.Is(err, ErrNoPassphrase) {
			t.Fatalf("Open: %v", err)
		}
		if _, err := Open(t.Context(), db, Options{DefaultAlias: "Bad-Alias"}); err == nil {
			t.Fatal("an invalid alias name was accepted")
		}
	})
	t.Run("several aliases coexist", func(t *testing.T) {
		s2 := openService(t, db, "beta", map[string]string{"alpha": "one", "beta": "two"})
		pub2, err := s2.Create(t.Context(), gun, "snapshot", AlgorithmED25519)
		if err != nil {
			t.Fatal(err)
		}
		// A fresh process holding both passphrases signs with both keys.
		db3, err := OpenDB(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer db3.Close()
		s3 := openService(t, db3, "beta", map[string]string{"alpha": "one", "beta": "two"})
		for _, k := range []*keys.PublicKey{pub, pub2} {
			if err := signVerify(t, s3, gun, k); err != nil {
				t.Fatal(err)
			}
		}
		// One without alpha's passphrase starts, signs with beta's key and
		// refuses alpha's with a clear error.
		s4 := openService(t, db3, "beta", map[string]string{"beta": "two"})
		if err := signVerify(t, s4, gun, pub2); err != nil {
			t.Fatal(err)
		}
		if err := signVerify(t, s4, gun, pub); !errors.Is(err, ErrNoPassphrase) {
			t.Fatalf("sign under an unconfigured alias: %v", err)
		}
	})
}

func TestRekey(t *testing.T) {
	db, path := openDB(t)
	old := map[string]string{"old": "old pass"}
	s := openService(t, db, "old", old)
	var pubs []*keys.PublicKey
	for i := range 5 {
		alg := AlgorithmECDSA
		if i%2 == 1 {
			alg = AlgorithmED25519
		}
		k, err := s.Create(t.Context(), gun, "timestamp", alg)
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, k)
	}
	readSealed := func() map[string][]byte {
		m := map[string][]byte{}
		rows, err := db.db.Query("SELECT id, sealed FROM keys")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var b []byte
			if err := rows.Scan(&id, &b); err != nil {
				t.Fatal(err)
			}
			m[id] = b
		}
		return m
	}
	before := readSealed()

	// The serving signer (s) holds both aliases, as an operator sets up
	// before a rekey; the rekey runs as another process on the same file.
	both := map[string]string{"old": "old pass", "new": "new pass"}
	serving := openService(t, db, "old", both)
	db2, err := OpenDB(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	rekeyer := openService(t, db2, "old", both)

	// Signing goes on while the rekey runs.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 1)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := signVerify(t, serving, gun, pubs[i%len(pubs)]); err != nil {
				select {
				case errs <- err:
				default:
				}
				return
			}
		}
	})
	rep, err := rekeyer.Rekey(t.Context(), "new")
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		t.Fatalf("signing during rekey: %v", err)
	default:
	}
	if rep.Rewrapped != len(pubs) {
		t.Fatalf("rewrapped %d, want %d", rep.Rewrapped, len(pubs))
	}
	// Only wrapped data keys changed.
	after := readSealed()
	for id, b := range before {
		if string(after[id]) != string(b) {
			t.Fatalf("rekey changed the sealed private key of %s", id)
		}
	}
	// Idempotent.
	if rep, err := rekeyer.Rekey(t.Context(), "new"); err != nil || rep.Rewrapped != 0 {
		t.Fatalf("second rekey: %+v, %v", rep, err)
	}
	// A process holding only the new passphrase signs with every key.
	fresh := openService(t, db2, "new", map[string]string{"new": "new pass"})
	for _, k := range pubs {
		if err := signVerify(t, fresh, gun, k); err != nil {
			t.Fatalf("after rekey: %v", err)
		}
	}
	// The old passphrase alone opens nothing.
	onlyOld := openService(t, db2, "old", old)
	if err := signVerify(t, onlyOld, gun, pubs[0]); !errors.Is(err, ErrNoPassphrase) {
		t.Fatalf("old passphrase after rekey: %v", err)
	}
}

func TestRekeyReportsKeysItCannotOpen(t *testing.T) {
	db, _ := openDB(t)
	a := openService(t, db, "a", map[string]string{"a": "pa"})
	ka, err := a.Create(t.Context(), gun, "timestamp", AlgorithmECDSA)
	if err != nil {
		t.Fatal(err)
	}
	b := openService(t, db, "b", map[string]string{"b": "pb"})
	if _, err := b.Create(t.Context(), gun, "snapshot", AlgorithmECDSA); err != nil {
		t.Fatal(err)
	}
	// Knows b and c, not a: b's key moves, a's is reported and left alone.
	r := openService(t, db, "b", map[string]string{"b": "pb", "c": "pc"})
	rep, err := r.Rekey(t.Context(), "c")
	if !errors.Is(err, ErrNoPassphrase) || rep.Rewrapped != 1 || len(rep.Failed) != 1 {
		t.Fatalf("Rekey = %+v, %v", rep, err)
	}
	if err := signVerify(t, a, gun, ka); err != nil {
		t.Fatalf("key under a after a failed rekey: %v", err)
	}
}

func TestTamperRefused(t *testing.T) {
	pass := map[string]string{"a": "pa"}
	cases := []struct {
		name string
		sql  string // applied to the first key (?1) using the second (?2)
	}{
		{"sealed key bit flipped", "UPDATE keys SET sealed = substr(sealed, 1, 20) || X'00' || substr(sealed, 22) WHERE id = ?1"},
		{"sealed key truncated", "UPDATE keys SET sealed = substr(sealed, 1, length(sealed) - 1) WHERE id = ?1"},
		{"sealed key empty", "UPDATE keys SET sealed = X'' WHERE id = ?1"},
		{"wrapped data key truncated", "UPDATE keys SET wrapped_dek = substr(wrapped_dek, 1, 30) WHERE id = ?1"},
		{"wrapped data key bit flipped", "UPDATE keys SET wrapped_dek = X'00' || substr(wrapped_dek, 2) WHERE id = ?1"},
		{"sealed key moved from another key", "UPDATE keys SET sealed = (SELECT sealed FROM keys WHERE id = ?2) WHERE id = ?1"},
		{"both blobs moved from another key", "UPDATE keys SET sealed = (SELECT sealed FROM keys WHERE id = ?2), wrapped_dek = (SELECT wrapped_dek FROM keys WHERE id = ?2) WHERE id = ?1"},
		{"role changed", "UPDATE keys SET role = 'snapshot' WHERE id = ?1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db, _ := openDB(t)
			s := openService(t, db, "a", pass)
			k1, err := s.Create(t.Context(), gun, "timestamp", AlgorithmECDSA)
			if err != nil {
				t.Fatal(err)
			}
			k2, err := s.Create(t.Context(), gun, "timestamp", AlgorithmECDSA)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.db.Exec(c.sql, k1.ID(), k2.ID()); err != nil {
				t.Fatal(err)
			}
			fresh := openService(t, db, "a", pass) // nothing cached
			if err := signVerify(t, fresh, gun, k1); !errors.Is(err, ErrTampered) {
				t.Fatalf("sign with a tampered key: %v, want ErrTampered", err)
			}
			if err := signVerify(t, fresh, gun, k2); err != nil {
				t.Fatalf("the untouched key: %v", err)
			}
		})
	}
	t.Run("gun changed", func(t *testing.T) {
		db, _ := openDB(t)
		s := openService(t, db, "a", pass)
		k, err := s.Create(t.Context(), gun, "timestamp", AlgorithmECDSA)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.db.Exec("UPDATE keys SET gun = 'example.com/evil' WHERE id = ?", k.ID()); err != nil {
			t.Fatal(err)
		}
		fresh := openService(t, db, "a", pass)
		if err := signVerify(t, fresh, "example.com/evil", k); !errors.Is(err, ErrTampered) {
			t.Fatalf("sign for the GUN written into the record: %v, want ErrTampered", err)
		}
	})
	t.Run("check value altered", func(t *testing.T) {
		db, _ := openDB(t)
		openService(t, db, "a", pass)
		if _, err := db.db.Exec("UPDATE aliases SET check_value = X'00' || substr(check_value, 2)"); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(t.Context(), db, Options{DefaultAlias: "a", Passphrase: passphrases(pass)}); !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("Open: %v", err)
		}
	})
}

func TestMain(m *testing.M) {
	// Aliases made by tests derive their keys cheaply; TestKDFDefault
	// checks the real cost.
	newAliasKDF = "scrypt-n1024-r8-p1"
	os.Exit(m.Run())
}

func TestKDFDefault(t *testing.T) {
	if kdfScrypt != "scrypt-n32768-r8-p1" {
		t.Fatalf("default KDF %s", kdfScrypt)
	}
	if _, err := deriveKEK([]byte("p"), make([]byte, saltSize), kdfScrypt); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"scrypt-n16-r8-p1", "pbkdf2", "scrypt-n32768-r8-p1x", "scrypt-n032768-r8-p1"} {
		if _, err := deriveKEK([]byte("p"), make([]byte, saltSize), bad); err == nil {
			t.Errorf("kdf %q accepted", bad)
		}
	}
}

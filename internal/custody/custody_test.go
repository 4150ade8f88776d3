package custody_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/custody/custodiantest"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

const (
	gun = "example.com/app"
	// cheapKDF makes the aliases tests create quick to derive.
	cheapKDF = "scrypt-n1024-r8-p1"
)

// passphrases returns an Options.Passphrase for a fixed set of aliases.
func passphrases(m map[string]string) func(string) []byte {
	return func(alias string) []byte {
		if p, ok := m[alias]; ok {
			return []byte(p)
		}
		return nil
	}
}

// sqliteStore opens a new SQLite store in a file and returns it and the
// file's path.
func sqliteStore(t *testing.T) (*sqlstore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signet.db")
	return openStore(t, "sqlite:"+path), path
}

func openStore(t *testing.T, url string) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func open(t *testing.T, st custody.Storage, opts custody.Options) *custody.Core {
	t.Helper()
	if opts.InsecureAliasKDF == "" {
		opts.InsecureAliasKDF = cheapKDF
	}
	c, err := custody.New(t.Context(), st, opts)
	if err != nil {
		t.Fatalf("custody.New: %v", err)
	}
	return c
}

func openAlias(t *testing.T, st custody.Storage, def string, pass map[string]string) *custody.Core {
	t.Helper()
	return open(t, st, custody.Options{DefaultAlias: def, Passphrase: passphrases(pass)})
}

// rawDB opens the SQLite file at path beside the store, for tampering.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func signVerify(t *testing.T, c custody.Custodian, gun string, pub *keys.PublicKey) error {
	t.Helper()
	return custodiantest.Sign(t.Context(), c, gun, pub)
}

func required(component string) bool {
	for _, f := range strings.FieldsFunc(os.Getenv("SIGNET_TEST_REQUIRE"), func(r rune) bool { return r == ',' || r == ' ' }) {
		if f == "all" || f == component {
			return true
		}
	}
	return false
}

// postgresURL returns the URL of a new, empty schema on the PostgreSQL
// server of SIGNET_TEST_POSTGRES_URL (dropped after the test). Without
// that variable the test is skipped, or fails under SIGNET_TEST_REQUIRE.
func postgresURL(t *testing.T) string {
	t.Helper()
	admin := os.Getenv("SIGNET_TEST_POSTGRES_URL")
	if admin == "" {
		if required("postgres") {
			t.Fatal("SIGNET_TEST_REQUIRE asks for PostgreSQL but SIGNET_TEST_POSTGRES_URL is not set")
		}
		t.Skip("SIGNET_TEST_POSTGRES_URL not set")
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := make([]byte, 6)
	rand.Read(b)
	name := "custody_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(t.Context(), "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			t.Error(err)
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestConformance runs custodiantest against the embedded core on SQLite,
// on PostgreSQL and with a PKCS#11 token (a software stand-in; the real
// one is tested in custody/hsm with -tags pkcs11).
func TestConformance(t *testing.T) {
	pass := map[string]string{"default": "correct horse"}
	core := func(t *testing.T, url string, tok custody.Token) custody.Custodian {
		opts := custody.Options{Passphrase: passphrases(pass)}
		if tok != nil {
			opts.Token = tok
		}
		return open(t, openStore(t, url), opts)
	}
	subject := func(url func(t *testing.T) string, token bool) func(t *testing.T) custodiantest.Subject {
		return func(t *testing.T) custodiantest.Subject {
			u := url(t)
			var tok custody.Token
			if token {
				tok = newFakeToken()
			}
			return custodiantest.Subject{
				Custodian: core(t, u, tok), Token: token,
				Restart: func(t *testing.T) custody.Custodian { return core(t, u, tok) },
			}
		}
	}
	sqliteFile := func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "signet.db") }
	t.Run("SQLite", func(t *testing.T) { custodiantest.Run(t, subject(sqliteFile, false)) })
	t.Run("PostgreSQL", func(t *testing.T) { custodiantest.Run(t, subject(postgresURL, false)) })
	t.Run("Token", func(t *testing.T) { custodiantest.Run(t, subject(sqliteFile, true)) })
}

func TestOpenOptions(t *testing.T) {
	st, _ := sqliteStore(t)
	for _, tc := range []struct {
		name string
		opts custody.Options
		want string
	}{
		{"bad alias", custody.Options{DefaultAlias: "Prod-1", Passphrase: passphrases(map[string]string{"Prod-1": "p"})}, `default alias "Prod-1"`},
		{"rsa", custody.Options{Algorithm: "rsa", Passphrase: passphrases(map[string]string{"default": "p"})}, `"rsa"`},
		{"weak KDF", custody.Options{InsecureAliasKDF: "scrypt-n16-r8-p1", Passphrase: passphrases(map[string]string{"default": "p"})}, "scrypt-n16-r8-p1"},
		{"no passphrase", custody.Options{}, `no passphrase configured for alias "default"`},
	} {
		if _, err := custody.New(t.Context(), st, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New: %v, want an error saying %s", tc.name, err, tc.want)
		}
	}
	if ok, err := custody.Initialized(t.Context(), st); err != nil || ok {
		t.Fatalf("refused opens initialized the store: %v, %v", ok, err)
	}
	if _, err := custody.Open(t.Context(), st, nil, custody.AlgorithmECDSA, time.Now); err == nil {
		t.Fatal("custody.Open with an empty passphrase succeeded")
	}
}

func TestPassphrases(t *testing.T) {
	t.Run("wrong passphrase refused at open", func(t *testing.T) {
		st, _ := sqliteStore(t)
		s := openAlias(t, st, "a", map[string]string{"a": "right"})
		if _, err := s.Create(t.Context(), gun, "timestamp"); err != nil {
			t.Fatal(err)
		}
		_, err := custody.New(t.Context(), st, custody.Options{DefaultAlias: "a", Passphrase: passphrases(map[string]string{"a": "wrong"})})
		if !errors.Is(err, custody.ErrWrongPassphrase) || !strings.Contains(err.Error(), `"a"`) {
			t.Fatalf("New with a wrong passphrase: %v", err)
		}
	})
	t.Run("several aliases coexist", func(t *testing.T) {
		st, _ := sqliteStore(t)
		a := openAlias(t, st, "a", map[string]string{"a": "pa"})
		ka, err := a.Create(t.Context(), gun, "timestamp")
		if err != nil {
			t.Fatal(err)
		}
		b := openAlias(t, st, "b", map[string]string{"a": "pa", "b": "pb"})
		kb, err := b.Create(t.Context(), gun, "snapshot")
		if err != nil {
			t.Fatal(err)
		}
		both := openAlias(t, st, "b", map[string]string{"a": "pa", "b": "pb"})
		for _, k := range []*keys.PublicKey{ka, kb} {
			if err := signVerify(t, both, gun, k); err != nil {
				t.Fatal(err)
			}
		}
		// Only b's passphrase: a is logged at start, its keys refused by name.
		var logs bytes.Buffer
		onlyB := open(t, st, custody.Options{DefaultAlias: "b", Passphrase: passphrases(map[string]string{"b": "pb"}),
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if !strings.Contains(logs.String(), "alias=a") {
			t.Errorf("start without a's passphrase logs:\n%s", &logs)
		}
		if err := signVerify(t, onlyB, gun, ka); !errors.Is(err, custody.ErrNoPassphrase) {
			t.Fatalf("sign under an unconfigured alias: %v", err)
		}
		if err := signVerify(t, onlyB, gun, kb); err != nil {
			t.Fatal(err)
		}
	})
}

// readSealed returns every key's sealed private key, by ID.
func readSealed(t *testing.T, db *sql.DB) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	rows, err := db.QueryContext(t.Context(), "SELECT key_id, sealed FROM private_keys")
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

func TestRekey(t *testing.T) {
	st, path := sqliteStore(t)
	old := map[string]string{"old": "old pass"}
	s := openAlias(t, st, "old", old)
	var pubs []*keys.PublicKey
	for i := range 5 {
		spec := custody.Spec{GUN: gun, Role: "timestamp", Purpose: custody.PurposeTimestamp, Owner: custody.OwnerServer, Algorithm: custody.AlgorithmECDSA}
		if i%2 == 1 {
			spec.Algorithm = custody.AlgorithmED25519
		}
		k, err := s.CreateKey(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, k.Public)
	}
	before := readSealed(t, rawDB(t, path))

	// The serving core holds both aliases, as an operator sets up before a
	// rekey; the rekey runs as another process on the same file.
	both := map[string]string{"old": "old pass", "new": "new pass"}
	serving := openAlias(t, st, "old", both)
	rekeyer := openAlias(t, openStore(t, "sqlite:"+path), "old", both)

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
				errs <- err
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
	after := readSealed(t, rawDB(t, path))
	for id, b := range before {
		if !bytes.Equal(after[id], b) {
			t.Fatalf("rekey changed the sealed private key of %s", id)
		}
	}
	// Idempotent.
	if rep, err := rekeyer.Rekey(t.Context(), "new"); err != nil || rep.Rewrapped != 0 {
		t.Fatalf("second rekey: %+v, %v", rep, err)
	}
	// A process holding only the new passphrase signs with every key.
	fresh := openAlias(t, st, "new", map[string]string{"new": "new pass"})
	for _, k := range pubs {
		if err := signVerify(t, fresh, gun, k); err != nil {
			t.Fatalf("after rekey: %v", err)
		}
		if got, err := fresh.Key(t.Context(), k.ID()); err != nil || got.Alias != "new" {
			t.Fatalf("Key after rekey: alias %q, %v", got.Alias, err)
		}
	}
	// The old passphrase alone opens nothing.
	onlyOld := openAlias(t, st, "old", old)
	if err := signVerify(t, onlyOld, gun, pubs[0]); !errors.Is(err, custody.ErrNoPassphrase) {
		t.Fatalf("old passphrase after rekey: %v", err)
	}
	if _, err := rekeyer.Rekey(t.Context(), "Not-Valid"); err == nil {
		t.Fatal("rekey to an invalid alias name succeeded")
	}
}

func TestRekeyReportsKeysItCannotOpen(t *testing.T) {
	st, _ := sqliteStore(t)
	a := openAlias(t, st, "a", map[string]string{"a": "pa"})
	ka, err := a.Create(t.Context(), gun, "timestamp")
	if err != nil {
		t.Fatal(err)
	}
	b := openAlias(t, st, "b", map[string]string{"b": "pb"})
	if _, err := b.Create(t.Context(), gun, "snapshot"); err != nil {
		t.Fatal(err)
	}
	// Knows b and c, not a: b's key moves, a's is reported and left alone.
	r := openAlias(t, st, "b", map[string]string{"b": "pb", "c": "pc"})
	rep, err := r.Rekey(t.Context(), "c")
	if !errors.Is(err, custody.ErrNoPassphrase) || rep.Rewrapped != 1 || len(rep.Failed) != 1 {
		t.Fatalf("Rekey = %+v, %v", rep, err)
	}
	if err := signVerify(t, openAlias(t, st, "a", map[string]string{"a": "pa"}), gun, ka); err != nil {
		t.Fatalf("key under a after a failed rekey: %v", err)
	}
}

// flipped is SQL for a byte other than the one-byte blob b (a fixed
// replacement byte would equal the original one time in 256).
func flipped(b string) string {
	return "CASE WHEN " + b + " = X'00' THEN X'01' ELSE X'00' END"
}

func TestTamperRefused(t *testing.T) {
	pass := map[string]string{"a": "pa"}
	cases := []struct {
		name string
		sql  string // applied to the first key (?1) using the second (?2)
		gun  string // the GUN to ask for (the record's, if it was changed)
	}{
		{"sealed key bit flipped", "UPDATE private_keys SET sealed = substr(sealed, 1, 20) || " + flipped("substr(sealed, 21, 1)") + " || substr(sealed, 22) WHERE key_id = ?1", gun},
		{"sealed key truncated", "UPDATE private_keys SET sealed = substr(sealed, 1, length(sealed) - 1) WHERE key_id = ?1", gun},
		{"sealed key empty", "UPDATE private_keys SET sealed = X'' WHERE key_id = ?1", gun},
		{"wrapped data key truncated", "UPDATE private_keys SET wrapped_dek = substr(wrapped_dek, 1, 30) WHERE key_id = ?1", gun},
		{"wrapped data key bit flipped", "UPDATE private_keys SET wrapped_dek = " + flipped("substr(wrapped_dek, 1, 1)") + " || substr(wrapped_dek, 2) WHERE key_id = ?1", gun},
		{"sealed key moved from another key", "UPDATE private_keys SET sealed = (SELECT sealed FROM private_keys WHERE key_id = ?2) WHERE key_id = ?1", gun},
		{"both blobs moved from another key", "UPDATE private_keys SET sealed = (SELECT sealed FROM private_keys WHERE key_id = ?2), wrapped_dek = (SELECT wrapped_dek FROM private_keys WHERE key_id = ?2) WHERE key_id = ?1", gun},
		{"role changed", "UPDATE private_keys SET role = 'snapshot' WHERE key_id = ?1", gun},
		{"purpose changed", "UPDATE private_keys SET purpose = 'delegation' WHERE key_id = ?1", gun},
		{"owner changed", "UPDATE private_keys SET owner = 'project:evil' WHERE key_id = ?1", gun},
		{"format lowered", "UPDATE private_keys SET format = 1 WHERE key_id = ?1", gun},
		{"gun changed", "UPDATE private_keys SET gun = 'example.com/evil' WHERE key_id = ?1", "example.com/evil"},
		{"public key swapped", "UPDATE private_keys SET public = (SELECT public FROM private_keys WHERE key_id = ?2) WHERE key_id = ?1", gun},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, path := sqliteStore(t)
			s := openAlias(t, st, "a", pass)
			k1, err := s.Create(t.Context(), gun, "timestamp")
			if err != nil {
				t.Fatal(err)
			}
			k2, err := s.Create(t.Context(), gun, "timestamp")
			if err != nil {
				t.Fatal(err)
			}
			exec(t, rawDB(t, path), c.sql, k1.ID(), k2.ID())
			fresh := openAlias(t, st, "a", pass) // nothing cached
			if err := signVerify(t, fresh, c.gun, k1); !errors.Is(err, custody.ErrTampered) {
				t.Fatalf("sign with a tampered key: %v, want ErrTampered", err)
			}
			if err := signVerify(t, fresh, gun, k2); err != nil {
				t.Fatalf("the untouched key: %v", err)
			}
		})
	}
	t.Run("check value altered", func(t *testing.T) {
		st, path := sqliteStore(t)
		openAlias(t, st, "a", pass)
		exec(t, rawDB(t, path), "UPDATE key_aliases SET check_value = "+flipped("substr(check_value, 1, 1)")+" || substr(check_value, 2)")
		if _, err := custody.New(t.Context(), st, custody.Options{DefaultAlias: "a", Passphrase: passphrases(pass)}); !errors.Is(err, custody.ErrWrongPassphrase) {
			t.Fatalf("New: %v", err)
		}
	})
	t.Run("changed while held in memory", func(t *testing.T) {
		// A record changed under a running core is read again after
		// RecheckAfter, and checked as a new load would be.
		st, path := sqliteStore(t)
		now := time.Now()
		clock := func() time.Time { return now }
		s := open(t, st, custody.Options{DefaultAlias: "a", Passphrase: passphrases(pass), Now: clock, RecheckAfter: time.Minute})
		k, err := s.Create(t.Context(), gun, "timestamp")
		if err != nil {
			t.Fatal(err)
		}
		exec(t, rawDB(t, path), "UPDATE private_keys SET owner = 'project:evil' WHERE key_id = ?", k.ID())
		if err := signVerify(t, s, gun, k); err != nil {
			t.Fatalf("within RecheckAfter the key in memory signs: %v", err)
		}
		now = now.Add(2 * time.Minute)
		if err := signVerify(t, s, gun, k); !errors.Is(err, custody.ErrTampered) {
			t.Fatalf("after RecheckAfter: %v, want ErrTampered", err)
		}
	})
}

// TestRetiredElsewhere: a key retired by another process stops signing
// here once RecheckAfter has passed.
func TestRetiredElsewhere(t *testing.T) {
	st, path := sqliteStore(t)
	now := time.Now()
	clock := func() time.Time { return now }
	pass := passphrases(map[string]string{"default": "p"})
	serving := open(t, st, custody.Options{Passphrase: pass, Now: clock, RecheckAfter: time.Minute})
	k, err := serving.Create(t.Context(), gun, "timestamp")
	if err != nil {
		t.Fatal(err)
	}
	other := open(t, openStore(t, "sqlite:"+path), custody.Options{Passphrase: pass})
	if _, err := other.RetireKey(t.Context(), k.ID()); err != nil {
		t.Fatal(err)
	}
	if err := signVerify(t, serving, gun, k); err != nil {
		t.Fatalf("within RecheckAfter: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if err := signVerify(t, serving, gun, k); !errors.Is(err, custody.ErrRetired) {
		t.Fatalf("after RecheckAfter: %v, want ErrRetired", err)
	}
}

// fakeToken keeps software keys by label, standing in for a PKCS#11 token
// (the real one is tested in custody/hsm with -tags pkcs11).
type fakeToken struct {
	name string
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

func newFakeToken() *fakeToken {
	return &fakeToken{name: "pkcs11:token=fake", keys: map[string]*fakeKey{}}
}

func (f *fakeToken) Name() string { return f.name }

func (f *fakeToken) GenerateECDSA(_ context.Context, label string) (custody.TokenKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 16)
	rand.Read(id)
	k := &fakeKey{PrivateKey: priv, label: label, id: id}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[label] = k
	return k, nil
}

func (f *fakeToken) Find(_ context.Context, label string, id []byte) (custody.TokenKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k, ok := f.keys[label]; ok && bytes.Equal(k.id, id) {
		return k, nil
	}
	return nil, fmt.Errorf("%w: fake: no key %q", custody.ErrNotHeld, label)
}

func (f *fakeToken) Delete(_ context.Context, k custody.TokenKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.keys, k.Label())
	return nil
}

// TestTokenBackend: with a Token, new keys go into it (no passphrase
// needed), are recorded without private material, list and sign beside
// sealed keys, and a core without the token refuses them clearly.
func TestTokenBackend(t *testing.T) {
	st, path := sqliteStore(t)
	ctx := t.Context()
	pw := map[string]string{"default": "pw"}
	sealedCore := openAlias(t, st, "default", pw)
	soft, err := sealedCore.Create(ctx, gun, "snapshot")
	if err != nil {
		t.Fatal(err)
	}

	tok := newFakeToken()
	s := open(t, st, custody.Options{DefaultAlias: "other", Token: tok}) // no passphrase for "other"
	pub, err := s.Create(ctx, gun, "timestamp")
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.keys) != 1 {
		t.Fatalf("token holds %d keys", len(tok.keys))
	}
	var label string
	var objectID, sealed, wrapped []byte
	if err := rawDB(t, path).QueryRowContext(ctx, "SELECT label, object_id, sealed, wrapped_dek FROM private_keys WHERE key_id = ?", pub.ID()).
		Scan(&label, &objectID, &sealed, &wrapped); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(label, gun) || !strings.Contains(label, "timestamp") || len(objectID) != 16 || len(sealed) != 0 || len(wrapped) != 0 {
		t.Fatalf("token key record: label %q, object ID %x, sealed %x, wrapped %x", label, objectID, sealed, wrapped)
	}
	// Importing needs the default alias's passphrase: imports are sealed.
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := s.ImportKey(ctx, custody.Spec{Purpose: custody.PurposeCosign, Owner: custody.OwnerServer}, priv); !errors.Is(err, custody.ErrNoPassphrase) {
		t.Fatalf("import without a passphrase: %v", err)
	}

	// A fresh core (nothing cached) finds it in the token.
	s = open(t, st, custody.Options{Passphrase: passphrases(pw), Token: tok})
	for _, k := range []struct{ role, id string }{{"timestamp", pub.ID()}, {"snapshot", soft.ID()}} {
		if got, err := s.Keys(ctx, gun, k.role); err != nil || len(got) != 1 || got[0].ID() != k.id {
			t.Fatalf("Keys(%s) = %v, %v", k.role, got, err)
		}
	}
	for _, k := range []*keys.PublicKey{pub, soft} {
		if err := signVerify(t, s, gun, k); err != nil {
			t.Fatal(err)
		}
	}

	// Without the token: listed and described, not usable.
	s = openAlias(t, st, "default", pw)
	if k, err := s.Key(ctx, pub.ID()); err != nil || k.ID() != pub.ID() || k.Token != "pkcs11:token=fake" {
		t.Fatalf("Key without the token: %+v, %v", k, err)
	}
	if err := signVerify(t, s, gun, pub); !errors.Is(err, custody.ErrTokenNotConfigured) {
		t.Fatalf("sign without the token: %v", err)
	}
	// Another token than the one recorded: refused by name.
	other := newFakeToken()
	other.name = "pkcs11:token=other"
	s = open(t, st, custody.Options{Passphrase: passphrases(pw), Token: other})
	if err := signVerify(t, s, gun, pub); !errors.Is(err, custody.ErrTokenNotConfigured) {
		t.Fatalf("sign from another token: %v", err)
	}

	// A key swapped in the token for another is refused.
	for _, k := range tok.keys {
		k.PrivateKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	s = open(t, st, custody.Options{Passphrase: passphrases(pw), Token: tok})
	if err := signVerify(t, s, gun, pub); !errors.Is(err, custody.ErrTampered) {
		t.Fatalf("sign with a swapped token key: %v", err)
	}
	// Deleting a token key destroys it in the token too; one already gone
	// from the token is deleted all the same.
	if _, err := s.RetireKey(ctx, pub.ID()); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteKey(ctx, pub.ID()); !errors.Is(err, custody.ErrTampered) {
		t.Fatalf("delete of a swapped token key: %v, want ErrTampered (the wrong object is not destroyed)", err)
	}
	tok.keys = map[string]*fakeKey{}
	if err := s.DeleteKey(ctx, pub.ID()); err != nil {
		t.Fatalf("delete of a key gone from the token: %v", err)
	}
	k2, err := s.Create(ctx, gun, "timestamp")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RetireKey(ctx, k2.ID()); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteKey(ctx, k2.ID()); err != nil || len(tok.keys) != 0 {
		t.Fatalf("delete: %v; the token holds %d keys", err, len(tok.keys))
	}
}

// TestTokenAuditCheckpointKey: a token makes ECDSA keys only, and the
// audit log's checkpoint key must be Ed25519 (signed notes): with a token
// configured that one key is sealed under the default alias, and only
// when its passphrase is there; no other Ed25519 key leaves the token's
// rule.
func TestTokenAuditCheckpointKey(t *testing.T) {
	st, path := sqliteStore(t)
	ctx := t.Context()
	tok := newFakeToken()
	checkpoint := custody.Spec{Purpose: custody.PurposeAuditCheckpoint, Owner: custody.OwnerServer, Algorithm: custody.AlgorithmED25519}

	// Without the default alias's passphrase: refused, nothing stored.
	bare := open(t, st, custody.Options{DefaultAlias: "other", Token: tok})
	if _, err := bare.CreateKey(ctx, checkpoint); !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("checkpoint key without a passphrase: %v", err)
	}
	// Another purpose in Ed25519: the token's rule.
	s := open(t, st, custody.Options{Passphrase: passphrases(map[string]string{"default": "pw"}), Token: tok})
	if _, err := s.CreateKey(ctx, custody.Spec{Purpose: custody.PurposeCosign, Owner: custody.OwnerServer, Algorithm: custody.AlgorithmED25519}); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("an Ed25519 cosign key with a token: %v", err)
	}
	var n int
	if err := rawDB(t, path).QueryRowContext(ctx, "SELECT count(*) FROM private_keys").Scan(&n); err != nil || n != 0 {
		t.Fatalf("refused creations stored %d keys (%v)", n, err)
	}

	k, err := s.CreateKey(ctx, checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.keys) != 0 {
		t.Fatalf("the token holds %d keys; the checkpoint key belongs sealed in software", len(tok.keys))
	}
	var label string
	var sealed []byte
	if err := rawDB(t, path).QueryRowContext(ctx, "SELECT label, sealed FROM private_keys WHERE key_id = ?", k.ID()).Scan(&label, &sealed); err != nil {
		t.Fatal(err)
	}
	if label != "" || len(sealed) == 0 {
		t.Fatalf("checkpoint key record: label %q, %d sealed bytes; want sealed, no token label", label, len(sealed))
	}
	signer, err := s.Signer(ctx, "", k.ID())
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := signer.Public().(ed25519.PublicKey)
	if !ok {
		t.Fatalf("checkpoint key is %T, want Ed25519", signer.Public())
	}
	msg := []byte("checkpoint")
	sig, err := signer.Sign(rand.Reader, msg, crypto.Hash(0))
	if err != nil || !ed25519.Verify(pub, msg, sig) {
		t.Fatalf("signing with the checkpoint key: %v", err)
	}
}

package signer_test

import (
	"bytes"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/custody/custodiantest"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/signer"
)

func passphrases(m map[string]string) func(string) []byte {
	return func(alias string) []byte {
		if p, ok := m[alias]; ok {
			return []byte(p)
		}
		return nil
	}
}

func open(t *testing.T, dir, def string, pass map[string]string) *signer.Service {
	t.Helper()
	svc, err := signer.Open(t.Context(), dir, custody.Options{DefaultAlias: def, Passphrase: passphrases(pass), InsecureAliasKDF: "scrypt-n1024-r8-p1"})
	if err != nil {
		t.Fatalf("signer.Open: %v", err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

// TestConformance runs custodiantest against signet-signer's service.
func TestConformance(t *testing.T) {
	pass := map[string]string{"default": "p"}
	custodiantest.Run(t, func(t *testing.T) custodiantest.Subject {
		dir := t.TempDir()
		return custodiantest.Subject{
			Custodian: open(t, dir, "default", pass),
			Restart:   func(t *testing.T) custody.Custodian { return open(t, dir, "default", pass) },
		}
	})
}

func TestDataDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	open(t, dir, "default", map[string]string{"default": "p"})
	for _, p := range []string{dir, filepath.Join(dir, signer.DBFile)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	if _, err := signer.Open(t.Context(), dir, custody.Options{Passphrase: passphrases(map[string]string{"default": "wrong"})}); !errors.Is(err, custody.ErrWrongPassphrase) {
		t.Fatalf("Open with a wrong passphrase: %v", err)
	}
}

// releaseKey is a row of the release's keys table.
type releaseKey struct {
	id, gun, role, algorithm, alias string
	public, sealed, wrapped         []byte
	created                         time.Time
}

// copyRelease copies the database written by signet-signer at de57e35
// (testdata/release-de57e35/README.md) into a new data directory, and
// returns it and the keys it holds.
func copyRelease(t *testing.T) (string, []releaseKey) {
	t.Helper()
	b, err := os.ReadFile("testdata/release-de57e35/signer-data/signer.db")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, signer.DBFile)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	db := raw(t, path)
	rows, err := db.QueryContext(t.Context(), "SELECT id, gun, role, algorithm, alias, public, sealed, wrapped_dek, created_at FROM keys ORDER BY created_at")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []releaseKey
	for rows.Next() {
		var k releaseKey
		var ns int64
		if err := rows.Scan(&k.id, &k.gun, &k.role, &k.algorithm, &k.alias, &k.public, &k.sealed, &k.wrapped, &ns); err != nil {
			t.Fatal(err)
		}
		k.created = time.Unix(0, ns).UTC()
		out = append(out, k)
	}
	if len(out) != 3 {
		t.Fatalf("the release's database holds %d keys, want 3", len(out))
	}
	return dir, out
}

func raw(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func signVerify(t *testing.T, c custody.Custodian, gun string, pub *keys.PublicKey) error {
	t.Helper()
	return custodiantest.Sign(t.Context(), c, gun, pub)
}

var releasePassphrases = map[string]string{"default": "legacy-default", "second": "legacy-second"}

// TestReleaseDatabase: a database written by signet-signer at de57e35 is
// taken over on first open: every key keeps its ID, repository, role,
// alias, sealed bytes and creation time, and signs; the release's tables
// are gone and its schema version is raised, so that release refuses the
// database rather than misread it; a second open changes nothing; rekey
// works on the keys as they came.
func TestReleaseDatabase(t *testing.T) {
	ctx := t.Context()
	dir, want := copyRelease(t)
	svc := open(t, dir, "default", releasePassphrases)
	check := func(svc *signer.Service) {
		t.Helper()
		for _, rk := range want {
			k, err := svc.Key(ctx, rk.id)
			if err != nil {
				t.Fatalf("key %s of the release: %v", rk.id, err)
			}
			p, _ := custody.PurposeForRole(rk.role)
			if k.GUN != rk.gun || k.Role != rk.role || k.Public.Type() != rk.algorithm || !bytes.Equal(k.Public.Public(), rk.public) ||
				k.Alias != rk.alias || k.Purpose != p || k.Owner != custody.OwnerServer || !k.CreatedAt.Equal(rk.created.Truncate(time.Microsecond)) {
				t.Fatalf("key %s: %+v; the release had %+v", rk.id, k, rk)
			}
			if err := signVerify(t, svc, rk.gun, k.Public); err != nil {
				t.Fatalf("sign with the release's key %s: %v", rk.id, err)
			}
		}
	}
	check(svc)
	db := raw(t, filepath.Join(dir, signer.DBFile))
	for _, rk := range want {
		var sealed, wrapped []byte
		var format int
		if err := db.QueryRowContext(ctx, "SELECT sealed, wrapped_dek, format FROM private_keys WHERE key_id = ?", rk.id).Scan(&sealed, &wrapped, &format); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sealed, rk.sealed) || !bytes.Equal(wrapped, rk.wrapped) || format != custody.FormatV1 {
			t.Fatalf("key %s: the release's seal changed on takeover (format %d)", rk.id, format)
		}
	}
	var n, version int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('keys', 'aliases', 'token_keys')").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d tables of the release left (%v)", n, err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil || version <= 2 {
		t.Fatalf("user_version %d (%v): the release would take the database for its own", version, err)
	}
	svc.Close()

	// Again: nothing to take over, the same keys.
	svc = open(t, dir, "default", releasePassphrases)
	check(svc)
	// Without the passphrase of "second": its keys are refused by name.
	only := open(t, dir, "default", map[string]string{"default": "legacy-default"})
	for _, rk := range want {
		pub, _ := keys.New(rk.algorithm, rk.public)
		err := signVerify(t, only, rk.gun, pub)
		if rk.alias == "second" && !errors.Is(err, custody.ErrNoPassphrase) || rk.alias == "default" && err != nil {
			t.Fatalf("key %s under %s with only default's passphrase: %v", rk.id, rk.alias, err)
		}
	}
	// A wrong passphrase for an alias in use stops the start.
	if _, err := signer.Open(ctx, dir, custody.Options{Passphrase: passphrases(map[string]string{"default": "legacy-default", "second": "wrong"})}); !errors.Is(err, custody.ErrWrongPassphrase) {
		t.Fatalf("Open with a wrong passphrase for second: %v", err)
	}
	// Rekey everything under a new alias: the release's seals move.
	pass := map[string]string{"default": "legacy-default", "second": "legacy-second", "third": "third"}
	rep, err := open(t, dir, "third", pass).Rekey(ctx, "third")
	if err != nil || rep.Rewrapped != len(want) {
		t.Fatalf("Rekey = %+v, %v", rep, err)
	}
	after := open(t, dir, "third", map[string]string{"third": "third"})
	for _, rk := range want {
		pub, _ := keys.New(rk.algorithm, rk.public)
		if err := signVerify(t, after, rk.gun, pub); err != nil {
			t.Fatalf("key %s after rekey: %v", rk.id, err)
		}
	}
	// The release's seals do not bind purpose and owner: changing them is
	// refused.
	exec := func(q string, args ...any) {
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec("UPDATE private_keys SET owner = 'project:evil' WHERE key_id = ?", want[0].id)
	exec("UPDATE private_keys SET purpose = 'delegation' WHERE key_id = ?", want[1].id)
	fresh := open(t, dir, "third", map[string]string{"third": "third"})
	for _, rk := range want[:2] {
		pub, _ := keys.New(rk.algorithm, rk.public)
		if err := signVerify(t, fresh, rk.gun, pub); !errors.Is(err, custody.ErrTampered) {
			t.Fatalf("key %s with its purpose or owner changed: %v, want ErrTampered", rk.id, err)
		}
	}
}

package custody_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/store/sqlstore"
	"github.com/signet-trust/signet/internal/tuf"
)

// releaseDir is a data directory written by signet-server at de57e35
// (testdata/release-de57e35/README.md says how).
const releaseDir = "testdata/release-de57e35/signet-data"

// copyRelease copies the release's data directory into a new temporary
// directory and returns the copy's path.
func copyRelease(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "signet-data")
	err := filepath.WalkDir(releaseDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(releaseDir, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func releasePassphrase(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "key-passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}

// legacyKey is a private_keys row as the release left it.
type legacyKey struct {
	id, gun, role, algorithm string
	public, sealed           []byte
	created                  time.Time
}

func legacyKeys(t *testing.T, dbPath string) []legacyKey {
	t.Helper()
	rows, err := rawDB(t, dbPath).QueryContext(t.Context(), "SELECT key_id, gun, role, algorithm, public, sealed, created_at FROM private_keys ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []legacyKey
	for rows.Next() {
		var k legacyKey
		var us int64
		if err := rows.Scan(&k.id, &k.gun, &k.role, &k.algorithm, &k.public, &k.sealed, &us); err != nil {
			t.Fatal(err)
		}
		k.created = time.UnixMicro(us).UTC()
		out = append(out, k)
	}
	if len(out) < 6 {
		t.Fatalf("the release's data holds %d keys, want 6", len(out))
	}
	return out
}

// formats counts the rows by seal format.
func formats(t *testing.T, db *sql.DB) map[int]int {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT format, COUNT(*) FROM private_keys GROUP BY format")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int]int{}
	for rows.Next() {
		var f, n int
		if err := rows.Scan(&f, &n); err != nil {
			t.Fatal(err)
		}
		out[f] = n
	}
	return out
}

// checkMigrated checks that every key of the release is held with its ID,
// repository, role, algorithm, public key and creation time, in the
// current format under the server's alias, and signs.
func checkMigrated(t *testing.T, c custody.Custodian, want []legacyKey) {
	t.Helper()
	for _, lk := range want {
		k, err := c.Key(t.Context(), lk.id)
		if err != nil {
			t.Fatalf("key %s of the release: %v", lk.id, err)
		}
		p, _ := custody.PurposeForRole(lk.role)
		if k.GUN != lk.gun || k.Role != lk.role || k.Public.Type() != lk.algorithm || !bytes.Equal(k.Public.Public(), lk.public) ||
			!k.CreatedAt.Equal(lk.created) || k.Purpose != p || k.Owner != custody.OwnerServer || k.Alias != custody.ServerAlias {
			t.Fatalf("key %s after migration: %+v; the release had %+v", lk.id, k, lk)
		}
		if err := signVerify(t, c, lk.gun, k.Public); err != nil {
			t.Fatalf("sign with migrated key %s: %v", lk.id, err)
		}
	}
}

// TestMigrateRelease starts from a copy of a data directory written by the
// release at de57e35: a wrong passphrase is refused and changes nothing;
// the right one migrates every key in place (same IDs, same public keys,
// same times); a second start finds nothing left to do; and the server
// re-signs each repository's timestamp (and server-held snapshot) with the
// very keys its root lists.
func TestMigrateRelease(t *testing.T) {
	ctx := t.Context()
	dir := copyRelease(t)
	dbPath := filepath.Join(dir, "signet.db")
	want := legacyKeys(t, dbPath)
	st := openStore(t, "sqlite:"+dbPath)
	if ok, err := custody.Initialized(ctx, st); err != nil || !ok {
		t.Fatalf("Initialized on the release's store = %v, %v; want true (its passphrase is needed)", ok, err)
	}

	if _, err := custody.Open(ctx, st, []byte("not the passphrase"), custody.AlgorithmECDSA, time.Now); !errors.Is(err, custody.ErrWrongPassphrase) {
		t.Fatalf("Open with a wrong passphrase: %v", err)
	}
	raw := rawDB(t, dbPath)
	var aliases int
	if err := raw.QueryRowContext(ctx, "SELECT COUNT(*) FROM key_aliases").Scan(&aliases); err != nil || aliases != 0 {
		t.Fatalf("a refused start stored %d aliases (%v)", aliases, err)
	}
	if got := formats(t, raw); got[custody.FormatLegacy] != len(want) || len(got) != 1 {
		t.Fatalf("a refused start changed records: formats %v", got)
	}

	c, err := custody.Open(ctx, st, releasePassphrase(t, dir), custody.AlgorithmECDSA, time.Now)
	if err != nil {
		t.Fatalf("Open the release's store: %v", err)
	}
	if got := formats(t, raw); got[custody.FormatV2] != len(want) || len(got) != 1 {
		t.Fatalf("formats after migration: %v, want all %d in format 2", got, len(want))
	}
	for _, lk := range want {
		var sealed []byte
		if err := raw.QueryRowContext(ctx, "SELECT sealed FROM private_keys WHERE key_id = ?", lk.id).Scan(&sealed); err != nil || bytes.Equal(sealed, lk.sealed) {
			t.Fatalf("key %s still sealed as the release did (%v)", lk.id, err)
		}
	}
	checkMigrated(t, c, want)

	// The next start: nothing left to migrate, same keys.
	again, err := custody.Open(ctx, openStore(t, "sqlite:"+dbPath), releasePassphrase(t, dir), custody.AlgorithmECDSA, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	checkMigrated(t, again, want)
	if _, err := custody.Open(ctx, st, []byte("not the passphrase"), custody.AlgorithmECDSA, time.Now); !errors.Is(err, custody.ErrWrongPassphrase) {
		t.Fatalf("Open of the migrated store with a wrong passphrase: %v", err)
	}

	// The server, a month later: every timestamp has expired, and reading
	// it re-signs it with the key the root lists.
	resignedBy(t, st, again)
}

// resignedBy makes a server over st and c read every repository's
// timestamp and snapshot a month past the release, and checks that each
// timestamp (and server-held snapshot) was signed again by the keys its
// root lists.
func resignedBy(t *testing.T, st *sqlstore.Store, c custody.Custodian) {
	t.Helper()
	ctx := t.Context()
	guns := map[string]bool{"example.com/legacy/app": true, "example.com/legacy/second": false, "example.com/legacy/ed25519": true} // server-held snapshot?
	var latest time.Time
	before := map[string]int{}
	for g := range guns {
		for _, role := range []string{tuf.RoleTimestamp, tuf.RoleSnapshot} {
			f, err := st.GetCurrent(ctx, g, role)
			if err != nil {
				t.Fatal(err)
			}
			if f.Expires.After(latest) {
				latest = f.Expires
			}
			before[g+" "+role] = f.Version
		}
	}
	future := latest.Add(30 * 24 * time.Hour)
	srv, err := server.New(server.Config{Store: st, Custodian: c, Now: func() time.Time { return future }})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	for g, serverSnapshot := range guns {
		rootFile, err := st.GetCurrent(ctx, g, tuf.RoleRoot)
		if err != nil {
			t.Fatal(err)
		}
		root, err := tuf.ParseRoot(rootFile.Data)
		if err != nil {
			t.Fatal(err)
		}
		roles := []string{tuf.RoleTimestamp}
		if serverSnapshot {
			roles = append(roles, tuf.RoleSnapshot)
		}
		for _, role := range roles {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "https://signet.test/v2/"+g+"/_trust/tuf/"+role+".json", nil))
			body, _ := io.ReadAll(rec.Result().Body)
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s %s: %d %s", g, role, rec.Code, body)
			}
			c, err := tuf.Peek(body)
			if err != nil {
				t.Fatal(err)
			}
			if c.Version <= before[g+" "+role] || !c.Expires.After(future) {
				t.Fatalf("%s %s: version %d expiring %v; was %d; want re-signed", g, role, c.Version, c.Expires, before[g+" "+role])
			}
			rk := root.Signed.Roles[role]
			var verr error
			var signedBy []string
			if role == tuf.RoleTimestamp {
				m, err := tuf.ParseTimestamp(body)
				if err != nil {
					t.Fatal(err)
				}
				verr = tuf.VerifySignatures(m, rk.KeyIDs, rk.Threshold, root.Signed.Keys)
				signedBy = sigKeys(m.Signatures)
			} else {
				m, err := tuf.ParseSnapshot(body)
				if err != nil {
					t.Fatal(err)
				}
				verr = tuf.VerifySignatures(m, rk.KeyIDs, rk.Threshold, root.Signed.Keys)
				signedBy = sigKeys(m.Signatures)
			}
			if verr != nil {
				t.Fatalf("%s %s re-signed after migration: %v", g, role, verr)
			}
			if !slices.Equal(signedBy, rk.KeyIDs) {
				t.Fatalf("%s %s signed by %q; its root lists %q", g, role, signedBy, rk.KeyIDs)
			}
		}
	}
}

func sigKeys(sigs []tuf.Signature) []string {
	var out []string
	for _, s := range sigs {
		out = append(out, s.KeyID)
	}
	return out
}

// crashingStorage makes Reseal fail after allowed successful calls, as if
// the process died there.
type crashingStorage struct {
	custody.Storage
	allowed atomic.Int64
}

var errCrash = errors.New("simulated crash")

func (s *crashingStorage) Reseal(ctx context.Context, old, next custody.Record) (bool, error) {
	if s.allowed.Add(-1) < 0 {
		return false, errCrash
	}
	return s.Storage.Reseal(ctx, old, next)
}

// TestMigrateCrash: a migration that stops after some keys leaves a store
// that starts (the rest still sign through the old format meanwhile), and
// the next start finishes it.
func TestMigrateCrash(t *testing.T) {
	for _, allowed := range []int64{0, 2} {
		t.Run(fmt.Sprint(allowed, " keys migrated"), func(t *testing.T) {
			ctx := t.Context()
			dir := copyRelease(t)
			dbPath := filepath.Join(dir, "signet.db")
			want := legacyKeys(t, dbPath)
			st := openStore(t, "sqlite:"+dbPath)
			crashing := &crashingStorage{Storage: st}
			crashing.allowed.Store(allowed)
			c, err := custody.Open(ctx, crashing, releasePassphrase(t, dir), custody.AlgorithmECDSA, time.Now)
			if err != nil {
				t.Fatalf("Open with failing writes: %v", err)
			}
			got := formats(t, rawDB(t, dbPath))
			if got[custody.FormatV2] != int(allowed) || got[custody.FormatLegacy] != len(want)-int(allowed) {
				t.Fatalf("formats after the crash: %v", got)
			}
			for _, lk := range want { // every key signs, migrated or not
				k, err := c.Key(ctx, lk.id)
				if err != nil {
					t.Fatal(err)
				}
				if err := signVerify(t, c, lk.gun, k.Public); err != nil {
					t.Fatalf("key %s after a partial migration: %v", lk.id, err)
				}
			}
			next, err := custody.Open(ctx, openStore(t, "sqlite:"+dbPath), releasePassphrase(t, dir), custody.AlgorithmECDSA, time.Now)
			if err != nil {
				t.Fatalf("the start after the crash: %v", err)
			}
			if got := formats(t, rawDB(t, dbPath)); got[custody.FormatV2] != len(want) || len(got) != 1 {
				t.Fatalf("formats after the next start: %v", got)
			}
			checkMigrated(t, next, want)
		})
	}
}

// TestMigrateConcurrent: replicas starting at once on a store of the
// release (PostgreSQL, as replicas share one; and two processes on one
// SQLite file) each come up, and every key ends migrated exactly once.
func TestMigrateConcurrent(t *testing.T) {
	t.Run("PostgreSQL", func(t *testing.T) {
		dir := copyRelease(t)
		want := legacyKeys(t, filepath.Join(dir, "signet.db"))
		url := postgresURL(t)
		loadReleaseIntoPostgres(t, filepath.Join(dir, "signet.db"), url)
		concurrentStarts(t, url, releasePassphrase(t, dir), want, 4)
	})
	t.Run("SQLite", func(t *testing.T) {
		dir := copyRelease(t)
		dbPath := filepath.Join(dir, "signet.db")
		want := legacyKeys(t, dbPath)
		concurrentStarts(t, "sqlite:"+dbPath, releasePassphrase(t, dir), want, 2)
	})
}

func concurrentStarts(t *testing.T, url string, pass []byte, want []legacyKey, n int) {
	t.Helper()
	ctx := t.Context()
	var wg sync.WaitGroup
	cores := make([]*custody.Core, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			st, err := sqlstore.Open(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			t.Cleanup(func() { st.Close() })
			<-start
			cores[i], errs[i] = custody.Open(ctx, st, pass, custody.AlgorithmECDSA, time.Now)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	st := openStore(t, url)
	var ids []string
	recs, err := st.ListKeys(ctx, custody.Filter{IncludeRetired: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Seal.Format != custody.FormatV2 {
			t.Fatalf("key %s left in format %d", r.ID, r.Seal.Format)
		}
		ids = append(ids, r.ID)
	}
	var wantIDs []string
	for _, lk := range want {
		wantIDs = append(wantIDs, lk.id)
	}
	slices.Sort(ids)
	slices.Sort(wantIDs)
	if !slices.Equal(ids, wantIDs) {
		t.Fatalf("keys after concurrent starts: %q, want %q", ids, wantIDs)
	}
	for _, c := range cores {
		checkMigrated(t, c, want)
	}
}

// loadReleaseIntoPostgres makes the PostgreSQL schema at url what the
// release would have made of the same data: its schema (migration 1 of the
// release, as released) and its private_keys and settings rows.
func loadReleaseIntoPostgres(t *testing.T, sqlitePath, url string) {
	t.Helper()
	ctx := t.Context()
	schema, err := os.ReadFile("../store/sqlstore/migrations/postgres/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	pg, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	for _, q := range []string{string(schema),
		"CREATE TABLE signet_schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL)",
		"INSERT INTO signet_schema_version (version, name) VALUES (1, '0001_init.sql')"} {
		if _, err := pg.ExecContext(ctx, q); err != nil {
			t.Fatalf("release schema: %v", err)
		}
	}
	src := rawDB(t, sqlitePath)
	rows, err := src.QueryContext(ctx, "SELECT key_id, gun, role, algorithm, public, sealed, created_at FROM private_keys ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, gun, role, alg string
		var public, sealed []byte
		var us int64
		if err := rows.Scan(&id, &gun, &role, &alg, &public, &sealed, &us); err != nil {
			t.Fatal(err)
		}
		if _, err := pg.ExecContext(ctx, "INSERT INTO private_keys (key_id, gun, role, algorithm, public, sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
			id, gun, role, alg, public, sealed, time.UnixMicro(us).UTC()); err != nil {
			t.Fatal(err)
		}
	}
	var kek []byte
	if err := src.QueryRowContext(ctx, "SELECT value FROM settings WHERE name = 'kek.scrypt.v1'").Scan(&kek); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.ExecContext(ctx, "INSERT INTO settings (name, value) VALUES ('kek.scrypt.v1', $1)", kek); err != nil {
		t.Fatal(err)
	}
}

// TestLegacyWithoutKeys: a store of the release with its key-encryption
// settings but no key yet keeps needing the same passphrase.
func TestLegacyWithoutKeys(t *testing.T) {
	ctx := t.Context()
	dir := copyRelease(t)
	dbPath := filepath.Join(dir, "signet.db")
	exec(t, rawDB(t, dbPath), "DELETE FROM private_keys")
	st := openStore(t, "sqlite:"+dbPath)
	if _, err := custody.Open(ctx, st, []byte("another passphrase"), custody.AlgorithmECDSA, time.Now); !errors.Is(err, custody.ErrWrongPassphrase) {
		t.Fatalf("another passphrase: %v", err)
	}
	c, err := custody.Open(ctx, st, releasePassphrase(t, dir), custody.AlgorithmED25519, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.Create(ctx, gun, "timestamp")
	if err != nil || k.Type() != keys.TypeED25519 {
		t.Fatalf("Create: %v, %v", k, err)
	}
	// The alias took the release's salt: one derivation serves both.
	var salt, kek []byte
	raw := rawDB(t, dbPath)
	if err := raw.QueryRowContext(ctx, "SELECT salt FROM key_aliases WHERE alias = 'default'").Scan(&salt); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRowContext(ctx, "SELECT value FROM settings WHERE name = 'kek.scrypt.v1'").Scan(&kek); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(salt, kek[:32]) {
		t.Fatal("the server's alias has a salt of its own")
	}
	if _, err := custody.Open(ctx, st, []byte("another passphrase"), custody.AlgorithmECDSA, time.Now); !errors.Is(err, custody.ErrWrongPassphrase) {
		t.Fatalf("another passphrase after the first start: %v", err)
	}
}

package sqlstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/custody/storagetest"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/store/storetest"
)

func openT(t testing.TB, url string) *Store {
	t.Helper()
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open(%q): %v", url, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func sqliteURL(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "signet.db")
}

func TestSQLite(t *testing.T) {
	t.Run("MetaStore", func(t *testing.T) {
		storetest.RunMetaStore(t, func(t *testing.T) store.MetaStore { return openT(t, sqliteURL(t)) })
	})
	t.Run("CustodyStorage", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) custody.Storage { return openT(t, sqliteURL(t)) })
	})
}

func TestSQLiteMemory(t *testing.T) {
	t.Run("MetaStore", func(t *testing.T) {
		storetest.RunMetaStore(t, func(t *testing.T) store.MetaStore { return openT(t, "sqlite::memory:") })
	})
	t.Run("CustodyStorage", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) custody.Storage { return openT(t, "sqlite::memory:") })
	})
}

// TestPostgres runs the suites against the PostgreSQL server named by
// SIGNET_TEST_POSTGRES_URL, in a database of its own that it drops after.
// With SIGNET_TEST_REQUIRE=all (or postgres) a missing URL fails the test.
func TestPostgres(t *testing.T) {
	base := postgresURL(t)
	t.Run("MetaStore", func(t *testing.T) {
		storetest.RunMetaStore(t, func(t *testing.T) store.MetaStore { return openT(t, postgresSchema(t, base)) })
	})
	t.Run("CustodyStorage", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) custody.Storage { return openT(t, postgresSchema(t, base)) })
	})
	t.Run("ConcurrentOpen", func(t *testing.T) {
		// Replicas starting together migrate one schema once.
		u := postgresSchema(t, base)
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				s, err := Open(t.Context(), u)
				if err == nil {
					err = s.Close()
				}
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	})
}

// postgresURL creates a database for this test (e2etest.PostgresDB) and
// returns its URL.
func postgresURL(t testing.TB) string {
	t.Helper()
	return e2etest.PostgresDB(t, "signet_test_")
}

// postgresSchema creates a fresh schema in the database at base and returns
// a URL whose search_path is that schema.
func postgresSchema(t testing.TB, base string) string {
	t.Helper()
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := "s_" + randomHex(t)
	if _, err := db.ExecContext(t.Context(), "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

func randomHex(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func testFile(gun, role string, version int, data string) store.File {
	return store.File{GUN: gun, Role: role, Version: version, Data: []byte(data),
		Expires: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func TestSQLiteDurableAfterClose(t *testing.T) {
	u := sqliteURL(t)
	s, err := Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateMany(t.Context(), "g", []store.File{
		testFile("g", "root", 1, "root bytes"), testFile("g", "timestamp", 1, "ts bytes"),
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, u)
	f, err := s.GetCurrent(t.Context(), "g", "timestamp")
	if err != nil || string(f.Data) != "ts bytes" {
		t.Fatalf("after reopening: %q, %v", f.Data, err)
	}
	if cs, err := s.Changes(t.Context(), "", 0, 10); err != nil || len(cs) != 1 {
		t.Fatalf("changes after reopening: %+v, %v", cs, err)
	}
}

// TestSQLiteDurableWithoutClose writes from a child process that exits
// without closing the database (so the WAL is never checkpointed), then
// reads the write back.
func TestSQLiteDurableWithoutClose(t *testing.T) {
	if path := os.Getenv("SIGNET_SQLSTORE_CHILD_DB"); path != "" {
		s, err := Open(context.Background(), "sqlite:"+path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		if err := s.UpdateMany(context.Background(), "g", []store.File{testFile("g", "timestamp", 7, "crash-safe")}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
		os.Exit(0) // no Close
	}
	path := filepath.Join(t.TempDir(), "sub", "dir", "signet.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSQLiteDurableWithoutClose$")
	cmd.Env = append(os.Environ(), "SIGNET_SQLSTORE_CHILD_DB="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Logf("no WAL left behind (%v); the test still checks the data", err)
	}
	s := openT(t, "sqlite:"+path)
	f, err := s.GetVersion(t.Context(), "g", "timestamp", 7)
	if err != nil || string(f.Data) != "crash-safe" {
		t.Fatalf("after the child exited: %q, %v", f.Data, err)
	}
}

func TestSQLiteSettings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	path := filepath.Join(dir, "signet.db")
	s := openT(t, "sqlite:"+path)

	for _, p := range []string{dir, filepath.Dir(dir)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o700 {
			t.Errorf("%s: mode %o, want 700", p, perm)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("database file mode %o, want no group or other access", perm)
	}

	pragma := func(db *sql.DB, name string) string {
		t.Helper()
		var v string
		if err := db.QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v); err != nil {
			t.Fatalf("PRAGMA %s: %v", name, err)
		}
		return v
	}
	for db, name := range map[*sql.DB]string{s.w: "writer", s.r: "reader"} {
		if got := pragma(db, "journal_mode"); got != "wal" {
			t.Errorf("%s journal_mode = %s, want wal", name, got)
		}
		if got := pragma(db, "foreign_keys"); got != "1" {
			t.Errorf("%s foreign_keys = %s, want 1", name, got)
		}
		if got := pragma(db, "busy_timeout"); got == "0" {
			t.Errorf("%s busy_timeout = 0", name)
		}
	}
	if got := pragma(s.w, "synchronous"); got != "2" {
		t.Errorf("writer synchronous = %s, want 2 (FULL)", got)
	}
	if got := pragma(s.r, "query_only"); got != "1" {
		t.Errorf("reader query_only = %s, want 1", got)
	}
	if s.w.Stats().MaxOpenConnections != 1 {
		t.Errorf("writer pool allows %d connections, want 1", s.w.Stats().MaxOpenConnections)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, u := range []string{"", "mysql://x", "sqlite:", "/tmp/x.db", "sqlite:/tmp/a?b.db"} {
		if s, err := Open(t.Context(), u); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", u)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if s, err := Open(ctx, sqliteURL(t)); err == nil {
		s.Close()
		t.Error("Open with a canceled context succeeded")
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	u := sqliteURL(t)
	for range 3 {
		s, err := Open(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	s := openT(t, u)
	var n int
	if err := s.r.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM signet_schema_version").Scan(&n); err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(s.d.migrations)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(ms) {
		t.Fatalf("%d schema versions recorded, want %d", n, len(ms))
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	u := sqliteURL(t)
	s, err := Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(t.Context(), "INSERT INTO signet_schema_version (version, name) VALUES (999, 'future')"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(t.Context(), u); err == nil {
		s.Close()
		t.Fatal("Open of a newer schema succeeded")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: %v", err)
	}
}

func TestMigrationsMatch(t *testing.T) {
	sq, err := loadMigrations(sqliteDialect.migrations)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := loadMigrations(postgresDialect.migrations)
	if err != nil {
		t.Fatal(err)
	}
	if len(sq) != len(pg) {
		t.Fatalf("%d SQLite migrations, %d PostgreSQL: dialects must move together", len(sq), len(pg))
	}
	for i := range sq {
		if sq[i].name != pg[i].name {
			t.Errorf("migration %d: %s vs %s", i+1, sq[i].name, pg[i].name)
		}
	}
}

func TestClock(t *testing.T) {
	at := time.Date(2029, 3, 4, 5, 6, 7, 891234567, time.UTC)
	s, err := Open(t.Context(), "sqlite::memory:", WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.UpdateMany(t.Context(), "g", []store.File{testFile("g", "timestamp", 1, "x")}); err != nil {
		t.Fatal(err)
	}
	want := at.Truncate(time.Microsecond)
	f, err := s.GetCurrent(t.Context(), "g", "timestamp")
	if err != nil || !f.CreatedAt.Equal(want) {
		t.Fatalf("CreatedAt = %v, %v; want %v", f.CreatedAt, err, want)
	}
	cs, err := s.Changes(t.Context(), "", 0, 1)
	if err != nil || len(cs) != 1 || !cs[0].CreatedAt.Equal(want) {
		t.Fatalf("change = %+v, %v; want CreatedAt %v", cs, err, want)
	}
	if err := s.PutKey(t.Context(), custody.Record{ID: "k", GUN: "g", Role: "timestamp"}); err != nil {
		t.Fatal(err)
	}
	k, err := s.GetKey(t.Context(), "k")
	if err != nil || !k.CreatedAt.Equal(want) {
		t.Fatalf("key CreatedAt = %v, %v; want %v", k.CreatedAt, err, want)
	}
}

func TestUpdateManyChecksSHA256(t *testing.T) {
	s := openT(t, "sqlite::memory:")
	f := testFile("g", "root", 1, "data")
	f.SHA256 = strings.Repeat("0", 64)
	if err := s.UpdateMany(t.Context(), "g", []store.File{f}); err == nil || errors.Is(err, store.ErrOldVersion) {
		t.Fatalf("UpdateMany with a wrong SHA256: %v", err)
	}
	f.SHA256 = ""
	if err := s.UpdateMany(t.Context(), "g", []store.File{f}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetCurrent(t.Context(), "g", "root")
	if err != nil || got.SHA256 != "3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7" {
		t.Fatalf("computed SHA256 = %q, %v", got.SHA256, err)
	}
	other := testFile("other", "root", 1, "data")
	if err := s.UpdateMany(t.Context(), "g", []store.File{other}); err == nil {
		t.Fatal("UpdateMany accepted a file of another GUN")
	}
}

func BenchmarkSQLite(b *testing.B) {
	benchStore(b, func(b *testing.B) *Store { return openT(b, sqliteURL(b)) })
}

func BenchmarkPostgres(b *testing.B) {
	if os.Getenv("SIGNET_TEST_POSTGRES_URL") == "" {
		b.Skip("SIGNET_TEST_POSTGRES_URL not set")
	}
	base := postgresURL(b)
	benchStore(b, func(b *testing.B) *Store { return openT(b, postgresSchema(b, base)) })
}

func benchStore(b *testing.B, open func(b *testing.B) *Store) {
	data := bytes.Repeat([]byte("x"), 2048)
	b.Run("GetCurrent", func(b *testing.B) {
		s := open(b)
		for v := 1; v <= 20; v++ {
			if err := s.UpdateMany(b.Context(), "g", []store.File{testFile("g", "targets", v, string(data)+fmt.Sprint(v))}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.GetCurrent(b.Context(), "g", "targets"); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("UpdateMany", func(b *testing.B) {
		s := open(b)
		b.ReportAllocs()
		v := 0
		for b.Loop() {
			v++
			batch := []store.File{
				testFile("g", "targets", v, string(data)+fmt.Sprint(v)),
				testFile("g", "snapshot", v, "snapshot"+fmt.Sprint(v)),
				testFile("g", "timestamp", v, "timestamp"+fmt.Sprint(v)),
			}
			if err := s.UpdateMany(b.Context(), "g", batch); err != nil {
				b.Fatal(err)
			}
		}
	})
}

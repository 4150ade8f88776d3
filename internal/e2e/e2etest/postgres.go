package e2etest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
)

// Required reports whether SIGNET_TEST_REQUIRE (comma or space separated)
// holds "all" or component: then a missing component fails a test instead
// of skipping it.
func Required(component string) bool {
	for _, f := range strings.FieldsFunc(os.Getenv("SIGNET_TEST_REQUIRE"), func(r rune) bool {
		return r == ',' || r == ' '
	}) {
		if f == "all" || f == component {
			return true
		}
	}
	return false
}

// PostgresDB creates a database named prefix+<random hex> on the
// PostgreSQL server of SIGNET_TEST_POSTGRES_URL, drops it (WITH (FORCE))
// when the test ends, and returns its URL. A missing URL or an unreachable
// server skips the test, or fails it when SIGNET_TEST_REQUIRE asks for
// PostgreSQL.
func PostgresDB(t testing.TB, prefix string) string {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if Required("postgres") {
			t.Fatalf("SIGNET_TEST_REQUIRE asks for PostgreSQL, but "+format, args...)
		}
		t.Skipf(format, args...)
	}
	admin := os.Getenv("SIGNET_TEST_POSTGRES_URL")
	if admin == "" {
		unavailable("SIGNET_TEST_POSTGRES_URL is not set")
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("SIGNET_TEST_POSTGRES_URL must be a postgres:// URL: %q", admin)
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		unavailable("PostgreSQL at %s is unreachable: %v", u.Redacted(), err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
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
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

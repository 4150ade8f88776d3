package e2etest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
)

// PostgresDB creates a database named prefix+<random hex> on the
// PostgreSQL server of SIGNET_TEST_POSTGRES_URL, drops it (WITH (FORCE))
// when the test ends, and returns its URL. A missing URL or an unreachable
// server skips the test, or fails it when SIGNET_TEST_REQUIRE asks for
// PostgreSQL ("all" or "postgres").
func PostgresDB(t testing.TB, prefix string) string {
	t.Helper()
	admin := os.Getenv("SIGNET_TEST_POSTGRES_URL")
	if admin == "" {
		Missing(t, "postgres", "SIGNET_TEST_POSTGRES_URL is not set")
	}
	dbURL, drop, err := CreateDatabase(t.Context(), admin, prefix)
	var unreachable *UnreachableError
	if errors.As(err, &unreachable) {
		Missing(t, "postgres", "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
		defer cancel()
		if err := drop(ctx); err != nil {
			t.Error(err)
		}
	})
	return dbURL
}

// UnreachableError is CreateDatabase's error when the server does not
// answer.
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string { return "PostgreSQL is unreachable: " + e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// CreateDatabase creates a database named prefix+<random hex> on the
// server of admin (a postgres:// URL with the right to create databases)
// and returns its URL and a function that drops it (WITH (FORCE)).
func CreateDatabase(ctx context.Context, admin, prefix string) (dbURL string, drop func(context.Context) error, err error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("%q is not a postgres:// URL", admin)
	}
	exec := func(ctx context.Context, stmt string) error {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return err
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			return &UnreachableError{fmt.Errorf("%s: %w", u.Redacted(), err)}
		}
		_, err = db.ExecContext(ctx, stmt)
		return err
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	if err := exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop = func(ctx context.Context) error {
		if err := exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

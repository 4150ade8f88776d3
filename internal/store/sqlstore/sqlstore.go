// Package sqlstore implements store.MetaStore and custody.Storage (the key
// custody core's records) on database/sql, for SQLite (the pure-Go modernc.org/sqlite driver, so
// CGO_ENABLED=0 builds work) and PostgreSQL (pgx).
//
// Invariants, beyond those of package store:
//   - The schema is created and upgraded by Open from SQL embedded in the
//     binary; a database whose schema is newer than the binary is refused.
//   - SQLite runs in WAL mode with synchronous=FULL, so a nil error from a
//     write means the write survives a crash or power loss. All writes go
//     through one connection, one transaction at a time, so callers never
//     see SQLITE_BUSY from writers of the same Store; reads use their own
//     pool and run beside writes.
//   - The current version of each (GUN, role) is kept in tuf_heads; an
//     update advances it with a conditional upsert, which is where
//     concurrent updates of one role serialize on both databases: exactly
//     one of several writers of the same version wins.
//   - Times are kept to the microsecond, in UTC.
//   - On PostgreSQL every transaction that changes a GUN's metadata also
//     sends a NOTIFY naming it (delivered at commit), which Invalidations
//     turns into a feed for the caches of other processes.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"

	"github.com/signet-trust/signet/internal/store"
)

// Store is a SQL-backed store.MetaStore and custody.Storage. It is safe for
// concurrent use. Close it when done.
type Store struct {
	inline inlineState // inline.go

	d   *dialect
	w   *sql.DB // writes (and, except for SQLite files, reads)
	r   *sql.DB // reads
	now func() time.Time

	// url and origin serve invalidation across processes (PostgreSQL):
	// the listener connects to url; origin tags this Store's own writes.
	url    string
	origin string

	stmts stmtCache
	group groupCommit // group.go
}

var _ store.MetaStore = (*Store)(nil)

// An Option configures Open.
type Option func(*config)

type config struct {
	now      func() time.Time
	maxConns int
}

// WithClock sets the clock that stamps CreatedAt of stored files, changefeed
// records and keys stored without one. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithMaxConns bounds the open connections: of the read pool for a SQLite
// file (writes always use one more), of the whole pool for PostgreSQL.
// The default is 4 × GOMAXPROCS, at least 8.
func WithMaxConns(n int) Option {
	return func(c *config) { c.maxConns = n }
}

// Open opens (creating if needed) the database at url and brings its schema
// up to date. url is one of:
//
//	sqlite:/path/to/file.db     a SQLite file; missing parent directories are created 0700
//	sqlite::memory:             a private in-memory SQLite database (tests)
//	postgres://user@host/db?…   PostgreSQL (also postgresql://), as pgx reads it
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	cfg := config{now: time.Now, maxConns: max(8, 4*runtime.GOMAXPROCS(0))}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxConns < 1 {
		return nil, errors.New("sqlstore: WithMaxConns needs at least 1")
	}
	var (
		s   *Store
		err error
	)
	switch {
	case strings.HasPrefix(url, "sqlite:"):
		s, err = openSQLite(ctx, strings.TrimPrefix(url, "sqlite:"), cfg)
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		s, err = openPostgres(ctx, url, cfg)
	default:
		return nil, errors.New(`sqlstore: database URL must start with "sqlite:" or "postgres://"`)
	}
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.prepareWrites(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlstore: prepare: %w", err)
	}
	return s, nil
}

// Close closes the database. For SQLite it checkpoints the write-ahead log.
func (s *Store) Close() error {
	s.stmts.close()
	var errs []error
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlstore: close: %w", err)
	}
	return nil
}

// sqlitePragmas are set on every SQLite connection. busy_timeout covers
// other processes (or the read pool during a checkpoint) holding a lock.
const sqlitePragmas = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"

func openSQLite(ctx context.Context, path string, cfg config) (*Store, error) {
	if path == ":memory:" {
		// An in-memory database lives in its connection: one connection
		// serves reads and writes, and is never closed while the Store is
		// open.
		db, err := sql.Open("sqlite", ":memory:?"+sqlitePragmas)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
		}
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		s := &Store{d: sqliteDialect, w: db, r: db, now: cfg.now}
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
		}
		return s, nil
	}
	if path == "" {
		return nil, errors.New("sqlstore: sqlite URL has no path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlstore: sqlite path %q must not contain ? or #", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	// Create the file 0600 ourselves: it holds sealed keys, and SQLite gives
	// the -wal and -shm files the mode of the database file.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}

	// The writer: one connection, BEGIN IMMEDIATE, WAL, synchronous=FULL.
	// journal_mode is persistent, so setting it here is enough for readers.
	w, err := sql.Open("sqlite", path+"?"+sqlitePragmas+
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlstore: open sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", path+"?"+sqlitePragmas+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	r.SetMaxOpenConns(cfg.maxConns)
	r.SetMaxIdleConns(cfg.maxConns)
	return &Store{d: sqliteDialect, w: w, r: r, now: cfg.now}, nil
}

func openPostgres(ctx context.Context, url string, cfg config) (*Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open postgres: %w", err)
	}
	db.SetMaxOpenConns(cfg.maxConns)
	db.SetMaxIdleConns(cfg.maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: open postgres: %w", err)
	}
	return &Store{d: postgresDialect, w: db, r: db, now: cfg.now, url: url, origin: newOrigin()}, nil
}

// tx runs fn in a write transaction and commits it.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	s.beginWrite()
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	finish := s.integrateInline(ctx, tx) // inline.go
	err = tx.Commit()
	finishInline(finish, err)
	return err
}

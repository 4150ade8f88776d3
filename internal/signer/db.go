package signer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers "sqlite"
)

// DB is the signer's own SQLite database: the sealed keys, the salts and
// check values of the passphrase aliases, and the records of keys held in a
// PKCS#11 token (where to find them and their public halves, nothing
// private). Several processes may open the
// same file at once (a serving signer and a `rekey`): every change is one
// statement or one transaction, and SQLite serialises writers.
type DB struct {
	db *sql.DB
}

// schemaVersion is the PRAGMA user_version of the current schema: 1 had
// aliases and keys, 2 adds token_keys. Every statement of schema is
// idempotent, so any older version migrates by running it.
const schemaVersion = 2

const schema = `
CREATE TABLE IF NOT EXISTS aliases (
	alias      TEXT PRIMARY KEY,
	kdf        TEXT NOT NULL,
	salt       BLOB NOT NULL,
	check_value BLOB NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
	id          TEXT PRIMARY KEY,
	gun         TEXT NOT NULL,
	role        TEXT NOT NULL,
	algorithm   TEXT NOT NULL,
	public      BLOB NOT NULL,
	alias       TEXT NOT NULL REFERENCES aliases(alias),
	wrapped_dek BLOB NOT NULL,
	sealed      BLOB NOT NULL,
	created_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS keys_gun_role ON keys (gun, role, created_at);
CREATE INDEX IF NOT EXISTS keys_alias ON keys (alias);
CREATE TABLE IF NOT EXISTS token_keys (
	id          TEXT PRIMARY KEY,
	gun         TEXT NOT NULL,
	role        TEXT NOT NULL,
	algorithm   TEXT NOT NULL,
	public      BLOB NOT NULL,
	token       TEXT NOT NULL,
	label       TEXT NOT NULL,
	object_id   BLOB NOT NULL,
	created_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS token_keys_gun_role ON token_keys (gun, role, created_at);
`

// OpenDB opens (creating if needed, mode 0600) the SQLite database at path,
// or a private in-memory database for ":memory:" (tests).
func OpenDB(ctx context.Context, path string) (*DB, error) {
	const pragmas = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	dsn := ":memory:?" + pragmas
	if path != ":memory:" {
		if path == "" || strings.ContainsAny(path, "?#") {
			return nil, fmt.Errorf("signer: bad database path %q", path)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("signer: %w", err)
		}
		// Create the file 0600 ourselves: SQLite gives the -wal and -shm
		// files the mode of the database file.
		if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
			f.Close()
		} else if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("signer: %w", err)
		}
		dsn = path + "?" + pragmas + "&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("signer: open database: %w", err)
	}
	if path == ":memory:" {
		db.SetMaxOpenConns(1) // the database lives in its one connection
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	} else {
		db.SetMaxOpenConns(8)
	}
	d := &DB{db: db}
	if err := d.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

func (d *DB) migrate(ctx context.Context) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("signer: migrate: %w", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("signer: migrate: %w", err)
	}
	switch {
	case v == schemaVersion:
		return nil
	case v > schemaVersion:
		return fmt.Errorf("signer: database schema version %d is newer than this signet-signer (%d)", v, schemaVersion)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("signer: migrate: %w", err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return fmt.Errorf("signer: migrate: %w", err)
	}
	return tx.Commit()
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error {
	var one int
	return d.db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// aliasRecord is one passphrase alias: the scrypt salt and the check value
// sealed under the key-encryption key it derives.
type aliasRecord struct {
	alias, kdf  string
	salt, check []byte
}

func (d *DB) getAlias(ctx context.Context, alias string) (aliasRecord, bool, error) {
	r := aliasRecord{alias: alias}
	err := d.db.QueryRowContext(ctx, "SELECT kdf, salt, check_value FROM aliases WHERE alias = ?", alias).
		Scan(&r.kdf, &r.salt, &r.check)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("signer: read alias %s: %w", alias, err)
	}
	return r, true, nil
}

// addAlias stores r unless the alias exists (another process may have
// created it first; the caller re-reads).
func (d *DB) addAlias(ctx context.Context, r aliasRecord, now time.Time) error {
	_, err := d.db.ExecContext(ctx,
		"INSERT INTO aliases (alias, kdf, salt, check_value, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (alias) DO NOTHING",
		r.alias, r.kdf, r.salt, r.check, now.UnixNano())
	if err != nil {
		return fmt.Errorf("signer: store alias %s: %w", r.alias, err)
	}
	return nil
}

// aliasUse is an alias and how many keys are wrapped under it.
type aliasUse struct {
	alias string
	keys  int
}

func (d *DB) aliasesInUse(ctx context.Context) ([]aliasUse, error) {
	rows, err := d.db.QueryContext(ctx, "SELECT alias, COUNT(*) FROM keys GROUP BY alias ORDER BY alias")
	if err != nil {
		return nil, fmt.Errorf("signer: list aliases: %w", err)
	}
	defer rows.Close()
	var out []aliasUse
	for rows.Next() {
		var u aliasUse
		if err := rows.Scan(&u.alias, &u.keys); err != nil {
			return nil, fmt.Errorf("signer: list aliases: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// keyRecord is one row of the keys table.
type keyRecord struct {
	id, gun, role, algorithm string
	public                   []byte
	alias                    string
	wrappedDEK, sealed       []byte
	createdAt                time.Time
}

const keyColumns = "id, gun, role, algorithm, public, alias, wrapped_dek, sealed, created_at"

func scanKey(s interface{ Scan(...any) error }) (keyRecord, error) {
	var r keyRecord
	var created int64
	err := s.Scan(&r.id, &r.gun, &r.role, &r.algorithm, &r.public, &r.alias, &r.wrappedDEK, &r.sealed, &created)
	r.createdAt = time.Unix(0, created).UTC()
	return r, err
}

var errKeyExists = errors.New("signer: key ID already stored")

func (d *DB) putKey(ctx context.Context, r keyRecord) error {
	res, err := d.db.ExecContext(ctx,
		"INSERT INTO keys ("+keyColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
		r.id, r.gun, r.role, r.algorithm, r.public, r.alias, r.wrappedDEK, r.sealed, r.createdAt.UnixNano())
	if err != nil {
		return fmt.Errorf("signer: store key: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errKeyExists
	}
	return nil
}

func (d *DB) getKey(ctx context.Context, id string) (keyRecord, bool, error) {
	r, err := scanKey(d.db.QueryRowContext(ctx, "SELECT "+keyColumns+" FROM keys WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("signer: read key: %w", err)
	}
	return r, true, nil
}

// publicRecord is what a listing needs of a key, sealed or token-held.
type publicRecord struct {
	id, algorithm string
	public        []byte
}

// listKeys lists the keys of gun and role, sealed and token-held, newest
// first.
func (d *DB) listKeys(ctx context.Context, gun, role string) ([]publicRecord, error) {
	rows, err := d.db.QueryContext(ctx,
		"SELECT id, algorithm, public, created_at FROM keys WHERE gun = ? AND role = ?"+
			" UNION ALL SELECT id, algorithm, public, created_at FROM token_keys WHERE gun = ? AND role = ?"+
			" ORDER BY created_at DESC, id DESC", gun, role, gun, role)
	if err != nil {
		return nil, fmt.Errorf("signer: list keys: %w", err)
	}
	defer rows.Close()
	var out []publicRecord
	for rows.Next() {
		var r publicRecord
		var created int64
		if err := rows.Scan(&r.id, &r.algorithm, &r.public, &created); err != nil {
			return nil, fmt.Errorf("signer: list keys: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("signer: list keys: %w", err)
	}
	return out, nil
}

// tokenKeyRecord is one row of the token_keys table: a key generated inside
// a PKCS#11 token, found there again by its label and object ID.
type tokenKeyRecord struct {
	id, gun, role, algorithm string
	public                   []byte
	token, label             string // token: its URI without module path or PIN
	objectID                 []byte
	createdAt                time.Time
}

const tokenKeyColumns = "id, gun, role, algorithm, public, token, label, object_id, created_at"

func (d *DB) putTokenKey(ctx context.Context, r tokenKeyRecord) error {
	res, err := d.db.ExecContext(ctx,
		"INSERT INTO token_keys ("+tokenKeyColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
		r.id, r.gun, r.role, r.algorithm, r.public, r.token, r.label, r.objectID, r.createdAt.UnixNano())
	if err != nil {
		return fmt.Errorf("signer: store token key: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errKeyExists
	}
	return nil
}

func (d *DB) getTokenKey(ctx context.Context, id string) (tokenKeyRecord, bool, error) {
	r := tokenKeyRecord{}
	var created int64
	err := d.db.QueryRowContext(ctx, "SELECT "+tokenKeyColumns+" FROM token_keys WHERE id = ?", id).
		Scan(&r.id, &r.gun, &r.role, &r.algorithm, &r.public, &r.token, &r.label, &r.objectID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("signer: read token key: %w", err)
	}
	r.createdAt = time.Unix(0, created).UTC()
	return r, true, nil
}

// tokenKeyCount counts the token-held keys, by token.
func (d *DB) tokenKeyCount(ctx context.Context) (map[string]int, error) {
	rows, err := d.db.QueryContext(ctx, "SELECT token, COUNT(*) FROM token_keys GROUP BY token ORDER BY token")
	if err != nil {
		return nil, fmt.Errorf("signer: count token keys: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var tok string
		var n int
		if err := rows.Scan(&tok, &n); err != nil {
			return nil, fmt.Errorf("signer: count token keys: %w", err)
		}
		out[tok] = n
	}
	return out, rows.Err()
}

// keysNotUnder returns up to limit keys with IDs above after, in ID
// order, whose alias is not alias.
func (d *DB) keysNotUnder(ctx context.Context, alias, after string, limit int) ([]keyRecord, error) {
	return d.queryKeys(ctx, "SELECT "+keyColumns+" FROM keys WHERE alias <> ? AND id > ? ORDER BY id LIMIT ?", alias, after, limit)
}

func (d *DB) queryKeys(ctx context.Context, query string, args ...any) ([]keyRecord, error) {
	rows, err := d.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("signer: list keys: %w", err)
	}
	defer rows.Close()
	var out []keyRecord
	for rows.Next() {
		r, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("signer: list keys: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("signer: list keys: %w", err)
	}
	return out, nil
}

// rewrap replaces the wrapped data key of one key, if it is still the one
// the caller read (compare and swap): one statement, so a reader sees the
// old (alias, wrapped key) pair or the new one, never a mix. It reports
// whether the row changed.
func (d *DB) rewrap(ctx context.Context, id, oldAlias string, oldWrapped []byte, newAlias string, newWrapped []byte) (bool, error) {
	res, err := d.db.ExecContext(ctx,
		"UPDATE keys SET alias = ?, wrapped_dek = ? WHERE id = ? AND alias = ? AND wrapped_dek = ?",
		newAlias, newWrapped, id, oldAlias, oldWrapped)
	if err != nil {
		return false, fmt.Errorf("signer: rewrap key %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("signer: rewrap key %s: %w", id, err)
	}
	return n == 1, nil
}

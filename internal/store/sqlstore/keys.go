package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/store"
)

// The custody core's records (custody.Storage): private_keys and
// key_aliases (migration 0002), and the settings row the embedded
// custodian of earlier releases kept its key-encryption key in.

var _ custody.Storage = (*Store)(nil)

const keyColumns = `key_id, gun, role, algorithm, public, purpose, owner, format, alias, wrapped_dek, sealed,
token, label, object_id, created_at, retired_at`

type scanner interface{ Scan(dest ...any) error }

func scanKey(row scanner) (custody.Record, error) {
	var (
		r       custody.Record
		created dbTime
		retired nullTime
		purpose string
	)
	err := row.Scan(&r.ID, &r.GUN, &r.Role, &r.Algorithm, &r.Public, &purpose, &r.Owner,
		&r.Seal.Format, &r.Seal.Alias, &r.Seal.WrappedDEK, &r.Seal.Sealed,
		&r.Token.Token, &r.Token.Label, &r.Token.ObjectID, &created, &retired)
	if err != nil {
		return custody.Record{}, err
	}
	r.Purpose, r.CreatedAt, r.RetiredAt = custody.Purpose(purpose), created.t, retired.t
	return r, nil
}

// nullTime scans a time column that may be NULL (the zero time).
type nullTime struct{ t time.Time }

func (n *nullTime) Scan(src any) error {
	if src == nil {
		n.t = time.Time{}
		return nil
	}
	var d dbTime
	err := d.Scan(src)
	n.t = d.t
	return err
}

// PutKey implements custody.Storage. A record without CreatedAt is stamped
// with the Store's clock.
func (s *Store) PutKey(ctx context.Context, r custody.Record) error {
	if r.ID == "" {
		return errors.New("sqlstore: put key: empty key ID")
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now()
	}
	var retired any
	if !r.RetiredAt.IsZero() {
		retired = s.d.timeArg(storeTime(r.RetiredAt))
	}
	_, err := s.w.ExecContext(ctx, s.d.q(`INSERT INTO private_keys (`+keyColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.ID, r.GUN, r.Role, r.Algorithm, nonNil(r.Public), string(r.Purpose), r.Owner,
		r.Seal.Format, r.Seal.Alias, nonNil(r.Seal.WrappedDEK), nonNil(r.Seal.Sealed),
		r.Token.Token, r.Token.Label, nonNil(r.Token.ObjectID), s.d.timeArg(storeTime(r.CreatedAt)), retired)
	if err != nil {
		if s.d.isUnique(err) {
			return fmt.Errorf("sqlstore: put key %s: %w", r.ID, store.ErrConflict)
		}
		return fmt.Errorf("sqlstore: put key %s: %w", r.ID, err)
	}
	return nil
}

// GetKey implements custody.Storage.
func (s *Store) GetKey(ctx context.Context, id string) (custody.Record, error) {
	r, err := scanKey(s.r.QueryRowContext(ctx, s.d.q(`SELECT `+keyColumns+` FROM private_keys WHERE key_id = ?`), id))
	if err != nil {
		return custody.Record{}, fmt.Errorf("sqlstore: get key %s: %w", id, notFound(err))
	}
	return r, nil
}

// ListKeys implements custody.Storage.
func (s *Store) ListKeys(ctx context.Context, f custody.Filter) ([]custody.Record, error) {
	var where []string
	var args []any
	for _, c := range []struct{ col, v string }{{"gun", f.GUN}, {"role", f.Role}, {"purpose", string(f.Purpose)}, {"owner", f.Owner}} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	if !f.IncludeRetired {
		where = append(where, "retired_at IS NULL")
	}
	q := `SELECT ` + keyColumns + ` FROM private_keys`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, seq DESC"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	return s.queryKeys(ctx, q, args...)
}

// SealedKeys implements custody.Storage.
func (s *Store) SealedKeys(ctx context.Context, after string, limit int) ([]custody.Record, error) {
	return s.queryKeys(ctx, `SELECT `+keyColumns+` FROM private_keys WHERE token = '' AND key_id > ? ORDER BY key_id LIMIT ?`, after, limit)
}

func (s *Store) queryKeys(ctx context.Context, query string, args ...any) ([]custody.Record, error) {
	rows, err := s.r.QueryContext(ctx, s.d.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list keys: %w", err)
	}
	defer rows.Close()
	var out []custody.Record
	for rows.Next() {
		r, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list keys: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list keys: %w", err)
	}
	return out, nil
}

// Reseal implements custody.Storage: one UPDATE that applies only while the
// seal is the one the caller read, so a reader sees the old seal or the new
// one, never a mix.
func (s *Store) Reseal(ctx context.Context, old, next custody.Record) (bool, error) {
	if old.ID != next.ID {
		return false, fmt.Errorf("sqlstore: reseal: key %s is not %s", next.ID, old.ID)
	}
	res, err := s.w.ExecContext(ctx, s.d.q(`UPDATE private_keys
SET format = ?, alias = ?, wrapped_dek = ?, sealed = ?, purpose = ?, owner = ?
WHERE key_id = ? AND token = '' AND format = ? AND alias = ? AND wrapped_dek = ? AND sealed = ?`),
		next.Seal.Format, next.Seal.Alias, nonNil(next.Seal.WrappedDEK), nonNil(next.Seal.Sealed), string(next.Purpose), next.Owner,
		old.ID, old.Seal.Format, old.Seal.Alias, nonNil(old.Seal.WrappedDEK), nonNil(old.Seal.Sealed))
	if err != nil {
		return false, fmt.Errorf("sqlstore: reseal key %s: %w", old.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlstore: reseal key %s: %w", old.ID, err)
	}
	return n == 1, nil
}

// RetireKey implements custody.Storage.
func (s *Store) RetireKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, s.d.q(`UPDATE private_keys SET retired_at = ? WHERE key_id = ? AND retired_at IS NULL`),
		s.d.timeArg(storeTime(at)), id)
	if err != nil {
		return fmt.Errorf("sqlstore: retire key %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: retire key %s: %w", id, err)
	} else if n == 0 {
		var one int
		if err := s.r.QueryRowContext(ctx, s.d.q(`SELECT 1 FROM private_keys WHERE key_id = ?`), id).Scan(&one); err != nil {
			return fmt.Errorf("sqlstore: retire key %s: %w", id, notFound(err))
		}
	}
	return nil
}

// DeleteKey implements custody.Storage.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, s.d.q(`DELETE FROM private_keys WHERE key_id = ?`), id)
	if err != nil {
		return fmt.Errorf("sqlstore: delete key %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: delete key %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("sqlstore: delete key %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// GetAlias implements custody.Storage.
func (s *Store) GetAlias(ctx context.Context, name string) (custody.Alias, error) {
	a := custody.Alias{Name: name}
	var created dbTime
	err := s.r.QueryRowContext(ctx, s.d.q(`SELECT kdf, salt, check_value, created_at FROM key_aliases WHERE alias = ?`), name).
		Scan(&a.KDF, &a.Salt, &a.Check, &created)
	if err != nil {
		return custody.Alias{}, fmt.Errorf("sqlstore: get alias %s: %w", name, notFound(err))
	}
	a.CreatedAt = created.t
	return a, nil
}

// AddAlias implements custody.Storage.
func (s *Store) AddAlias(ctx context.Context, a custody.Alias) error {
	if a.CreatedAt.IsZero() {
		a.CreatedAt = s.now()
	}
	_, err := s.w.ExecContext(ctx, s.d.q(`INSERT INTO key_aliases (alias, kdf, salt, check_value, created_at)
VALUES (?, ?, ?, ?, ?) ON CONFLICT (alias) DO NOTHING`),
		a.Name, a.KDF, nonNil(a.Salt), nonNil(a.Check), s.d.timeArg(storeTime(a.CreatedAt)))
	if err != nil {
		return fmt.Errorf("sqlstore: add alias %s: %w", a.Name, err)
	}
	return nil
}

// Usage implements custody.Storage.
func (s *Store) Usage(ctx context.Context) ([]custody.Usage, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT alias, format, token, COUNT(*) FROM private_keys GROUP BY alias, format, token ORDER BY alias, format, token`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: count keys: %w", err)
	}
	defer rows.Close()
	var out []custody.Usage
	for rows.Next() {
		var u custody.Usage
		if err := rows.Scan(&u.Alias, &u.Format, &u.Token, &u.Keys); err != nil {
			return nil, fmt.Errorf("sqlstore: count keys: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: count keys: %w", err)
	}
	return out, nil
}

// legacyKEKSetting is where the embedded custodian of releases up to
// de57e35 kept its key-encryption key's salt and check value.
const legacyKEKSetting = "kek.scrypt.v1"

// LegacyKEK implements custody.Storage.
func (s *Store) LegacyKEK(ctx context.Context) ([]byte, error) {
	var v []byte
	err := s.r.QueryRowContext(ctx, s.d.q(`SELECT value FROM settings WHERE name = ?`), legacyKEKSetting).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlstore: legacy key-encryption settings: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: legacy key-encryption settings: %w", err)
	}
	return nonNil(v), nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

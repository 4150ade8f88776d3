package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/signet-trust/signet/internal/store"
)

// PutKey implements store.KeyStore. A record without CreatedAt is stamped
// with the Store's clock.
func (s *Store) PutKey(ctx context.Context, rec store.KeyRecord) error {
	if rec.ID == "" {
		return errors.New("sqlstore: put key: empty key ID")
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = s.now()
	}
	_, err := s.w.ExecContext(ctx, s.d.q(`INSERT INTO private_keys (key_id, gun, role, algorithm, public, sealed, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`),
		rec.ID, rec.GUN, rec.Role, rec.Algorithm, nonNil(rec.Public), nonNil(rec.Sealed), s.d.timeArg(storeTime(rec.CreatedAt)))
	if err != nil {
		if s.d.isUnique(err) {
			return fmt.Errorf("sqlstore: put key %s: %w", rec.ID, store.ErrConflict)
		}
		return fmt.Errorf("sqlstore: put key %s: %w", rec.ID, err)
	}
	return nil
}

const keyColumns = `key_id, gun, role, algorithm, public, sealed, created_at`

type scanner interface{ Scan(dest ...any) error }

func scanKey(row scanner) (store.KeyRecord, error) {
	var (
		k       store.KeyRecord
		created dbTime
	)
	if err := row.Scan(&k.ID, &k.GUN, &k.Role, &k.Algorithm, &k.Public, &k.Sealed, &created); err != nil {
		return store.KeyRecord{}, err
	}
	k.CreatedAt = created.t
	return k, nil
}

// GetKey implements store.KeyStore.
func (s *Store) GetKey(ctx context.Context, id string) (store.KeyRecord, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, s.d.q(`SELECT `+keyColumns+` FROM private_keys WHERE key_id = ?`), id))
	if err != nil {
		return store.KeyRecord{}, fmt.Errorf("sqlstore: get key %s: %w", id, notFound(err))
	}
	return k, nil
}

// ListKeys implements store.KeyStore.
func (s *Store) ListKeys(ctx context.Context, gun, role string) ([]store.KeyRecord, error) {
	rows, err := s.r.QueryContext(ctx, s.d.q(`SELECT `+keyColumns+` FROM private_keys
WHERE gun = ? AND role = ? ORDER BY created_at DESC, seq DESC`), gun, role)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list keys: %w", err)
	}
	defer rows.Close()
	var out []store.KeyRecord
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list keys: %w", err)
	}
	return out, nil
}

// GetSetting implements store.KeyStore.
func (s *Store) GetSetting(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := s.r.QueryRowContext(ctx, s.d.q(`SELECT value FROM settings WHERE name = ?`), name).Scan(&v)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get setting %q: %w", name, notFound(err))
	}
	return nonNil(v), nil
}

// PutSetting implements store.KeyStore.
func (s *Store) PutSetting(ctx context.Context, name string, value []byte) error {
	_, err := s.w.ExecContext(ctx, s.d.q(`INSERT INTO settings (name, value) VALUES (?, ?)`), name, nonNil(value))
	if err != nil {
		if s.d.isUnique(err) {
			return fmt.Errorf("sqlstore: put setting %q: %w", name, store.ErrConflict)
		}
		return fmt.Errorf("sqlstore: put setting %q: %w", name, err)
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

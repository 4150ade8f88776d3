package sqlstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/store"
)

// UpdateMany implements store.MetaStore. Files with an empty SHA256 get it
// computed; a SHA256 that does not match Data is refused.
func (s *Store) UpdateMany(ctx context.Context, gun string, files []store.File) error {
	_, err := s.updateMany(ctx, gun, files, nil)
	return err
}

// UpdateManyAudited implements store.AuditedMetaStore: UpdateMany, with
// entry stored as a pending audit log entry in the same transaction.
func (s *Store) UpdateManyAudited(ctx context.Context, gun string, files []store.File, entry []byte) (int64, error) {
	if entry == nil {
		return 0, fmt.Errorf("sqlstore: update %q: no audit entry", gun)
	}
	if len(files) == 0 {
		return 0, fmt.Errorf("sqlstore: update %q: an audited update without files", gun)
	}
	return s.updateMany(ctx, gun, files, entry)
}

func (s *Store) updateMany(ctx context.Context, gun string, files []store.File, entry []byte) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("sqlstore: update %q: %w", gun, classify(err))
	}
	if len(files) == 0 {
		return 0, nil
	}
	fs := make([]store.File, len(files))
	for i, f := range files {
		if f.GUN != "" && f.GUN != gun {
			return 0, fmt.Errorf("sqlstore: update %q: file of GUN %q in the batch", gun, f.GUN)
		}
		if f.Role == "" {
			return 0, fmt.Errorf("sqlstore: update %q: file without a role", gun)
		}
		sum := sha256.Sum256(f.Data)
		h := hex.EncodeToString(sum[:])
		if f.SHA256 == "" {
			f.SHA256 = h
		} else if f.SHA256 != h {
			return 0, fmt.Errorf("sqlstore: update %q: %s version %d: SHA256 does not match the data", gun, f.Role, f.Version)
		}
		if f.Data == nil {
			f.Data = []byte{}
		}
		fs[i] = f
	}
	// One order for every writer, so that concurrent batches take their
	// row locks (PostgreSQL) in the same order and cannot deadlock.
	slices.SortFunc(fs, func(a, b store.File) int {
		return cmp.Or(strings.Compare(a.Role, b.Role), cmp.Compare(a.Version, b.Version))
	})
	now := s.d.timeArg(storeTime(s.now()))

	var appendID int64
	err := s.groupTx(ctx, func(tx *sql.Tx) error { // group.go
		for _, f := range fs {
			// Advance the head only if the new version is greater; zero
			// rows affected means a version >= f.Version is stored. On
			// PostgreSQL this waits for a concurrent writer of the same
			// head and then sees its committed version.
			res, err := s.txExec(ctx, tx, queryAdvanceHead,
				gun, f.Role, f.Version, s.d.timeArg(storeTime(f.Expires)))
			if err != nil {
				return s.oldVersion(err, f)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("%s version %d: %w", f.Role, f.Version, store.ErrOldVersion)
			}
			if _, err := s.txExec(ctx, tx, queryInsertFile,
				gun, f.Role, f.Version, f.Data, f.SHA256, s.d.timeArg(storeTime(f.Expires)), now); err != nil {
				return s.oldVersion(err, f)
			}
		}
		locked := false
		for _, f := range fs {
			if f.Role != "timestamp" {
				continue
			}
			if !locked && s.d.lockChangefeed != "" {
				if _, err := tx.ExecContext(ctx, s.d.lockChangefeed); err != nil {
					return err
				}
				locked = true
			}
			if _, err := s.txExec(ctx, tx, queryInsertChange,
				now, gun, f.Version, f.SHA256, store.CategoryUpdate); err != nil {
				return err
			}
		}
		if entry != nil {
			ids, err := s.AppendAudit(ctx, tx, [][]byte{entry})
			if err != nil {
				return err
			}
			appendID = ids[0]
		}
		return s.notify(ctx, tx, gun)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlstore: update %q: %w", gun, classify(err))
	}
	return appendID, nil
}

// oldVersion maps a unique violation to store.ErrOldVersion.
func (s *Store) oldVersion(err error, f store.File) error {
	if s.d.isUnique(err) {
		return fmt.Errorf("%s version %d: %w (%v)", f.Role, f.Version, store.ErrOldVersion, err)
	}
	return err
}

const fileColumns = `gun, role, version, data, sha256, expires, created_at`

func scanFile(row scanner) (store.File, error) {
	var (
		f                store.File
		expires, created dbTime
	)
	if err := row.Scan(&f.GUN, &f.Role, &f.Version, &f.Data, &f.SHA256, &expires, &created); err != nil {
		return store.File{}, err
	}
	if f.Data == nil {
		f.Data = []byte{}
	}
	f.Expires, f.CreatedAt = expires.t, created.t
	return f, nil
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// Statements of UpdateMany (prepared once, see prepareWrites).
const (
	// Advance the head only if the new version is greater; zero rows
	// affected means a version >= the new one is stored.
	queryAdvanceHead = `INSERT INTO tuf_heads (gun, role, version, expires) VALUES (?, ?, ?, ?)
ON CONFLICT (gun, role) DO UPDATE SET version = excluded.version, expires = excluded.expires
WHERE excluded.version > tuf_heads.version`
	queryInsertFile = `INSERT INTO tuf_files (gun, role, version, data, sha256, expires, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`
	queryInsertChange = `INSERT INTO changefeed (created_at, gun, version, sha256, category) VALUES (?, ?, ?, ?, ?)`
)

// GetCurrent implements store.MetaStore.
func (s *Store) GetCurrent(ctx context.Context, gun, role string) (store.File, error) {
	f, err := scanFile(s.queryRow(ctx, `SELECT `+fileColumns+` FROM tuf_files
WHERE gun = ? AND role = ? ORDER BY version DESC LIMIT 1`, gun, role))
	if err != nil {
		return store.File{}, fmt.Errorf("sqlstore: get %q %s: %w", gun, role, classify(notFound(err)))
	}
	return f, nil
}

// GetVersion implements store.MetaStore.
func (s *Store) GetVersion(ctx context.Context, gun, role string, version int) (store.File, error) {
	f, err := scanFile(s.queryRow(ctx, `SELECT `+fileColumns+` FROM tuf_files
WHERE gun = ? AND role = ? AND version = ?`, gun, role, version))
	if err != nil {
		return store.File{}, fmt.Errorf("sqlstore: get %q %s version %d: %w", gun, role, version, classify(notFound(err)))
	}
	return f, nil
}

// GetChecksum implements store.MetaStore.
func (s *Store) GetChecksum(ctx context.Context, gun, role, sha256hex string) (store.File, error) {
	f, err := scanFile(s.queryRow(ctx, `SELECT `+fileColumns+` FROM tuf_files
WHERE sha256 = ? AND gun = ? AND role = ? ORDER BY version DESC LIMIT 1`, sha256hex, gun, role))
	if err != nil {
		return store.File{}, fmt.Errorf("sqlstore: get %q %s sha256 %s: %w", gun, role, sha256hex, classify(notFound(err)))
	}
	return f, nil
}

// Delete implements store.MetaStore.
func (s *Store) Delete(ctx context.Context, gun string) (bool, error) {
	deleted, _, err := s.deleteGUN(ctx, gun, nil)
	return deleted, err
}

// DeleteAudited implements store.AuditedMetaStore: Delete, with entry
// stored as a pending audit log entry in the same transaction when
// something was removed.
func (s *Store) DeleteAudited(ctx context.Context, gun string, entry []byte) (bool, int64, error) {
	if entry == nil {
		return false, 0, fmt.Errorf("sqlstore: delete %q: no audit entry", gun)
	}
	return s.deleteGUN(ctx, gun, entry)
}

func (s *Store) deleteGUN(ctx context.Context, gun string, entry []byte) (bool, int64, error) {
	var (
		deleted  bool
		appendID int64
	)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.d.q(`DELETE FROM tuf_heads WHERE gun = ?`), gun); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.d.q(`DELETE FROM tuf_files WHERE gun = ?`), gun)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		deleted = true
		if s.d.lockChangefeed != "" {
			if _, err := tx.ExecContext(ctx, s.d.lockChangefeed); err != nil {
				return err
			}
		}
		if _, err = tx.ExecContext(ctx, s.d.q(`INSERT INTO changefeed (created_at, gun, version, sha256, category) VALUES (?, ?, 0, '', ?)`),
			s.d.timeArg(storeTime(s.now())), gun, store.CategoryDeletion); err != nil {
			return err
		}
		if entry != nil {
			ids, err := s.AppendAudit(ctx, tx, [][]byte{entry})
			if err != nil {
				return err
			}
			appendID = ids[0]
		}
		return s.notify(ctx, tx, gun)
	})
	if err != nil {
		return false, 0, fmt.Errorf("sqlstore: delete %q: %w", gun, classify(err))
	}
	return deleted, appendID, nil
}

// Changes implements store.MetaStore. records 0 returns no records.
func (s *Store) Changes(ctx context.Context, gun string, changeID int64, records int) ([]store.Change, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: changes: %w", classify(err))
	}
	backwards := changeID < 0 || records < 0
	limit := int64(records)
	if limit < 0 {
		limit = -limit
		if limit < 0 { // math.MinInt64
			limit = math.MaxInt64
		}
	}
	if limit == 0 {
		return nil, nil
	}
	var (
		where []string
		args  []any
	)
	switch {
	case !backwards:
		where, args = append(where, "id > ?"), append(args, changeID)
	case changeID > 0:
		where, args = append(where, "id < ?"), append(args, changeID)
	}
	if gun != "" {
		where, args = append(where, "gun = ?"), append(args, gun)
	}
	query := `SELECT id, created_at, gun, version, sha256, category FROM changefeed`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	if backwards {
		query += ` ORDER BY id DESC LIMIT ?`
	} else {
		query += ` ORDER BY id ASC LIMIT ?`
	}
	args = append(args, limit)

	rows, err := s.r.QueryContext(ctx, s.d.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: changes: %w", classify(err))
	}
	defer rows.Close()
	var out []store.Change
	for rows.Next() {
		var (
			c       store.Change
			created dbTime
		)
		if err := rows.Scan(&c.ID, &created, &c.GUN, &c.Version, &c.SHA256, &c.Category); err != nil {
			return nil, fmt.Errorf("sqlstore: changes: %w", classify(err))
		}
		c.CreatedAt = created.t
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: changes: %w", classify(err))
	}
	if backwards {
		slices.Reverse(out)
	}
	return out, nil
}

// Expiring implements store.MetaStore. Files come soonest expiry first.
func (s *Store) Expiring(ctx context.Context, role string, before time.Time, limit int) ([]store.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: expiring: %w", classify(err))
	}
	if limit <= 0 {
		return nil, nil
	}
	// Expires are stored to the microsecond: compare with before rounded up.
	cutoff := storeTime(before)
	if cutoff.Before(before) {
		cutoff = cutoff.Add(time.Microsecond)
	}
	rows, err := s.r.QueryContext(ctx, s.d.q(`SELECT f.gun, f.role, f.version, f.sha256, f.expires, f.created_at
FROM tuf_heads h JOIN tuf_files f ON f.gun = h.gun AND f.role = h.role AND f.version = h.version
WHERE h.role = ? AND h.expires < ?
ORDER BY h.expires, h.gun
LIMIT ?`), role, s.d.timeArg(cutoff), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: expiring: %w", classify(err))
	}
	defer rows.Close()
	var out []store.File
	for rows.Next() {
		var (
			f                store.File
			expires, created dbTime
		)
		if err := rows.Scan(&f.GUN, &f.Role, &f.Version, &f.SHA256, &expires, &created); err != nil {
			return nil, fmt.Errorf("sqlstore: expiring: %w", classify(err))
		}
		f.Expires, f.CreatedAt = expires.t, created.t
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: expiring: %w", classify(err))
	}
	return out, nil
}

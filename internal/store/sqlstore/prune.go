package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/signet-trust/signet/internal/store"
)

// pruneGUNBatch bounds the (GUN, role) pairs one PruneVersions call looks at;
// pruneDeleteChunk the IDs of one DELETE statement.
const (
	pruneGUNBatch    = 100
	pruneDeleteChunk = 500
)

// PruneVersions implements store.MetaStore. Each GUN is pruned in a
// transaction of its own that first locks the GUN's heads, so an update of
// that GUN waits for it (and the current snapshot and timestamp it read
// stay current until the files go).
func (s *Store) PruneVersions(ctx context.Context, p store.Retention, from string, limit int) (string, int, error) {
	if p.KeepVersions < 1 {
		return "", 0, fmt.Errorf("sqlstore: prune: KeepVersions is %d, must be at least 1", p.KeepVersions)
	}
	if p.Referenced == nil {
		return "", 0, errors.New("sqlstore: prune: no Referenced function")
	}
	if limit < 1 {
		return "", 0, fmt.Errorf("sqlstore: prune: limit %d, must be at least 1", limit)
	}
	// GUNs with a role (other than root) holding more versions than kept.
	rows, err := s.r.QueryContext(ctx, s.d.q(`SELECT gun FROM tuf_files
WHERE gun >= ? AND role <> 'root'
GROUP BY gun, role HAVING COUNT(*) > ?
ORDER BY gun, role LIMIT ?`), from, p.KeepVersions, pruneGUNBatch)
	if err != nil {
		return "", 0, fmt.Errorf("sqlstore: prune: %w", classify(err))
	}
	var (
		guns  []string
		pairs int
	)
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			rows.Close()
			return "", 0, fmt.Errorf("sqlstore: prune: %w", classify(err))
		}
		pairs++
		if len(guns) == 0 || guns[len(guns)-1] != g {
			guns = append(guns, g)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", 0, fmt.Errorf("sqlstore: prune: %w", classify(err))
	}
	full := pairs == pruneGUNBatch

	var (
		errs    []error
		deleted int
	)
	after := func(gun string) (string, int, error) {
		var next sql.NullString
		if err := s.r.QueryRowContext(ctx, s.d.q(`SELECT MIN(gun) FROM tuf_heads WHERE gun > ?`), gun).Scan(&next); err != nil {
			errs = append(errs, fmt.Errorf("sqlstore: prune: %w", classify(err)))
			return gun, deleted, errors.Join(errs...)
		}
		return next.String, deleted, errors.Join(errs...)
	}
	for i, gun := range guns {
		n, complete, err := s.pruneGUN(ctx, p, gun, limit-deleted)
		deleted += n
		if err != nil {
			if ctx.Err() != nil {
				return gun, deleted, fmt.Errorf("sqlstore: prune %q: %w", gun, classify(ctx.Err()))
			}
			errs = append(errs, fmt.Errorf("sqlstore: prune %q (left whole): %w", gun, classify(err)))
			continue
		}
		if !complete {
			return gun, deleted, errors.Join(errs...)
		}
		if deleted >= limit {
			if i+1 < len(guns) {
				return guns[i+1], deleted, errors.Join(errs...)
			}
			if !full {
				return "", deleted, errors.Join(errs...)
			}
			return after(gun)
		}
	}
	if !full || len(guns) == 0 {
		return "", deleted, errors.Join(errs...)
	}
	return after(guns[len(guns)-1])
}

// pruneGUN removes up to budget superseded files of gun and reports whether
// it removed all there were.
func (s *Store) pruneGUN(ctx context.Context, p store.Retention, gun string, budget int) (deleted int, complete bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		heads := map[string]int{}
		rows, err := tx.QueryContext(ctx, s.d.q(`SELECT role, version FROM tuf_heads WHERE gun = ?`+s.d.forUpdate), gun)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				role string
				v    int
			)
			if err := rows.Scan(&role, &v); err != nil {
				rows.Close()
				return err
			}
			heads[role] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}

		protected := map[string]bool{}
		for _, role := range []string{"snapshot", "timestamp"} {
			v, ok := heads[role]
			if !ok {
				continue
			}
			var data []byte
			if err := tx.QueryRowContext(ctx, s.d.q(`SELECT data FROM tuf_files WHERE gun = ? AND role = ? AND version = ?`),
				gun, role, v).Scan(&data); err != nil {
				return fmt.Errorf("current %s: %w", role, err)
			}
			refs, err := p.Referenced(role, data)
			if err != nil {
				return fmt.Errorf("references of the current %s: %w", role, err)
			}
			for _, r := range refs {
				protected[strings.ToLower(r)] = true
			}
		}

		rows, err = tx.QueryContext(ctx, s.d.q(`SELECT id, role, version, sha256 FROM tuf_files
WHERE gun = ? AND role <> 'root' ORDER BY role, version DESC`), gun)
		if err != nil {
			return err
		}
		var (
			ids  []int64
			seen = map[string]int{}
		)
		complete = true
		for rows.Next() {
			var (
				id        int64
				role, sum string
				version   int
			)
			if err := rows.Scan(&id, &role, &version, &sum); err != nil {
				rows.Close()
				return err
			}
			seen[role]++
			if seen[role] <= p.KeepVersions || version >= heads[role] || protected[sum] {
				continue
			}
			if len(ids) == budget {
				complete = false
				break
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for len(ids) > 0 {
			chunk := ids[:min(len(ids), pruneDeleteChunk)]
			ids = ids[len(chunk):]
			args := make([]any, len(chunk))
			for i, id := range chunk {
				args[i] = id
			}
			res, err := tx.ExecContext(ctx, s.d.q(`DELETE FROM tuf_files WHERE id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)`), args...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			deleted += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return deleted, complete, nil
}

package sqlstore

import (
	"context"
	"fmt"
	"strings"
)

// Repositories lists the GUNs with trust data (a current root), in name
// order: those after after whose name contains search (exactly, as bytes;
// "" for all), at most limit. It is the web dashboard's repository list.
func (s *Store) Repositories(ctx context.Context, search, after string, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: repositories: %w", classify(err))
	}
	if limit <= 0 {
		return nil, nil
	}
	// The index of (role, gun) holds one entry per repository, in name
	// order: a page is read from it in order, and a search tests each
	// name there, without reading the table.
	q := `SELECT gun FROM tuf_heads INDEXED_BY WHERE role = 'root' AND gun > ?`
	args := []any{after}
	if search != "" {
		// A substring test of the bytes: instr on SQLite (its LIKE folds
		// case), strpos on PostgreSQL.
		fn := "strpos"
		if s.d.name == "sqlite" {
			fn = "instr"
		}
		q += ` AND ` + fn + `(gun, ?) > 0`
		args = append(args, search)
	}
	indexed := ""
	if s.d.name == "sqlite" {
		indexed = "INDEXED BY tuf_heads_role_gun"
	}
	q = strings.Replace(q, "INDEXED_BY", indexed, 1)
	q += ` ORDER BY gun LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, s.d.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: repositories: %w", classify(err))
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, fmt.Errorf("sqlstore: repositories: %w", classify(err))
		}
		if search == "" || strings.Contains(g, search) {
			out = append(out, g)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: repositories: %w", classify(err))
	}
	return out, nil
}

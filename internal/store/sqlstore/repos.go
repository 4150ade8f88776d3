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
	// "role || ''" keeps the planner off the (role, expires) index: the
	// primary key (gun, role) gives the names in order, a page at a time,
	// where the other index would sort every repository first.
	q := `SELECT gun FROM tuf_heads WHERE gun > ? AND role || '' = 'root'`
	args := []any{after}
	if search != "" {
		q += ` AND gun LIKE ? ESCAPE '\'`
		esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(search)
		args = append(args, "%"+esc+"%")
	}
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
		// LIKE folds ASCII case on SQLite: keep exact matches only.
		if search == "" || strings.Contains(g, search) {
			out = append(out, g)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: repositories: %w", classify(err))
	}
	return out, nil
}

package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// migrations holds the schema, one directory per dialect, one file per
// step named NNNN_summary.sql. Steps are applied in order, each in its own
// transaction together with its row in signet_schema_version. A step is
// never edited once released; changes come as new steps. Numbers may have
// gaps (steps are reserved for branches developed in parallel); a step
// missing from a database is applied even when a later one is there.
//
//go:embed migrations
var migrations embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(dir string) ([]migration, error) {
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		if !ok || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("sqlstore: bad migration name %q", name)
		}
		v, err := strconv.Atoi(num)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("sqlstore: bad migration name %q", name)
		}
		b, err := fs.ReadFile(migrations, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("sqlstore: migrations %q and %q have one number", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// migrate brings the schema up to date.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations(s.d.migrations)
	if err != nil {
		return err
	}
	for {
		done, err := s.migrateStep(ctx, ms)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// migrateStep applies the next migration, if any, in one transaction, and
// reports whether the schema was already current.
func (s *Store) migrateStep(ctx context.Context, ms []migration) (done bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if s.d.lockMigrate != "" {
			if _, err := tx.ExecContext(ctx, s.d.lockMigrate); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS signet_schema_version (
	version INTEGER PRIMARY KEY,
	name    TEXT    NOT NULL
)`); err != nil {
			return err
		}
		applied := map[int]bool{}
		rows, err := tx.QueryContext(ctx, `SELECT version FROM signet_schema_version`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			applied[v] = true
		}
		if err := rows.Close(); err != nil {
			return err
		}
		known := map[int]bool{}
		for _, m := range ms {
			known[m.version] = true
		}
		for v := range applied {
			if !known[v] {
				return fmt.Errorf("database schema version %d is newer than this program knows", v)
			}
		}
		next := -1
		for i, m := range ms {
			if !applied[m.version] {
				next = i
				break
			}
		}
		if next < 0 {
			done = true
			return nil
		}
		m := ms[next]
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		_, err = tx.ExecContext(ctx, s.d.q(`INSERT INTO signet_schema_version (version, name) VALUES (?, ?)`), m.version, m.name)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlstore: migrate %s schema: %w", s.d.name, err)
	}
	return done, nil
}

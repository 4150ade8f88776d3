package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache keeps prepared statements per database and query, so the hot
// queries are parsed by the database once per connection pool, not on
// every call. Statements are closed with the Store.
type stmtCache struct {
	mu sync.Mutex
	m  map[stmtKey]*sql.Stmt
}

type stmtKey struct {
	db    *sql.DB
	query string
}

func (c *stmtCache) get(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	k := stmtKey{db, query}
	c.mu.Lock()
	st := c.m[k]
	c.mu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[stmtKey]*sql.Stmt{}
	}
	if old := c.m[k]; old != nil {
		st.Close()
		return old, nil
	}
	c.m[k] = st
	return st, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}

// queryRow runs a cached read statement (query in '?' form).
func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.stmts.get(ctx, s.r, s.d.q(query))
	if err != nil {
		// Let QueryRowContext report the preparation error through Scan.
		return s.r.QueryRowContext(ctx, s.d.q(query), args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// txStmt returns the statement prepareWrites prepared for q (already in
// the dialect's form) bound to tx, or nil when there is none. It never
// prepares on the pool itself: for SQLite the transaction holds the only
// write connection, so preparing there would wait for it forever.
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	s.stmts.mu.Lock()
	st := s.stmts.m[stmtKey{s.w, q}]
	s.stmts.mu.Unlock()
	if st == nil {
		return nil
	}
	return tx.StmtContext(ctx, st)
}

// txExec runs a write statement (query in '?' form) inside tx, reusing
// the statement prepared by prepareWrites when there is one.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	q := s.d.q(query)
	if st := s.txStmt(ctx, tx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

// txQueryRow runs a query inside tx as txExec runs a statement.
func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	q := s.d.q(query)
	if st := s.txStmt(ctx, tx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

// txQuery runs a query returning rows inside tx as txExec runs a statement.
func (s *Store) txQuery(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	q := s.d.q(query)
	if st := s.txStmt(ctx, tx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, q, args...)
}

// Write statements prepared once at open, outside any transaction.
var writeQueries = []string{queryAdvanceHead, queryInsertFile, queryInsertChange,
	// The audit log's, run on every write of metadata and every integration.
	queryAppendAudit1, queryTakePending, queryAuditTile, queryInsertAuditEntry1, queryPutAuditTile,
	queryGrowAuditState, queryGrowAuditStateCheckpoint}

func (s *Store) prepareWrites(ctx context.Context) error {
	for _, q := range append(append(writeQueries, s.serviceWriteQueries()...), auditStateQuery+s.d.forUpdate) {
		if _, err := s.stmts.get(ctx, s.w, s.d.q(q)); err != nil {
			return err
		}
	}
	return nil
}

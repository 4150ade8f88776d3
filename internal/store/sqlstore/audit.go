package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/audit"
)

// AuditLog is the audit.Store of this database: the audit log's pending
// entries, entries, tiles, state and integrator lease (migration 0003).
//
// Appends go into audit_pending, each in the transaction that stores it:
// AddPending's own, or the transaction of the change the entry records
// (AppendAudit), so that the change and its entry commit or roll back
// together. The integrator moves pending entries into audit_entries under
// the lock of the audit_state row, which is where integrations of several
// processes serialize.
type AuditLog struct{ s *Store }

var _ audit.Store = (*AuditLog)(nil)

// AuditLog returns the audit log store of this database.
func (s *Store) AuditLog() *AuditLog { return &AuditLog{s: s} }

// leaseName is the row of the integrator lease.
const leaseName = "integrator"

// auditInsertChunk bounds the rows of one multi-row INSERT (PostgreSQL
// takes at most 65535 parameters per statement).
const auditInsertChunk = 500

// AppendAudit stores entries as pending audit log entries inside tx, a
// write transaction of this Store (the one that makes the change the
// entries record): they commit or roll back with it. It returns their
// append IDs in the order of entries. After tx commits, tell the log
// (audit.Log.Kick) so it integrates them at once rather than at its next
// poll.
func (s *Store) AppendAudit(ctx context.Context, tx *sql.Tx, entries [][]byte) ([]int64, error) {
	for i, e := range entries {
		if len(e) > audit.MaxEntrySize {
			return nil, fmt.Errorf("sqlstore: audit entry %d: %w", i, audit.ErrEntryTooLarge)
		}
	}
	ids := make([]int64, 0, len(entries))
	for start := 0; start < len(entries); start += auditInsertChunk {
		chunk := entries[start:min(start+auditInsertChunk, len(entries))]
		q := queryAppendAudit1
		if len(chunk) > 1 {
			q = "INSERT INTO audit_pending (data) VALUES " + strings.TrimSuffix(strings.Repeat("(?),", len(chunk)), ",") + " RETURNING id"
		}
		args := make([]any, len(chunk))
		for i, e := range chunk {
			if e == nil {
				e = []byte{}
			}
			args[i] = e
		}
		rows, err := s.txQuery(ctx, tx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: append audit entries: %w", err)
		}
		got := make([]int64, 0, len(chunk))
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			got = append(got, id)
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("sqlstore: append audit entries: %w", err)
		}
		if len(got) != len(chunk) {
			return nil, fmt.Errorf("sqlstore: append audit entries: %d IDs for %d rows", len(got), len(chunk))
		}
		// IDs are assigned in the order of the VALUES rows; RETURNING
		// need not list them in that order.
		slices.Sort(got)
		ids = append(ids, got...)
	}
	s.noteAppended() // inline.go
	return ids, nil
}

// AddPending implements audit.Store.
func (a *AuditLog) AddPending(ctx context.Context, entries [][]byte) ([]int64, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	var ids []int64
	err := a.s.groupTx(ctx, func(tx *sql.Tx) error {
		var err error
		ids, err = a.s.AppendAudit(ctx, tx, entries)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: append audit entries: %w", err)
	}
	return ids, nil
}

const (
	auditStateQuery   = `SELECT size, root, checkpoint_size, checkpoint FROM audit_state WHERE id = 1`
	queryAppendAudit1 = `INSERT INTO audit_pending (data) VALUES (?) RETURNING id`
	queryTakePending  = `DELETE FROM audit_pending WHERE id IN
(SELECT id FROM audit_pending ORDER BY id LIMIT ?) RETURNING id, data`
	queryAuditTile         = `SELECT hashes FROM audit_tiles WHERE level = ? AND idx = ?`
	queryInsertAuditEntry1 = `INSERT INTO audit_entries (idx, append_id, data) VALUES (?, ?, ?)`
	queryPutAuditTile      = `INSERT INTO audit_tiles (level, idx, hashes) VALUES (?, ?, ?)
ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes`
	queryGrowAuditState           = `UPDATE audit_state SET size = ?, root = ? WHERE id = 1 AND size = ?`
	queryGrowAuditStateCheckpoint = `UPDATE audit_state SET size = ?, root = ?, checkpoint = ?, checkpoint_size = ? WHERE id = 1 AND size = ?`
)

func scanAuditState(row scanner) (audit.TreeState, error) {
	var (
		st         audit.TreeState
		size, cpSz int64
		root, cp   []byte
	)
	if err := row.Scan(&size, &root, &cpSz, &cp); err != nil {
		return audit.TreeState{}, err
	}
	if len(root) != audit.HashSize || size < 0 || cpSz < 0 {
		return audit.TreeState{}, fmt.Errorf("sqlstore: the audit state row is malformed (root of %d bytes, size %d, checkpoint size %d)", len(root), size, cpSz)
	}
	st.Size, st.Root, st.CheckpointSize = uint64(size), audit.Hash(root), uint64(cpSz)
	if cp != nil {
		st.Checkpoint = cp
	}
	return st, nil
}

// State implements audit.Store.
func (a *AuditLog) State(ctx context.Context) (audit.TreeState, error) {
	st, err := scanAuditState(a.s.queryRow(ctx, auditStateQuery))
	if err != nil {
		return audit.TreeState{}, fmt.Errorf("sqlstore: audit state: %w", err)
	}
	return st, nil
}

// errNoBatch rolls back an integration that writes nothing.
var errNoBatch = errors.New("no batch")

// Integrate implements audit.Store.
func (a *AuditLog) Integrate(ctx context.Context, limit int, fn audit.IntegrateFunc) (bool, error) {
	if limit < 1 {
		return false, errors.New("sqlstore: integrate: limit must be at least 1")
	}
	s := a.s
	// On SQLite an integration joins the group commit of concurrent
	// metadata updates: one durable commit for both.
	err := s.groupTx(ctx, func(tx *sql.Tx) error { return s.integrateIn(ctx, tx, limit, fn) })
	if errors.Is(err, errNoBatch) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlstore: integrate audit entries: %w", err)
	}
	return true, nil
}

// integrateIn runs one integration in tx (Integrate, and the inline
// integration at the end of a write: inline.go); errNoBatch when fn
// writes nothing.
func (s *Store) integrateIn(ctx context.Context, tx *sql.Tx, limit int, fn audit.IntegrateFunc) error {
	st, err := scanAuditState(s.txQueryRow(ctx, tx, auditStateQuery+s.d.forUpdate))
	if err != nil {
		return fmt.Errorf("lock audit state: %w", err)
	}
	pending, err := s.takePending(ctx, tx, limit)
	if err != nil {
		return err
	}
	tile := func(level int, index uint64) ([]byte, error) {
		var b []byte
		err := s.txQueryRow(ctx, tx, queryAuditTile, level, int64(index)).Scan(&b)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, audit.ErrNotFound
		}
		return b, err
	}
	b, err := fn(ctx, st, pending, tile)
	if err != nil {
		return err
	}
	if b == nil {
		return errNoBatch
	}
	if err := checkBatch(st, pending, b); err != nil {
		return err
	}
	if err := s.insertEntries(ctx, tx, b.Entries); err != nil {
		return err
	}
	for _, t := range b.Tiles {
		if _, err := s.txExec(ctx, tx, queryPutAuditTile, t.Level, int64(t.Index), t.Hashes); err != nil {
			return fmt.Errorf("write tile %d/%d: %w", t.Level, t.Index, err)
		}
	}
	var res sql.Result
	if b.Checkpoint != nil {
		res, err = s.txExec(ctx, tx, queryGrowAuditStateCheckpoint, int64(b.Size), b.Root[:], b.Checkpoint, int64(b.Size), int64(st.Size))
	} else {
		res, err = s.txExec(ctx, tx, queryGrowAuditState, int64(b.Size), b.Root[:], int64(st.Size))
	}
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return audit.ErrConflict
	}
	return nil
}

// takePending deletes up to limit pending entries, lowest IDs first, and
// returns them in ID order. Only what this statement deleted is returned,
// so an entry committed meanwhile is never removed unseen.
func (s *Store) takePending(ctx context.Context, tx *sql.Tx, limit int) ([]audit.Pending, error) {
	rows, err := s.txQuery(ctx, tx, queryTakePending, limit)
	if err != nil {
		return nil, fmt.Errorf("take pending audit entries: %w", err)
	}
	defer rows.Close()
	var out []audit.Pending
	for rows.Next() {
		var p audit.Pending
		if err := rows.Scan(&p.ID, &p.Data); err != nil {
			return nil, err
		}
		if p.Data == nil {
			p.Data = []byte{}
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b audit.Pending) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// checkBatch holds an integration to the Store contract: every entry taken
// is integrated, in order, from the old size on.
func checkBatch(st audit.TreeState, pending []audit.Pending, b *audit.Batch) error {
	if len(b.Entries) != len(pending) {
		return fmt.Errorf("the batch integrates %d entries of the %d taken", len(b.Entries), len(pending))
	}
	for i, e := range b.Entries {
		if e.Index != st.Size+uint64(i) || e.AppendID != pending[i].ID {
			return fmt.Errorf("batch entry %d is index %d of append %d, want index %d of append %d", i, e.Index, e.AppendID, st.Size+uint64(i), pending[i].ID)
		}
	}
	if b.Size != st.Size+uint64(len(b.Entries)) {
		return fmt.Errorf("the batch's size %d is not %d + %d entries", b.Size, st.Size, len(b.Entries))
	}
	for _, t := range b.Tiles {
		if t.Level < 0 || len(t.Hashes) == 0 || len(t.Hashes)%audit.HashSize != 0 || len(t.Hashes) > audit.TileWidth*audit.HashSize {
			return fmt.Errorf("tile %d/%d of %d bytes", t.Level, t.Index, len(t.Hashes))
		}
	}
	return nil
}

func (s *Store) insertEntries(ctx context.Context, tx *sql.Tx, entries []audit.Entry) error {
	for start := 0; start < len(entries); start += auditInsertChunk {
		chunk := entries[start:min(start+auditInsertChunk, len(entries))]
		q := queryInsertAuditEntry1
		if len(chunk) > 1 {
			q = "INSERT INTO audit_entries (idx, append_id, data) VALUES " + strings.TrimSuffix(strings.Repeat("(?, ?, ?),", len(chunk)), ",")
		}
		args := make([]any, 0, 3*len(chunk))
		for _, e := range chunk {
			args = append(args, int64(e.Index), e.AppendID, e.Data)
		}
		if _, err := s.txExec(ctx, tx, q, args...); err != nil {
			return fmt.Errorf("write audit entries: %w", err)
		}
	}
	return nil
}

// PutCheckpoint implements audit.Store.
func (a *AuditLog) PutCheckpoint(ctx context.Context, size uint64, note []byte) (bool, error) {
	var n int64
	err := a.s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, a.s.d.q(`UPDATE audit_state SET checkpoint = ?, checkpoint_size = ?
WHERE id = 1 AND (checkpoint IS NULL OR checkpoint_size < ?) AND size >= ?`), note, int64(size), int64(size), int64(size))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlstore: store audit checkpoint: %w", err)
	}
	return n == 1, nil
}

// Tile implements audit.Store.
func (a *AuditLog) Tile(ctx context.Context, level int, index uint64) ([]byte, error) {
	var b []byte
	err := a.s.queryRow(ctx, `SELECT hashes FROM audit_tiles WHERE level = ? AND idx = ?`, level, int64(index)).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, audit.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: audit tile %d/%d: %w", level, index, err)
	}
	return b, nil
}

// Entries implements audit.Store.
func (a *AuditLog) Entries(ctx context.Context, start uint64, count int) ([]audit.Entry, error) {
	if count <= 0 {
		return nil, nil
	}
	st, err := a.s.stmts.get(ctx, a.s.r, a.s.d.q(`SELECT idx, append_id, data FROM audit_entries WHERE idx >= ? AND idx < ? ORDER BY idx`))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: audit entries: %w", err)
	}
	rows, err := st.QueryContext(ctx, int64(start), int64(start)+int64(count))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: audit entries: %w", err)
	}
	defer rows.Close()
	out := make([]audit.Entry, 0, count)
	for rows.Next() {
		var (
			e   audit.Entry
			idx int64
		)
		if err := rows.Scan(&idx, &e.AppendID, &e.Data); err != nil {
			return nil, fmt.Errorf("sqlstore: audit entries: %w", err)
		}
		if e.Data == nil {
			e.Data = []byte{}
		}
		e.Index = uint64(idx)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: audit entries: %w", err)
	}
	return out, nil
}

// IndexOf implements audit.Store.
func (a *AuditLog) IndexOf(ctx context.Context, appendID int64) (uint64, error) {
	var idx int64
	err := a.s.queryRow(ctx, `SELECT idx FROM audit_entries WHERE append_id = ?`, appendID).Scan(&idx)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, audit.ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("sqlstore: audit index of append %d: %w", appendID, err)
	}
	return uint64(idx), nil
}

// PendingCount implements audit.Store.
func (a *AuditLog) PendingCount(ctx context.Context) (int64, error) {
	var n int64
	if err := a.s.queryRow(ctx, `SELECT COUNT(*) FROM audit_pending`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore: count pending audit entries: %w", err)
	}
	return n, nil
}

// AcquireLease implements audit.Store. On PostgreSQL the lease's expiry is
// on the database's clock, which every replica shares; on SQLite (one
// machine) on the Store's clock.
func (a *AuditLog) AcquireLease(ctx context.Context, holder string, ttl time.Duration) (bool, error) {
	if holder == "" || ttl <= 0 {
		return false, errors.New("sqlstore: a lease needs a holder and a positive TTL")
	}
	s := a.s
	var (
		q    string
		args []any
	)
	if s.d.name == "postgres" {
		q = `INSERT INTO audit_lease (name, holder, expires_at)
VALUES (?, ?, clock_timestamp() + ?::bigint * interval '1 microsecond')
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE audit_lease.holder = excluded.holder OR audit_lease.expires_at < clock_timestamp()
RETURNING holder`
		args = []any{leaseName, holder, ttl.Microseconds()}
	} else {
		now := storeTime(s.now())
		q = `INSERT INTO audit_lease (name, holder, expires_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE audit_lease.holder = excluded.holder OR audit_lease.expires_at < ?
RETURNING holder`
		args = []any{leaseName, holder, s.d.timeArg(now.Add(ttl)), s.d.timeArg(now)}
	}
	var got bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.d.q(q), args...)
		if err != nil {
			return err
		}
		got = rows.Next()
		rows.Close()
		return rows.Err()
	})
	if err != nil {
		return false, fmt.Errorf("sqlstore: audit integrator lease: %w", err)
	}
	return got, nil
}

// ReleaseLease implements audit.Store.
func (a *AuditLog) ReleaseLease(ctx context.Context, holder string) error {
	err := a.s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, a.s.d.q(`DELETE FROM audit_lease WHERE name = ? AND holder = ?`), leaseName, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: release audit integrator lease: %w", err)
	}
	return nil
}

package sqlstore

import (
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/audit/audittest"
	"github.com/signet-trust/signet/internal/store"
)

func TestAuditLogSQLite(t *testing.T) {
	audittest.RunStore(t, func(t *testing.T) audit.Store { return openT(t, sqliteURL(t)).AuditLog() })
}

func TestAuditLogSQLiteMemory(t *testing.T) {
	audittest.RunStore(t, func(t *testing.T) audit.Store { return openT(t, "sqlite::memory:").AuditLog() })
}

func TestAuditLogPostgres(t *testing.T) {
	base := postgresURL(t)
	audittest.RunStore(t, func(t *testing.T) audit.Store { return openT(t, postgresSchema(t, base)).AuditLog() })
}

// TestAppendAuditInTransaction: an entry appended inside a write
// transaction commits and rolls back with the change it records.
func TestAppendAuditInTransaction(t *testing.T) {
	run := func(t *testing.T, s *Store) {
		ctx := t.Context()
		boom := errors.New("the change failed")
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO settings (name, value) VALUES (?, ?)`), "rolled-back", []byte("x")); err != nil {
				return err
			}
			if _, err := s.AppendAudit(ctx, tx, [][]byte{[]byte(`{"a":1}`)}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("tx: %v", err)
		}
		if n, err := s.AuditLog().PendingCount(ctx); err != nil || n != 0 {
			t.Fatalf("after rollback: %d pending, %v", n, err)
		}
		var ids []int64
		err = s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO settings (name, value) VALUES (?, ?)`), "committed", []byte("x")); err != nil {
				return err
			}
			var err error
			ids, err = s.AppendAudit(ctx, tx, [][]byte{[]byte(`{"a":2}`), []byte(`{"a":3}`)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.AuditLog().PendingCount(ctx); err != nil || n != 2 || len(ids) != 2 || ids[1] <= ids[0] {
			t.Fatalf("after commit: %d pending, IDs %v, %v", n, ids, err)
		}
		// Too large for an entry bundle: refused, nothing stored.
		err = s.tx(ctx, func(tx *sql.Tx) error {
			_, err := s.AppendAudit(ctx, tx, [][]byte{make([]byte, audit.MaxEntrySize+1)})
			return err
		})
		if !errors.Is(err, audit.ErrEntryTooLarge) {
			t.Fatalf("oversized entry: %v", err)
		}
		if n, _ := s.AuditLog().PendingCount(ctx); n != 2 {
			t.Fatalf("oversized entry stored: %d pending", n)
		}
	}
	t.Run("SQLite", func(t *testing.T) { run(t, openT(t, sqliteURL(t))) })
	t.Run("Postgres", func(t *testing.T) { run(t, openT(t, postgresSchema(t, postgresURL(t)))) })
}

// TestMissingMigrationApplied: migration numbers may have gaps (numbers
// reserved for work in parallel), and a step missing from a database is
// applied even when a later one is recorded.
func TestMissingMigrationApplied(t *testing.T) {
	u := sqliteURL(t)
	s, err := Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, q := range []string{
		`DROP TABLE audit_pending`, `DROP TABLE audit_entries`, `DROP TABLE audit_tiles`,
		`DROP TABLE audit_state`, `DROP TABLE audit_lease`,
		`DELETE FROM signet_schema_version WHERE name = '0003_audit.sql'`,
		`INSERT INTO signet_schema_version (version, name) VALUES (1000, 'from the future')`,
	} {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.Close()
	// A version this program does not know is still refused.
	if s, err := Open(ctx, u); err == nil || !strings.Contains(err.Error(), "newer") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open with an unknown version: %v", err)
	}
	db, err := sql.Open("sqlite", strings.TrimPrefix(u, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM signet_schema_version WHERE version = 1000`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = openT(t, u)
	if st, err := s.AuditLog().State(ctx); err != nil || st.Size != 0 {
		t.Fatalf("the audit tables were not created again: %+v, %v", st, err)
	}
}

// TestAuditedWrites: UpdateManyAudited and DeleteAudited store the write
// and its audit entry together, or neither: a refused version stores no
// entry, an entry too large stores no file, a delete of nothing stores no
// entry.
func TestAuditedWrites(t *testing.T) {
	run := func(t *testing.T, s *Store) {
		ctx := t.Context()
		pending := func() int64 {
			t.Helper()
			n, err := s.AuditLog().PendingCount(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		const gun = "example.com/audited"
		id, err := s.UpdateManyAudited(ctx, gun, []store.File{testFile(gun, "timestamp", 1, "ts1")}, []byte(`{"e":1}`))
		if err != nil || id <= 0 || pending() != 1 {
			t.Fatalf("audited update: ID %d, %v, %d pending", id, err, pending())
		}
		// A version already stored: refused, no entry.
		if _, err := s.UpdateManyAudited(ctx, gun, []store.File{testFile(gun, "timestamp", 1, "ts1-again")}, []byte(`{"e":2}`)); !errors.Is(err, store.ErrOldVersion) {
			t.Fatalf("old version: %v", err)
		}
		if pending() != 1 {
			t.Fatalf("a refused update stored its entry: %d pending", pending())
		}
		// An entry that cannot be stored: the files are not stored either.
		if _, err := s.UpdateManyAudited(ctx, gun, []store.File{testFile(gun, "timestamp", 2, "ts2")}, make([]byte, audit.MaxEntrySize+1)); !errors.Is(err, audit.ErrEntryTooLarge) {
			t.Fatalf("oversized entry: %v", err)
		}
		if f, err := s.GetCurrent(ctx, gun, "timestamp"); err != nil || f.Version != 1 {
			t.Fatalf("after a failed entry the current timestamp is %d (%v), want 1", f.Version, err)
		}
		if _, err := s.UpdateManyAudited(ctx, gun, nil, []byte(`{}`)); err == nil {
			t.Fatal("an audited update without files was accepted")
		}
		if _, err := s.UpdateManyAudited(ctx, gun, []store.File{testFile(gun, "timestamp", 3, "ts3")}, nil); err == nil {
			t.Fatal("an audited update without an entry was accepted")
		}
		// Deletes.
		if deleted, id, err := s.DeleteAudited(ctx, "example.com/nothing", []byte(`{"d":0}`)); err != nil || deleted || id != 0 || pending() != 1 {
			t.Fatalf("delete of nothing: %v %d %v, %d pending", deleted, id, err, pending())
		}
		if deleted, id, err := s.DeleteAudited(ctx, gun, []byte(`{"d":1}`)); err != nil || !deleted || id <= 0 || pending() != 2 {
			t.Fatalf("delete: %v %d %v, %d pending", deleted, id, err, pending())
		}
		if _, err := s.GetCurrent(ctx, gun, "timestamp"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	}
	t.Run("SQLite", func(t *testing.T) { run(t, openT(t, sqliteURL(t))) })
	t.Run("Postgres", func(t *testing.T) { run(t, openT(t, postgresSchema(t, postgresURL(t)))) })
}

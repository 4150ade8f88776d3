package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/signet-trust/signet/internal/audit"
)

// Inline integration (SQLite): a write transaction that appended audit
// log entries (a publish, a delete, a service event) integrates them, with
// whatever else is pending, at its end, in the same transaction: the write,
// its entries, the tiles they change and the checkpoint signed over them
// become durable in one commit, where otherwise the integrator would run a
// second transaction (and a second fsync) right after it. The log decides
// whether to (audit.Inliner: it must lead and know the tree's edge); when it
// declines, or its integration fails, the write commits as before with its
// entries pending for the integrator. The integration runs in a savepoint
// of its own, so its failure never takes the write with it.
//
// PostgreSQL's writers commit concurrently, each on its own connection; an
// integration there would serialise them on the tree's lock, so the
// integrator integrates on its own and SetInline does nothing.

type inlineState struct {
	inliner atomic.Pointer[inlinerBox]
	// appended is set when the writer's transaction appends audit entries;
	// SQLite has one writer connection, so one transaction at a time.
	appended atomic.Bool
}

type inlinerBox struct{ in audit.Inliner }

var _ audit.InlineStore = (*AuditLog)(nil)

// SetInline implements audit.InlineStore (SQLite only; see above).
func (a *AuditLog) SetInline(in audit.Inliner) {
	if a.s.d != sqliteDialect {
		return
	}
	if in == nil {
		a.s.inline.inliner.Store(nil)
		return
	}
	a.s.inline.inliner.Store(&inlinerBox{in: in})
}

// beginWrite marks the start of a write transaction on SQLite.
func (s *Store) beginWrite() {
	if s.d == sqliteDialect {
		s.inline.appended.Store(false)
	}
}

// noteAppended records that the writer's transaction appended entries.
func (s *Store) noteAppended() {
	if s.d == sqliteDialect {
		s.inline.appended.Store(true)
	}
}

// integrateInline runs the inline integration at the end of tx, before its
// commit, when tx appended audit entries and the log takes it. It returns
// the function to call with the commit's outcome, or nil when nothing ran.
func (s *Store) integrateInline(ctx context.Context, tx *sql.Tx) func(error) {
	if s.d != sqliteDialect || !s.inline.appended.Swap(false) {
		return nil
	}
	box := s.inline.inliner.Load()
	if box == nil {
		return nil
	}
	fn, limit, finish, ok := box.in.Begin()
	if !ok {
		return nil
	}
	// The write's caller may give up while its transaction commits; the
	// integration is the store's work and must not be cut short (an
	// interrupted statement can roll back the whole transaction).
	ctx = context.WithoutCancel(ctx)
	if _, err := tx.ExecContext(ctx, "SAVEPOINT inline"); err != nil {
		finish(fmt.Errorf("sqlstore: inline integration: %w", err))
		return nil
	}
	err := s.integrateIn(ctx, tx, max(limit, 1), fn)
	if err != nil {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO inline"); rerr != nil {
			// The transaction is gone with it: its commit fails and the
			// write's caller hears so.
			err = errors.Join(err, rerr)
		}
	}
	if _, rerr := tx.ExecContext(ctx, "RELEASE inline"); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		finish(err)
		return nil
	}
	return finish
}

// finishInline tells the log how the commit of an inline integration
// ended.
func finishInline(finish func(error), commitErr error) {
	if finish != nil {
		finish(commitErr)
	}
}

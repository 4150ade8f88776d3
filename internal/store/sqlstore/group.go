package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// Group commit (SQLite): every write goes through the one writer
// connection, one transaction at a time, and each durable commit costs a
// write of the WAL frames and an fsync. Metadata updates that arrive while
// another is committing wait anyway; groupTx lets them share one
// transaction instead, each in a savepoint of its own, so that one commit
// (one fsync) makes the whole group durable.
//
// What each caller sees is unchanged: its function runs alone in its
// savepoint, an error rolls back just its own changes (and is its answer),
// and a nil answer means its changes are committed, synchronous=FULL, like
// any other transaction's. If anything about the shared transaction fails
// (a savepoint cannot be rolled back, the commit fails), every caller of
// the group gets the error and nothing of the group is committed.

// maxGroup bounds the updates committed together.
const maxGroup = 64

type groupCommit struct {
	mu      sync.Mutex
	queue   []*groupItem
	leading bool // a goroutine is committing a group

	groups, grouped uint64 // groups of more than one committed; their updates (for tests)
}

type groupItem struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	err  error
	done chan struct{} // closed when err is the answer
	lead chan struct{} // told to commit the next group
	// panicked is what fn panicked with, when it did: its caller panics
	// with it, not the leader that ran it.
	panicked any
}

// groupTx runs fn in a write transaction that may be shared with other
// groupTx callers, as described above; on PostgreSQL, whose writers run
// concurrently on their own connections, it is tx.
func (s *Store) groupTx(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.d != sqliteDialect {
		return s.tx(ctx, fn)
	}
	it := &groupItem{ctx: ctx, fn: fn, done: make(chan struct{}), lead: make(chan struct{}, 1)}
	g := &s.group
	g.mu.Lock()
	g.queue = append(g.queue, it)
	if g.leading {
		g.mu.Unlock()
	} else {
		g.leading = true
		g.mu.Unlock()
		it.lead <- struct{}{}
	}
	// Not ctx.Done: once queued, the update may be committed, and its
	// caller must learn whether it was. The wait is one group's commit.
	select {
	case <-it.done:
	case <-it.lead:
		s.commitGroup()
		<-it.done
	}
	if it.panicked != nil {
		panic(it.panicked)
	}
	return it.err
}

// commitGroup commits the queued updates (the leader's own among them),
// then hands the lead to the first of those queued meanwhile — also when
// an update's function panics, so that the others are not left waiting.
func (s *Store) commitGroup() {
	g := &s.group
	g.mu.Lock()
	n := min(len(g.queue), maxGroup)
	batch := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()

	defer func() {
		g.mu.Lock()
		if len(batch) > 1 {
			g.groups++
			g.grouped += uint64(len(batch))
		}
		if len(g.queue) > 0 {
			g.queue[0].lead <- struct{}{}
		} else {
			g.leading = false
		}
		g.mu.Unlock()
	}()
	s.runGroup(batch)
}

func (s *Store) runGroup(batch []*groupItem) {
	finished := false
	var tx *sql.Tx
	defer func() {
		if !finished && tx != nil {
			tx.Rollback() // a function panicked: free the writer
		}
		for _, it := range batch {
			if !finished && it.err == nil {
				it.err = errGroupAborted
			}
			close(it.done)
		}
	}()
	if len(batch) == 1 {
		it := batch[0]
		it.err = s.tx(it.ctx, it.fn)
		finished = true
		return
	}
	// The shared transaction outlives any one caller's context; each
	// caller's statements still run under its own.
	var err error
	tx, err = s.w.BeginTx(context.WithoutCancel(batch[0].ctx), nil)
	if err != nil {
		tx = nil
		for _, it := range batch {
			it.err = err
		}
		finished = true
		return
	}
	s.groupStatements(tx, batch)
	finished = true
}

// call runs the update's function, catching a panic for its caller.
func (it *groupItem) call(tx *sql.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			it.panicked = p
			err = errGroupAborted
		}
	}()
	return it.fn(tx)
}

// errGroupAborted is the answer of the updates of a group whose commit was
// abandoned because one update's function panicked.
var errGroupAborted = errors.New("sqlstore: group commit abandoned: another update of the group failed unexpectedly; nothing of this update was stored")

// groupStatements runs each update of batch in its savepoint of tx, then
// commits tx, or rolls it back when nothing is left to commit.
func (s *Store) groupStatements(tx *sql.Tx, batch []*groupItem) {
	s.beginWrite()
	var ok []*groupItem
	fail := func(err error) {
		tx.Rollback()
		for _, it := range batch {
			if it.err == nil {
				it.err = err
			}
		}
	}
	for _, it := range batch {
		if err := it.ctx.Err(); err != nil {
			it.err = err
			continue
		}
		if _, err := tx.ExecContext(context.WithoutCancel(it.ctx), "SAVEPOINT grouped"); err != nil {
			fail(fmt.Errorf("group commit: %w", err))
			return
		}
		if err := it.call(tx); err != nil {
			if it.panicked != nil {
				fail(errGroupAborted)
				return
			}
			it.err = err
			// If SQLite rolled the whole transaction back (an interrupted
			// statement, a full disk), the savepoint is gone and so is
			// everything of the group.
			if _, rerr := tx.Exec("ROLLBACK TO grouped"); rerr != nil {
				fail(fmt.Errorf("group commit: after %w: %w", err, rerr))
				return
			}
		}
		if _, err := tx.Exec("RELEASE grouped"); err != nil {
			fail(fmt.Errorf("group commit: %w", err))
			return
		}
		if it.err == nil {
			ok = append(ok, it)
		}
	}
	if len(ok) == 0 {
		tx.Rollback()
		return
	}
	finish := s.integrateInline(batch[0].ctx, tx) // inline.go
	err := tx.Commit()
	finishInline(finish, err)
	if err != nil {
		for _, it := range ok {
			it.err = err
		}
	}
}

package sqlstore

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/store"
)

// runLog starts an audit log's integrator on s until the test ends. Its
// poll and lease are long, so that nothing but a kick or a write's own
// commit integrates while the test runs.
func runLog(t *testing.T, s *Store) *audit.Log {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	l, err := audit.New(audit.Config{Store: s.AuditLog(), Origin: "test.example/audit", Signer: priv, Poll: time.Hour, LeaseTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return l
}

func awaitT(t *testing.T, l *audit.Log, id int64) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	idx, _, err := l.Await(ctx, id)
	if err != nil {
		t.Fatalf("await append %d: %v", id, err)
	}
	return idx
}

// TestInlineIntegration: once the integrator leads and knows the tree's
// edge, a write that appends an entry (one at a time, or grouped with
// others) has it integrated, with a signed checkpoint over it, by the time
// the write returns, in the write's own commit: nothing kicks the
// integrator here, and its poll is an hour. The tree stays what a full
// self-check accepts.
func TestInlineIntegration(t *testing.T) {
	s := openT(t, sqliteURL(t))
	ctx := t.Context()
	l := runLog(t, s)
	const gun = "example.com/inline"

	// The first entries go through the integrator: the edge is not known
	// before its first integration, and a write declines to integrate
	// while the integrator is busy (starting up, or finishing the
	// integration it was kicked for). Once a write integrates its own
	// entry, nothing else runs: the integrator's poll is an hour.
	v := 0
	for {
		v++
		if v > 50 {
			t.Fatalf("after %d writes none integrated its own entry (status %+v)", v-1, l.Status())
		}
		id, err := s.UpdateManyAudited(ctx, gun, []store.File{testFile(gun, "timestamp", v, fmt.Sprintf("ts%d", v))}, fmt.Appendf(nil, `{"n":%d}`, v))
		if err != nil {
			t.Fatal(err)
		}
		if l.Integrated(id) {
			break
		}
		l.Kick()
		awaitT(t, l, id)
		time.Sleep(10 * time.Millisecond)
	}

	first := v
	for v = first + 1; v <= first+10; v++ {
		id, err := s.UpdateManyAudited(ctx, gun, []store.File{testFile(gun, "timestamp", v, fmt.Sprintf("ts%d", v))}, fmt.Appendf(nil, `{"n":%d}`, v))
		if err != nil {
			t.Fatal(err)
		}
		if !l.Integrated(id) {
			t.Fatalf("write %d returned with its entry not integrated (status %+v)", v, l.Status())
		}
	}
	// A delete and an entry appended on its own are integrated the same way.
	if deleted, id, err := s.DeleteAudited(ctx, gun, []byte(`{"d":1}`)); err != nil || !deleted || !l.Integrated(id) {
		t.Fatalf("delete: %v %v, integrated %v", deleted, err, l.Integrated(id))
	}
	app, err := l.Append(ctx, audit.Event{Type: audit.TUFDelete, Actor: audit.Actor{Kind: audit.ActorSystem, Name: "test"}, Subject: audit.Subject{GUN: gun}})
	if err != nil || !l.Integrated(app.ID) {
		t.Fatalf("append: %v, integrated %v", err, l.Integrated(app.ID))
	}

	// Concurrent writers share group commits; each returns integrated.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			g := fmt.Sprintf("example.com/inline-%d", w)
			id, err := s.UpdateManyAudited(ctx, g, []store.File{testFile(g, "timestamp", 1, g)}, fmt.Appendf(nil, `{"w":%d}`, w))
			if err == nil && !l.Integrated(id) {
				// Declined while another integration ran: the integrator
				// (kicked by the one that ran) takes it.
				l.Kick()
				awaitT(t, l, id)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	st := l.Status()
	if st.Inline < 13 {
		t.Fatalf("%d batches integrated inline, want at least 13 (status %+v)", st.Inline, st)
	}
	if n, err := s.AuditLog().PendingCount(ctx); err != nil || n != 0 {
		t.Fatalf("%d entries pending (%v)", n, err)
	}
	tree, err := s.AuditLog().State(ctx)
	if want := uint64(first + 10 + 2 + 16); err != nil || tree.Size != want || tree.CheckpointSize != want {
		t.Fatalf("tree %d entries, checkpoint of %d (%v); want %d and %d", tree.Size, tree.CheckpointSize, err, want, want)
	}
	l.Check(ctx)
	if st := l.Status(); !st.Healthy {
		t.Fatalf("self-check after inline integrations: %s", st.Problem)
	}
}

// failingInliner integrates with a function that fails.
type failingInliner struct {
	mu  sync.Mutex
	got []error
}

var errInline = errors.New("inline integration failed")

func (f *failingInliner) Begin() (audit.IntegrateFunc, int, func(error), bool) {
	fn := func(context.Context, audit.TreeState, []audit.Pending, func(int, uint64) ([]byte, error)) (*audit.Batch, error) {
		return nil, errInline
	}
	return fn, 10, func(err error) { f.mu.Lock(); f.got = append(f.got, err); f.mu.Unlock() }, true
}

// TestInlineIntegrationFails: an inline integration that fails is rolled
// back alone: the write commits with its entry pending, and the log hears
// why. A write that fails stores neither.
func TestInlineIntegrationFails(t *testing.T) {
	s := openT(t, sqliteURL(t))
	ctx := t.Context()
	in := &failingInliner{}
	s.AuditLog().SetInline(in)
	const gun = "example.com/inline-fails"
	if _, err := s.UpdateManyAudited(ctx, gun, []store.File{testFile(gun, "timestamp", 1, "ts1")}, []byte(`{"n":1}`)); err != nil {
		t.Fatalf("write: %v", err)
	}
	if f, err := s.GetCurrent(ctx, gun, "timestamp"); err != nil || f.Version != 1 {
		t.Fatalf("the write was not stored: %v", err)
	}
	if n, err := s.AuditLog().PendingCount(ctx); err != nil || n != 1 {
		t.Fatalf("%d entries pending (%v), want 1", n, err)
	}
	if len(in.got) != 1 || !errors.Is(in.got[0], errInline) {
		t.Fatalf("finish called with %v, want once with the integration's error", in.got)
	}
	// A refused write runs no integration.
	if _, err := s.UpdateManyAudited(ctx, gun, []store.File{testFile(gun, "timestamp", 1, "again")}, []byte(`{"n":2}`)); !errors.Is(err, store.ErrOldVersion) {
		t.Fatalf("old version: %v", err)
	}
	// A write that appends nothing runs none either.
	if err := s.UpdateMany(ctx, gun, []store.File{testFile(gun, "timestamp", 2, "ts2")}); err != nil {
		t.Fatal(err)
	}
	if len(in.got) != 1 {
		t.Fatalf("finish called %d times, want 1", len(in.got))
	}
	if n, _ := s.AuditLog().PendingCount(ctx); n != 1 {
		t.Fatalf("%d entries pending, want 1", n)
	}
}

package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/store"
)

// holdWriter starts a groupTx that blocks until release is called, so that
// the updates started meanwhile queue behind it and commit as one group.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	started, release2 := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.groupTx(context.Background(), func(*sql.Tx) error {
			close(started)
			<-release2
			return nil
		})
	}()
	<-started
	return func() {
		close(release2)
		if err := <-done; err != nil {
			t.Errorf("the held transaction: %v", err)
		}
	}
}

// waitQueued waits until n updates are queued for the next group.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		s.group.mu.Lock()
		q := len(s.group.queue)
		s.group.mu.Unlock()
		if q >= n {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%d updates queued after 30 s; want %d", q, n)
		}
	}
}

// TestGroupCommit commits updates of many repositories as one group, among
// them a batch that fails half-way and one whose context is cancelled:
// each caller gets its own answer, what failed leaves nothing behind, and
// what succeeded is there after reopening.
func TestGroupCommit(t *testing.T) {
	u := sqliteURL(t)
	s, err := Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateMany(t.Context(), "taken", []store.File{testFile("taken", "targets", 1, "first")}); err != nil {
		t.Fatal(err)
	}

	release := holdWriter(t, s)
	const n = 12
	errs := make([]error, n+2)
	var wg sync.WaitGroup
	for i := range n {
		gun := "g" + strconv.Itoa(i)
		wg.Go(func() {
			errs[i] = s.UpdateMany(context.Background(), gun, []store.File{
				testFile(gun, "snapshot", 1, gun+" snapshot"), testFile(gun, "timestamp", 1, gun+" ts"),
			})
		})
	}
	// Snapshot goes in first (files are written in role order), then the
	// targets version already stored fails the batch.
	wg.Go(func() {
		errs[n] = s.UpdateMany(context.Background(), "taken", []store.File{
			testFile("taken", "snapshot", 1, "half"), testFile("taken", "targets", 1, "second"),
		})
	})
	cancelled, cancel := context.WithCancel(context.Background())
	wg.Go(func() {
		errs[n+1] = s.UpdateMany(cancelled, "cancelled", []store.File{testFile("cancelled", "timestamp", 1, "x")})
	})
	waitQueued(t, s, n+2)
	cancel()
	release()
	wg.Wait()

	for i := range n {
		if errs[i] != nil {
			t.Errorf("update of g%d: %v", i, errs[i])
		}
	}
	if !errors.Is(errs[n], store.ErrOldVersion) {
		t.Errorf("the batch with a stored version: %v; want ErrOldVersion", errs[n])
	}
	if !errors.Is(errs[n+1], context.Canceled) {
		t.Errorf("the cancelled update: %v; want context.Canceled", errs[n+1])
	}
	s.group.mu.Lock()
	groups, grouped := s.group.groups, s.group.grouped
	s.group.mu.Unlock()
	if groups != 1 || grouped != n+2 {
		t.Errorf("%d groups of %d updates; want 1 of %d", groups, grouped, n+2)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, u)
	ctx := t.Context()
	for i := range n {
		gun := "g" + strconv.Itoa(i)
		f, err := s.GetCurrent(ctx, gun, "timestamp")
		if err != nil || string(f.Data) != gun+" ts" {
			t.Errorf("%s timestamp after reopening: %q, %v", gun, f.Data, err)
		}
	}
	if _, err := s.GetCurrent(ctx, "taken", "snapshot"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the failed batch left its snapshot: %v", err)
	}
	if f, err := s.GetCurrent(ctx, "taken", "targets"); err != nil || string(f.Data) != "first" {
		t.Errorf("targets of the failed batch: %q, %v", f.Data, err)
	}
	if _, err := s.GetCurrent(ctx, "cancelled", "timestamp"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the cancelled update was stored: %v", err)
	}
	cs, err := s.Changes(ctx, "", 0, 100)
	if err != nil || len(cs) != n {
		t.Errorf("changefeed: %d records, %v; want %d", len(cs), err, n)
	}
}

// TestGroupCommitSameVersion races two writers of the same version of each
// repository through group commits: exactly one of each pair wins.
func TestGroupCommitSameVersion(t *testing.T) {
	s := openT(t, sqliteURL(t))
	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	for i := range 2 * n {
		gun := "g" + strconv.Itoa(i/2)
		wg.Go(func() {
			errs[i] = s.UpdateMany(context.Background(), gun, []store.File{testFile(gun, "timestamp", 1, fmt.Sprint(i))})
		})
	}
	wg.Wait()
	for i := 0; i < 2*n; i += 2 {
		a, b := errs[i], errs[i+1]
		if (a == nil) == (b == nil) || !errors.Is(errors.Join(a, b), store.ErrOldVersion) {
			t.Errorf("g%d: %v and %v; want one success and one ErrOldVersion", i/2, a, b)
		}
	}
}

// TestGroupCommitDurableWithoutClose commits a group in a child process
// that exits without closing the database once every update is
// acknowledged; every acknowledged update must be there.
func TestGroupCommitDurableWithoutClose(t *testing.T) {
	const n = 8
	if path := os.Getenv("SIGNET_SQLSTORE_GROUP_CHILD_DB"); path != "" {
		s, err := Open(context.Background(), "sqlite:"+path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		release := holdWriter(t, s)
		var wg sync.WaitGroup
		var failed sync.Once
		for i := range n {
			gun := "g" + strconv.Itoa(i)
			wg.Go(func() {
				if err := s.UpdateMany(context.Background(), gun, []store.File{testFile(gun, "timestamp", 1, gun)}); err != nil {
					failed.Do(func() { fmt.Fprintln(os.Stderr, err); os.Exit(4) })
				}
			})
		}
		waitQueued(t, s, n)
		release()
		wg.Wait()
		os.Exit(0) // no Close
	}
	path := filepath.Join(t.TempDir(), "signet.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestGroupCommitDurableWithoutClose$")
	cmd.Env = append(os.Environ(), "SIGNET_SQLSTORE_GROUP_CHILD_DB="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	s := openT(t, "sqlite:"+path)
	for i := range n {
		gun := "g" + strconv.Itoa(i)
		if f, err := s.GetCurrent(t.Context(), gun, "timestamp"); err != nil || string(f.Data) != gun {
			t.Errorf("%s after the child exited: %q, %v", gun, f.Data, err)
		}
	}
}

// TestGroupCommitPanic: an update whose function panics in a group takes
// nothing of the group with it into the database, the others are told so,
// and the writer is free for the next update.
func TestGroupCommitPanic(t *testing.T) {
	s := openT(t, sqliteURL(t))
	release := holdWriter(t, s)
	errs := make([]error, 2)
	panicked := make([]any, 2)
	var wg sync.WaitGroup
	run := func(i int, fn func() error) {
		wg.Go(func() {
			defer func() { panicked[i] = recover() }()
			errs[i] = fn()
		})
	}
	run(0, func() error {
		return s.UpdateMany(context.Background(), "g", []store.File{testFile("g", "timestamp", 1, "x")})
	})
	waitQueued(t, s, 1)
	run(1, func() error {
		return s.groupTx(context.Background(), func(*sql.Tx) error { panic("boom") })
	})
	waitQueued(t, s, 2)
	release()
	wg.Wait()
	if panicked[0] != nil || panicked[1] != "boom" {
		t.Fatalf("panics: %v, %v; want only the second caller's own, boom", panicked[0], panicked[1])
	}
	if errs[0] == nil || !errors.Is(errs[0], errGroupAborted) {
		t.Errorf("the update grouped with a panic: %v; want errGroupAborted", errs[0])
	}
	if _, err := s.GetCurrent(t.Context(), "g", "timestamp"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the aborted group's update was stored: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.UpdateMany(context.Background(), "g", []store.File{testFile("g", "timestamp", 1, "y")})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the next update: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the next update still waits after 30 s: the writer was not freed")
	}
}

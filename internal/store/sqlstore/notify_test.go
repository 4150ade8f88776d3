package sqlstore

import (
	"context"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/store"
)

func TestSQLiteHasNoInvalidations(t *testing.T) {
	s := openT(t, "sqlite::memory:")
	if ch := s.Invalidations(t.Context(), nil); ch != nil {
		t.Fatal("Invalidations of a SQLite store is not nil")
	}
}

// TestPostgresInvalidations runs two Stores on one database, as two
// replicas would: each hears of the other's writes and deletions (not of
// its own), is told to drop everything when its listener connects and
// again after the connection is cut, and stops when its context ends.
func TestPostgresInvalidations(t *testing.T) {
	u := postgresSchema(t, postgresURL(t))
	a, b := openT(t, u), openT(t, u)
	ctx := t.Context()
	feedA, feedB := a.Invalidations(ctx, nil), b.Invalidations(ctx, nil)

	next := func(name string, feed <-chan string) string {
		t.Helper()
		select {
		case g, ok := <-feed:
			if !ok {
				t.Fatalf("%s: feed closed", name)
			}
			return g
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: nothing within 10s", name)
		}
		return ""
	}
	want := func(name string, feed <-chan string, gun string) {
		t.Helper()
		if got := next(name, feed); got != gun {
			t.Fatalf("%s: got %q, want %q", name, got, gun)
		}
	}
	quiet := func(name string, feed <-chan string) {
		t.Helper()
		select {
		case g := <-feed:
			t.Fatalf("%s: unexpected %q", name, g)
		case <-time.After(300 * time.Millisecond):
		}
	}
	want("A", feedA, InvalidateAll)
	want("B", feedB, InvalidateAll)

	ts := store.File{Role: "timestamp", Version: 1, Data: []byte("ts 1"), Expires: time.Now().Add(time.Hour)}
	if err := a.UpdateMany(ctx, "example.com/one", []store.File{ts}); err != nil {
		t.Fatal(err)
	}
	want("B", feedB, "example.com/one")
	quiet("A", feedA)

	// A refused update announces nothing.
	if err := b.UpdateMany(ctx, "example.com/one", []store.File{ts}); err == nil {
		t.Fatal("second v1 accepted")
	}
	quiet("A", feedA)

	if _, err := b.Delete(ctx, "example.com/one"); err != nil {
		t.Fatal(err)
	}
	want("A", feedA, "example.com/one")
	quiet("B", feedB)

	// Cut the listening connections: each reconnects and drops everything.
	res, err := a.w.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE application_name = $1 AND datname = current_database()`, ListenerApplicationName)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Fatalf("terminated %d listeners, want 2 (A and B)", n)
	}
	for _, f := range []struct {
		name string
		feed <-chan string
	}{{"A", feedA}, {"B", feedB}} {
		want(f.name, f.feed, InvalidateAll)
	}
	if err := a.UpdateMany(ctx, "example.com/two", []store.File{ts}); err != nil {
		t.Fatal(err)
	}
	want("B", feedB, "example.com/two")

	// The feed closes when its context ends.
	cctx, cancel := context.WithCancel(ctx)
	feedC := a.Invalidations(cctx, nil)
	want("C", feedC, InvalidateAll)
	cancel()
	select {
	case _, ok := <-feedC:
		if ok {
			t.Fatal("feed sent after its context ended")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("feed not closed 10s after its context ended")
	}
}

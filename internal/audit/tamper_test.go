package audit_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/audit/auditclient"
	"github.com/signet-trust/signet/internal/audit/audittest"
)

// builtLog is a log of 600 entries in a SQLite file, closed, with the
// checkpoints signed at 300 and 600 entries.
type builtLog struct {
	path         string
	key          []byte
	cp300, cp600 []byte
	vkey         string
}

func buildLog(t *testing.T, n1, n2 int, eventOf func(int) audit.Event) builtLog {
	t.Helper()
	url := sqliteURL(t)
	s := openStore(t, url)
	key := newKey(t)
	l := newLog(t, s.AuditLog(), key)
	stop := run(t, l)
	b := builtLog{path: strings.TrimPrefix(url, "sqlite:"), key: key, vkey: l.VerifierKey()}
	appendEvents := func(from, to int) []byte {
		awaitAll(t, l, appendEvents(t, l, from, to, eventOf))
		st, err := s.AuditLog().State(t.Context())
		if err != nil || st.CheckpointSize != uint64(to) {
			t.Fatalf("checkpoint of %d entries, want %d (%v)", st.CheckpointSize, to, err)
		}
		return st.Checkpoint
	}
	b.cp300 = appendEvents(0, n1)
	b.cp600 = appendEvents(n1, n1+n2)
	stop()
	s.Close()
	return b
}

func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func execSQL(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestTamperingIsDetected changes the stored log in the ways the issue
// lists, directly in the SQL tables, and checks that the outside verifier
// refuses the served log, and that the server's self-check refuses to go
// on over it (where the server can tell: a consistent rollback or a
// rewritten log is visible only to clients that remember a checkpoint).
func TestTamperingIsDetected(t *testing.T) {
	cases := []struct {
		name string
		// tamper changes the database; it may return a log path to serve
		// instead (a rewritten log).
		tamper func(t *testing.T, b builtLog, db *sql.DB) string
		// verifyErr is in the outside verifier's error.
		verifyErr string
		// serverDetects: the self-check fails.
		serverDetects bool
	}{
		{"EntryChanged", func(t *testing.T, b builtLog, db *sql.DB) string {
			ev := event(999)
			ev.Time = time.Now()
			e, err := ev.Encode()
			if err != nil {
				t.Fatal(err)
			}
			execSQL(t, db, `UPDATE audit_entries SET data = ? WHERE idx = 5`, e)
			return ""
		}, "entry 5 in tile/entries/000 does not match", true},
		{"EntryChangedInPartialBundle", func(t *testing.T, b builtLog, db *sql.DB) string {
			execSQL(t, db, `UPDATE audit_entries SET data = ? WHERE idx = 599`, []byte(`{}`))
			return ""
		}, "entry 599 in tile/entries/002.p/88 does not match", true},
		{"EntryDeleted", func(t *testing.T, b builtLog, db *sql.DB) string {
			execSQL(t, db, `DELETE FROM audit_entries WHERE idx = 300`)
			return ""
		}, "GET tile/entries/001: 404", true},
		{"PairReordered", func(t *testing.T, b builtLog, db *sql.DB) string {
			execSQL(t, db, `UPDATE audit_entries SET idx = -1 WHERE idx = 10`)
			execSQL(t, db, `UPDATE audit_entries SET idx = 10 WHERE idx = 11`)
			execSQL(t, db, `UPDATE audit_entries SET idx = 11 WHERE idx = -1`)
			return ""
		}, "entry 10 in tile/entries/000 does not match", true},
		{"TileChanged", func(t *testing.T, b builtLog, db *sql.DB) string {
			execSQL(t, db, `UPDATE audit_tiles SET hashes = ? || substr(hashes, 33) WHERE level = 0 AND idx = 1`, bytes.Repeat([]byte{1}, 32))
			return ""
		}, "", true},
		{"Truncated", func(t *testing.T, b builtLog, db *sql.DB) string {
			// A consistent rollback to the state at 300 entries, with the
			// checkpoint the log really signed then.
			cp, _ := audit.ParseCheckpoint(b.cp300[:bytes.Index(b.cp300, []byte("\n\n"))+1])
			execSQL(t, db, `DELETE FROM audit_entries WHERE idx >= 300`)
			execSQL(t, db, `DELETE FROM audit_tiles WHERE (level = 0 AND idx > 1) OR level > 0`)
			execSQL(t, db, `UPDATE audit_tiles SET hashes = substr(hashes, 1, 44*32) WHERE level = 0 AND idx = 1`)
			l1, _ := audit.TileRoot(mustTile(t, db, 0, 0))
			execSQL(t, db, `INSERT INTO audit_tiles (level, idx, hashes) VALUES (1, 0, ?)`, l1[:])
			execSQL(t, db, `UPDATE audit_state SET size = 300, root = ?, checkpoint_size = 300, checkpoint = ?`, cp.Root[:], b.cp300)
			return ""
		}, "the log shrank from 600 to 300 entries", false},
		{"CheckpointByAnotherKey", func(t *testing.T, b builtLog, db *sql.DB) string {
			other := newKey(t)
			s, _ := audit.NewNoteSigner(origin, other)
			cp, _ := audit.ParseCheckpoint(b.cp600[:bytes.Index(b.cp600, []byte("\n\n"))+1])
			forged, err := audit.SignCheckpoint(cp, s)
			if err != nil {
				t.Fatal(err)
			}
			execSQL(t, db, `UPDATE audit_state SET checkpoint = ?`, forged)
			return ""
		}, "checkpoint signature", true},
		{"HistoryRewritten", func(t *testing.T, b builtLog, db *sql.DB) string {
			// The same key signs another history: entry 7 differs.
			other := buildLogWithKey(t, b.key, 300, 400, func(i int) audit.Event {
				if i == 7 {
					return event(-7)
				}
				return event(i)
			})
			return other.path
		}, "not consistent with the remembered checkpoint of 600 entries", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := buildLog(t, 300, 300, event)
			// Before tampering the log verifies, against the older
			// checkpoint too.
			verifyServed(t, b.path, b.vkey, b.cp300, true, "")
			path := c.tamper(t, b, rawDB(t, b.path))
			if path == "" {
				path = b.path
			}
			verifyServed(t, path, b.vkey, b.cp600, false, c.verifyErr)

			// The server: a log over the tampered store.
			s := openStore(t, "sqlite:"+path).AuditLog()
			l := newLog(t, s, b.key)
			err := l.Check(t.Context())
			if !c.serverDetects {
				if err != nil {
					t.Fatalf("self-check of a self-consistent log: %v", err)
				}
				return
			}
			if !errors.Is(err, audit.ErrHistory) {
				t.Fatalf("self-check: %v, want ErrHistory", err)
			}
			if l.Ready(t.Context()) == nil || l.Status().Healthy {
				t.Fatal("the log is ready over a tampered history")
			}
			// Appends are still stored, but no checkpoint is signed.
			before, _ := s.State(t.Context())
			if _, err := l.Append(t.Context(), event(1000)); err != nil {
				t.Fatal(err)
			}
			if _, err := l.IntegrateOnce(t.Context()); !errors.Is(err, audit.ErrHistory) {
				t.Fatalf("IntegrateOnce over a tampered history: %v", err)
			}
			after, _ := s.State(t.Context())
			if !bytes.Equal(before.Checkpoint, after.Checkpoint) || after.Size != before.Size {
				t.Fatal("a checkpoint was signed over a tampered history")
			}
			if n, _ := s.PendingCount(t.Context()); n != 1 {
				t.Fatalf("%d pending, want the append kept", n)
			}
		})
	}
}

func buildLogWithKey(t *testing.T, key []byte, n1, n2 int, eventOf func(int) audit.Event) builtLog {
	t.Helper()
	url := sqliteURL(t)
	s := openStore(t, url)
	l := newLog(t, s.AuditLog(), key)
	stop := run(t, l)
	awaitAll(t, l, appendEvents(t, l, 0, n1+n2, eventOf))
	stop()
	s.Close()
	return builtLog{path: strings.TrimPrefix(url, "sqlite:"), key: key, vkey: l.VerifierKey()}
}

func mustTile(t *testing.T, db *sql.DB, level, idx int) []byte {
	t.Helper()
	var b []byte
	if err := db.QueryRowContext(t.Context(), `SELECT hashes FROM audit_tiles WHERE level = ? AND idx = ?`, level, idx).Scan(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

// appendEvents appends eventOf(from…to-1) from 8 goroutines.
func appendEvents(t *testing.T, l *audit.Log, from, to int, eventOf func(int) audit.Event) []audit.Appended {
	t.Helper()
	out := make([]audit.Appended, to-from)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from + w; i < to; i += 8 {
				a, err := l.Append(t.Context(), eventOf(i))
				if err != nil {
					errs <- err
					return
				}
				out[i-from] = a
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return out
}

// verifyServed serves the log at path and runs the outside verifier. With
// pass it must accept the log; else it must refuse it, with wantErr (when
// not empty) in its error.
func verifyServed(t *testing.T, path, vkey string, remembered []byte, pass bool, wantErr string) {
	t.Helper()
	s := openStore(t, "sqlite:"+path).AuditLog()
	srv := serve(t, s, vkey)
	_, err := audittest.Verify(context.WithoutCancel(t.Context()), srv.Client(), srv.URL+"/audit/", vkey, remembered)
	// Signet's own client must agree.
	c, cerr := auditclient.New(srv.URL+"/audit", vkey, srv.Client())
	if cerr != nil {
		t.Fatal(cerr)
	}
	_, _, cerr = c.Verify(t.Context(), &auditclient.State{Checkpoint: string(remembered)})
	switch {
	case pass && cerr != nil:
		t.Fatalf("signet's client refused the log: %v", cerr)
	case !pass && !errors.Is(cerr, auditclient.ErrVerification):
		t.Fatalf("signet's client: %v, want a verification failure", cerr)
	case !pass:
		t.Logf("signet's client: %v", cerr)
	}
	switch {
	case pass && err != nil:
		t.Fatalf("the outside verifier refused the log: %v", err)
	case pass:
	case err == nil:
		t.Fatalf("the outside verifier accepted the tampered log (want %q)", wantErr)
	case !strings.Contains(err.Error(), wantErr):
		t.Fatalf("outside verifier: %v, want %q", err, wantErr)
	}
}

// TestTamperingBetweenIntegrations changes the tree's right edge in the
// database while a log is running: the next integration, which starts from
// what the previous one committed instead of rebuilding the edge, still
// refuses to sign over it, and so does one after a changed state row.
func TestTamperingBetweenIntegrations(t *testing.T) {
	for _, c := range []struct {
		name, sql string
		args      []any
	}{
		{"EdgeTileChanged", `UPDATE audit_tiles SET hashes = ? || substr(hashes, 33) WHERE level = 0 AND idx = 0`, []any{bytes.Repeat([]byte{1}, 32)}},
		{"EdgeTileTruncated", `UPDATE audit_tiles SET hashes = substr(hashes, 1, 32) WHERE level = 0 AND idx = 0`, nil},
		{"RootChanged", `UPDATE audit_state SET root = ?`, []any{bytes.Repeat([]byte{2}, 32)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			url := sqliteURL(t)
			s := openStore(t, url).AuditLog()
			l := newLog(t, s, newKey(t))
			if err := l.Check(t.Context()); err != nil {
				t.Fatal(err)
			}
			integrateAll := func() error {
				for {
					more, err := l.IntegrateOnce(t.Context())
					if err != nil || !more {
						return err
					}
				}
			}
			for i := range 3 {
				if _, err := l.Append(t.Context(), event(i)); err != nil {
					t.Fatal(err)
				}
				if err := integrateAll(); err != nil {
					t.Fatalf("integration %d: %v", i, err)
				}
			}
			before, err := s.State(t.Context())
			if err != nil || before.CheckpointSize != 3 {
				t.Fatalf("state %+v, %v, want a checkpoint of 3 entries", before, err)
			}
			execSQL(t, rawDB(t, strings.TrimPrefix(url, "sqlite:")), c.sql, c.args...)
			if _, err := l.Append(t.Context(), event(3)); err != nil {
				t.Fatal(err)
			}
			if err := integrateAll(); !errors.Is(err, audit.ErrHistory) {
				t.Fatalf("integration over a changed edge: %v, want ErrHistory", err)
			}
			after, err := s.State(t.Context())
			if err != nil || after.CheckpointSize != 3 || !bytes.Equal(after.Checkpoint, before.Checkpoint) {
				t.Fatalf("state %+v, %v: a checkpoint was signed over a changed edge", after, err)
			}
			if l.Status().Healthy {
				t.Fatal("the log is healthy over a changed edge")
			}
		})
	}
}

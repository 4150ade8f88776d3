package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/signet-trust/signet/internal/store"
)

func TestIsTransient(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("sqlstore: get: %w", err) }
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{store.ErrNotFound, false},
		{store.ErrOldVersion, false},
		{errors.New("sql: database is closed"), false},
		{context.Canceled, false},
		{wrap(fmt.Errorf("%w: %w", context.Canceled, io.ErrUnexpectedEOF)), false},
		{context.DeadlineExceeded, true},
		{wrap(driver.ErrBadConn), true},
		{wrap(pgconn.ErrConnClosed), true},
		{wrap(io.ErrUnexpectedEOF), true},
		{wrap(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), true},
		{wrap(syscall.ECONNRESET), true},
		{wrap(&pgconn.PgError{Code: "08006"}), true},  // connection_failure
		{wrap(&pgconn.PgError{Code: "53300"}), true},  // too_many_connections
		{wrap(&pgconn.PgError{Code: "53100"}), true},  // disk_full
		{wrap(&pgconn.PgError{Code: "57P01"}), true},  // admin_shutdown
		{wrap(&pgconn.PgError{Code: "57P03"}), true},  // cannot_connect_now
		{wrap(&pgconn.PgError{Code: "57014"}), true},  // query_canceled (statement timeout)
		{wrap(&pgconn.PgError{Code: "40001"}), true},  // serialization_failure
		{wrap(&pgconn.PgError{Code: "40P01"}), true},  // deadlock_detected
		{wrap(&pgconn.PgError{Code: "55P03"}), true},  // lock_not_available
		{wrap(&pgconn.PgError{Code: "23505"}), false}, // unique_violation
		{wrap(&pgconn.PgError{Code: "42P01"}), false}, // undefined_table
		{wrap(&pgconn.PgError{Code: "28P01"}), false}, // invalid_password
		{wrap(&pgconn.PgError{Code: "XX001"}), false}, // data_corrupted
	}
	for _, tt := range tests {
		if got := isTransient(tt.err); got != tt.want {
			t.Errorf("isTransient(%v) = %v, want %v", tt.err, got, tt.want)
		}
		err := classify(tt.err)
		if got := errors.Is(err, store.ErrUnavailable); got != tt.want {
			t.Errorf("classify(%v) wraps ErrUnavailable: %v, want %v", tt.err, got, tt.want)
		}
		if tt.err != nil && (err.Error() != tt.err.Error() || !errors.Is(err, tt.err)) {
			t.Errorf("classify(%v) = %q, lost the original error", tt.err, err)
		}
	}
}

// TestSQLiteBusyAndFullAreTransient produces the errors SQLite reports
// when another writer holds the database past the busy timeout, and when
// the database cannot grow, and checks that both are classified
// transient.
func TestSQLiteBusyAndFullAreTransient(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raw.db")
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(0)&_pragma=journal_mode(WAL)&_txlock=immediate")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	if _, err := a.Exec(`CREATE TABLE t (v BLOB)`); err != nil {
		t.Fatal(err)
	}
	tx, err := a.Begin()
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Exec(`INSERT INTO t VALUES (x'00')`)
	if err == nil || !isTransient(err) {
		t.Errorf("a write while another connection holds the write lock: %v, want a transient error", err)
	}
	t.Logf("busy: %v", err)
	tx.Rollback()

	if _, err := a.Exec(`PRAGMA max_page_count = 8`); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		_, err = a.Exec(`INSERT INTO t VALUES (randomblob(4096))`)
		if err != nil {
			break
		}
		if i == 99 {
			t.Fatal("the database grew past max_page_count")
		}
	}
	if !isTransient(err) {
		t.Errorf("a write to a full database: %v, want a transient error", err)
	}
	t.Logf("full: %v", err)
}

// tcpProxy forwards connections to target until cut, when it closes every
// connection and refuses new ones (the database becomes unreachable).
type tcpProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func startTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			cut := p.cut
			p.mu.Unlock()
			if cut {
				c.Close()
				continue
			}
			d, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, d)
			p.mu.Unlock()
			go func() { io.Copy(d, c); d.Close(); c.Close() }()
			go func() { io.Copy(c, d); d.Close(); c.Close() }()
		}
	}()
	return p
}

func (p *tcpProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// TestPostgresUnreachableIsUnavailable runs a Store through a TCP proxy to
// PostgreSQL and cuts it: every MetaStore method (and Ping) fails with an
// error wrapping store.ErrUnavailable and nothing is stored; restored, the
// same Store works again. A missing table, by contrast, is not transient.
func TestPostgresUnreachableIsUnavailable(t *testing.T) {
	u, err := url.Parse(postgresSchema(t, postgresURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	p := startTCPProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	s := openT(t, u.String())
	ctx := t.Context()
	if err := s.UpdateMany(ctx, "g", []store.File{testFile("g", "root", 1, "r1")}); err != nil {
		t.Fatal(err)
	}

	p.setCut(true)
	calls := map[string]func() error{
		"UpdateMany": func() error { return s.UpdateMany(ctx, "g", []store.File{testFile("g", "root", 2, "r2")}) },
		"GetCurrent": func() error { _, err := s.GetCurrent(ctx, "g", "root"); return err },
		"GetVersion": func() error { _, err := s.GetVersion(ctx, "g", "root", 1); return err },
		"GetChecksum": func() error {
			_, err := s.GetChecksum(ctx, "g", "root", strings.Repeat("0", 64))
			return err
		},
		"Delete":   func() error { _, err := s.Delete(ctx, "g"); return err },
		"Changes":  func() error { _, err := s.Changes(ctx, "", 0, 10); return err },
		"Expiring": func() error { _, err := s.Expiring(ctx, "timestamp", time.Now(), 10); return err },
		"PruneVersions": func() error {
			_, _, err := s.PruneVersions(ctx, store.Retention{KeepVersions: 1, Referenced: func(string, []byte) ([]string, error) { return nil, nil }}, "", 10)
			return err
		},
		"Ping": func() error { return s.Ping(ctx) },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with the database unreachable: %v, want an error wrapping store.ErrUnavailable", name, err)
		}
		t.Logf("%s: %v", name, err)
	}

	p.setCut(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, err := s.GetCurrent(ctx, "g", "root")
		if err == nil {
			if f.Version != 1 {
				t.Errorf("after the cut: root version %d, want 1 (nothing stored while unreachable)", f.Version)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not recover: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if _, err := s.w.ExecContext(ctx, `ALTER TABLE tuf_files RENAME TO tuf_files_away`); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetVersion(ctx, "g", "root", 1)
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("GetVersion with its table missing: %v, want an error not wrapping store.ErrUnavailable", err)
	}
}

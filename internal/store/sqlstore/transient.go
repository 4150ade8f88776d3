package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/signet-trust/signet/internal/store"
)

// classify marks a transient failure with store.Unavailable, leaving every
// other error as it is. Every error a MetaStore method returns passes
// through it.
func classify(err error) error {
	if isTransient(err) {
		return store.Unavailable(err)
	}
	return err
}

// isTransient reports whether err means the database could not serve the
// request now, though it may in a moment, with nothing wrong in the
// request or the data (docs/adr/0009):
//
//   - the connection could not be made or was lost: refused, reset,
//     closed, timed out, any network error, an unexpected EOF;
//   - the request's own deadline passed while waiting for the database
//     (a cancelled request is the caller giving up, not the database);
//   - PostgreSQL answered with a condition of its own, not of the request:
//     class 08 (connection exception), class 53 (insufficient resources:
//     too many connections, disk full, out of memory), 57P01–57P03
//     (shutting down, starting up), 57014 (statement timeout), 40001 and
//     40P01 (serialization failure, deadlock: the transaction was rolled
//     back and may be retried), 55P03 (lock not available);
//   - SQLite stayed busy or locked beyond its busy timeout (10 s), or the
//     disk is full.
//
// Everything else — constraint violations, missing tables, corruption,
// authentication failures, a closed Store — is not transient: retrying
// would fail the same way.
func isTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgTransient(pe.Code)
	}
	if se, ok := errors.AsType[*sqlite.Error](err); ok {
		switch se.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL:
			return true
		}
		return false
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	for _, target := range []error{
		context.DeadlineExceeded, driver.ErrBadConn, pgconn.ErrConnClosed, io.ErrUnexpectedEOF, io.EOF,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE, syscall.ETIMEDOUT,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return pgconn.Timeout(err)
}

// pgTransient reports whether a PostgreSQL SQLSTATE is a transient
// condition of the server rather than of the request.
func pgTransient(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"):
		return true
	}
	switch code {
	case "57P01", "57P02", "57P03", "57014", "40001", "40P01", "55P03":
		return true
	}
	return false
}

package sqlstore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Advisory lock keys (PostgreSQL). Any constant works as long as it is used
// for nothing else in the database.
const (
	lockKeyMigrate    int64 = 0x5349474e45540001 // "SIGNET" 1
	lockKeyChangefeed int64 = 0x5349474e45540002 // "SIGNET" 2
)

// A dialect is what differs between the SQL databases: placeholders, how
// times are stored, how a unique violation is reported, and how writers of
// the changefeed are ordered.
type dialect struct {
	name string
	// migrations is the directory of migrations in the embedded FS.
	migrations string
	// numbered placeholders ($1, $2, …) instead of ?.
	numbered bool
	// timeArg turns a time into a query argument of the time columns.
	timeArg func(time.Time) any
	// isUnique reports whether err is a unique or primary key violation.
	isUnique func(error) bool
	// lockMigrate, when not empty, is run first in the migration
	// transaction so that concurrent Opens migrate one at a time.
	lockMigrate string
	// lockChangefeed, when not empty, is run in a writing transaction just
	// before it adds changefeed records, and holds until commit, so change
	// IDs become visible in the order they were allocated and a reader
	// following the feed by ID never skips one.
	lockChangefeed string
	// notify: writes announce themselves with NOTIFY (see notify.go).
	notify bool
	// forUpdate is appended to a SELECT that must lock the rows it reads
	// until commit ("" where writers are serialized anyway).
	forUpdate string
}

var sqliteDialect = &dialect{
	name:       "sqlite",
	migrations: "migrations/sqlite",
	timeArg:    func(t time.Time) any { return t.UnixMicro() },
	isUnique: func(err error) bool {
		var e *sqlite.Error
		if !errors.As(err, &e) {
			return false
		}
		return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE ||
			e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
	// SQLite writes go through one connection, in order; no locks needed.
}

var postgresDialect = &dialect{
	name:       "postgres",
	migrations: "migrations/postgres",
	numbered:   true,
	timeArg:    func(t time.Time) any { return t },
	isUnique: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505" // unique_violation
	},
	lockMigrate:    "SELECT pg_advisory_xact_lock(" + strconv.FormatInt(lockKeyMigrate, 10) + ")",
	lockChangefeed: "SELECT pg_advisory_xact_lock(" + strconv.FormatInt(lockKeyChangefeed, 10) + ")",
	notify:         true,
	forUpdate:      " FOR UPDATE",
}

// q rewrites the ? placeholders of query for the dialect. The queries of
// this package never hold a ? inside a literal.
func (d *dialect) q(query string) string {
	if !d.numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// dbTime scans a time column of either dialect: unix microseconds (SQLite)
// or a timestamp (PostgreSQL). Times come back in UTC.
type dbTime struct{ t time.Time }

func (d *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		d.t = time.UnixMicro(v).UTC()
	case time.Time:
		d.t = v.UTC()
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a time", src)
	}
	return nil
}

// storeTime is how times are kept: UTC, microseconds.
func storeTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

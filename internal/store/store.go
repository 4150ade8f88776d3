// Package store defines the storage contracts of signet-server: TUF metadata
// files (append-only, one row per GUN, role and version) and the changefeed.
// (The key custody core owns the contract of its own records:
// custody.Storage.)
//
// Invariants every implementation keeps (and storetest checks):
//   - Files are append-only: a stored (GUN, role, version) is never changed.
//     Versions of a role only grow; UpdateMany refuses a version that is not
//     greater than every stored version of that role with ErrOldVersion.
//   - UpdateMany is atomic: all files of the call are stored, or none.
//   - Data is stored and returned byte for byte.
//   - When UpdateMany returns nil the write is durable.
//   - Every stored timestamp adds one changefeed record ("update"); every
//     Delete that removed something adds one ("deletion").
//   - Times (Expires, CreatedAt) are kept at least to the microsecond.
//   - Transient failures (the database unreachable, overloaded, locked or
//     full) are reported wrapped in ErrUnavailable, and only those.
//   - PruneVersions never removes the current version of a role, any root
//     version, a version a current snapshot or timestamp refers to, or a
//     changefeed record.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors callers branch on.
var (
	// ErrNotFound reports that the requested file, key or record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrOldVersion reports that an update carried a version not greater than
	// one already stored for the same role (the reference's VERSION error).
	ErrOldVersion = errors.New("store: a newer or equal version is already stored")
	// ErrConflict reports a write that collides with an existing record, such
	// as a key record whose ID is already stored (custody.Storage).
	ErrConflict = errors.New("store: conflict")
	// ErrUnavailable reports a transient failure: the database could not
	// be reached or could not serve the request now (connection refused or
	// lost, a timeout, too many connections, a lock or serialization
	// conflict, a full disk). The caller may retry later. A read changed
	// nothing; a write changed nothing either, unless the connection was
	// lost at commit, when its outcome is unknown until read back.
	// Implementations mark such errors with Unavailable; callers test with
	// errors.Is.
	ErrUnavailable = errors.New("store: temporarily unavailable")
)

// Unavailable marks err as a transient failure: the result wraps both
// ErrUnavailable and err, and its message is err's. Unavailable(nil) is
// nil.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return unavailableError{err}
}

type unavailableError struct{ err error }

func (e unavailableError) Error() string   { return e.err.Error() }
func (e unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// Change categories of the changefeed.
const (
	CategoryUpdate   = "update"
	CategoryDeletion = "deletion"
)

// File is one stored version of one role's metadata.
type File struct {
	GUN     string
	Role    string // "root", "targets", "snapshot", "timestamp", "targets/…"
	Version int
	// Data is the whole metadata file as uploaded or signed, byte for byte.
	Data []byte
	// SHA256 is the lowercase hex SHA-256 of Data.
	SHA256 string
	// Expires is the expiry of the signed metadata (for refresh scheduling).
	Expires time.Time
	// CreatedAt is when the row was stored; set by the store, ignored on input.
	CreatedAt time.Time
}

// Change is one changefeed record.
type Change struct {
	ID        int64
	CreatedAt time.Time
	GUN       string
	Version   int    // timestamp version; 0 for deletions
	SHA256    string // hex SHA-256 of the timestamp file; "" for deletions
	Category  string // CategoryUpdate or CategoryDeletion
}

// MetaStore stores TUF metadata files and the changefeed.
type MetaStore interface {
	// UpdateMany stores files (all of the same GUN) atomically. If any file's
	// version is not greater than every stored version of its role, nothing
	// is stored and the error wraps ErrOldVersion. Files of role "timestamp"
	// each add a changefeed record of CategoryUpdate.
	UpdateMany(ctx context.Context, gun string, files []File) error
	// GetCurrent returns the highest stored version of a role.
	GetCurrent(ctx context.Context, gun, role string) (File, error)
	// GetVersion returns one stored version of a role.
	GetVersion(ctx context.Context, gun, role string, version int) (File, error)
	// GetChecksum returns the version of a role whose SHA256 is sha256hex.
	GetChecksum(ctx context.Context, gun, role, sha256hex string) (File, error)
	// Delete removes every file of a GUN. It reports whether anything was
	// removed, and if so adds a changefeed record of CategoryDeletion.
	Delete(ctx context.Context, gun string) (bool, error)
	// Changes reads the changefeed, for one GUN or for all when gun is "".
	// It follows the reference server: records > 0 returns up to records
	// changes with ID > changeID in ascending order (changeID 0 = from the
	// start); records < 0 returns up to -records changes with ID < changeID
	// (changeID -1 = from the newest), still in ascending order. As in the
	// reference, a negative changeID reads backwards whatever the sign of
	// records, and reading backwards from changeID 0 starts at the newest.
	Changes(ctx context.Context, gun string, changeID int64, records int) ([]Change, error)
	// Expiring lists the current (highest) version of role, across GUNs, whose
	// Expires is before the given time, at most limit of them, Data omitted.
	Expiring(ctx context.Context, role string, before time.Time, limit int) ([]File, error)
	// PruneVersions removes superseded versions under a retention policy,
	// in bounded batches. A pass goes through the GUNs in ascending order:
	// each call starts at GUN from ("" = the first), removes at most limit
	// files, and returns the GUN to pass as from to continue, or next == ""
	// when the pass is complete. Of each role of a GUN it keeps the newest
	// p.KeepVersions versions, every root version, and every version whose
	// SHA256 the GUN's current snapshot or timestamp refers to (per
	// p.Referenced); the changefeed is left as it is. A GUN whose references
	// cannot be read is left whole, and reported in err after the rest of
	// the batch is done (next and deleted stay valid).
	PruneVersions(ctx context.Context, p Retention, from string, limit int) (next string, deleted int, err error)
}

// AuditedMetaStore is a MetaStore that also keeps the audit log's pending
// entries, so that a write and the audit log entry recording it commit or
// roll back together: when one of these methods returns nil, both are
// durable; when it fails, neither is stored. Entries are the exact bytes
// of the log entry (the store does not read them).
type AuditedMetaStore interface {
	MetaStore
	// UpdateManyAudited is UpdateMany that also stores entry as a pending
	// audit log entry in the same transaction, and returns its append ID.
	UpdateManyAudited(ctx context.Context, gun string, files []File, entry []byte) (appendID int64, err error)
	// DeleteAudited is Delete that also stores entry, in the same
	// transaction, when something was removed (appendID is 0 otherwise).
	DeleteAudited(ctx context.Context, gun string, entry []byte) (deleted bool, appendID int64, err error)
}

// Retention is a policy for pruning superseded metadata versions.
type Retention struct {
	// KeepVersions is how many versions of each role are kept, newest
	// first; at least 1.
	KeepVersions int
	// Referenced returns the lowercase hex SHA-256 of every file a snapshot
	// or timestamp (role, data) refers to. The store knows nothing of the
	// metadata format; the caller does.
	Referenced func(role string, data []byte) ([]string, error)
}

package audit

import (
	"context"
	"errors"
	"time"
)

// Errors of a Store.
var (
	// ErrNotFound reports a tile, entry or append ID the store does not
	// hold (for an append ID: not integrated yet).
	ErrNotFound = errors.New("audit: not found")
	// ErrConflict reports that the tree changed under an integration.
	ErrConflict = errors.New("audit: the tree changed concurrently")
)

// Pending is an appended entry waiting for the integrator.
type Pending struct {
	// ID is the append ID, given when the entry was stored; IDs grow but
	// need not be consecutive nor committed in order.
	ID   int64
	Data []byte
}

// Entry is an entry of the tree.
type Entry struct {
	Index    uint64
	AppendID int64
	Data     []byte
}

// TileData is the stored content of a tile: its hashes, as many as it has
// now (a partial tile grows until it is full).
type TileData struct {
	Level  int
	Index  uint64
	Hashes []byte
}

// TreeState is the stored state of the tree.
type TreeState struct {
	// Size and Root are the integrated tree.
	Size uint64
	Root Hash
	// Checkpoint is the latest signed checkpoint note (nil before the
	// first); CheckpointSize is its tree size.
	Checkpoint     []byte
	CheckpointSize uint64
}

// Batch is what one integration writes: the new entries (indexes from the
// old size up), every tile they changed (whole), and the new size and
// root.
type Batch struct {
	Entries []Entry
	Tiles   []TileData
	Size    uint64
	Root    Hash
	// Checkpoint, when set, is a signed checkpoint of (Size, Root), stored
	// as the latest checkpoint in the same transaction as the batch: one
	// durable commit per integration instead of two (a batch always grows
	// the tree past the stored checkpoint).
	Checkpoint []byte
}

// IntegrateFunc computes an integration inside the store's transaction.
// state is the tree as locked by the transaction; pending are the entries
// taken for integration (in append ID order, at most the limit); tile reads
// the stored tiles inside the same transaction. It returns the batch to
// write, or nil to write nothing (the pending entries stay pending). An
// error rolls everything back.
type IntegrateFunc func(ctx context.Context, state TreeState, pending []Pending, tile func(level int, index uint64) ([]byte, error)) (*Batch, error)

// Store is where the log keeps its entries, tiles and state. Every method
// is safe for concurrent use, including by several processes sharing one
// database; the conformance suite in package audittest checks the rules
// below.
type Store interface {
	// AddPending durably stores entries to be integrated and returns their
	// append IDs, in the order of entries. When it returns nil, the entries
	// survive a crash.
	AddPending(ctx context.Context, entries [][]byte) ([]int64, error)

	// Integrate runs one integration in one transaction: it locks the tree
	// state (concurrent integrations wait for each other), takes up to
	// limit pending entries in append ID order, calls fn and writes the
	// batch it returns. The batch's entries must start at the state's size
	// and be consecutive, and the pending entries taken are removed when
	// (and only when) the batch is written. It reports whether a batch was
	// written.
	Integrate(ctx context.Context, limit int, fn IntegrateFunc) (bool, error)

	// State returns the tree state as committed.
	State(ctx context.Context) (TreeState, error)

	// PutCheckpoint stores a signed checkpoint of the tree at size, if size
	// is greater than the stored checkpoint's and at most the tree's size;
	// otherwise it stores nothing and reports false.
	PutCheckpoint(ctx context.Context, size uint64, note []byte) (bool, error)

	// Tile returns the stored hashes of tile (level, index), or
	// ErrNotFound.
	Tile(ctx context.Context, level int, index uint64) ([]byte, error)

	// Entries returns the stored entries with index in [start, start+count),
	// in index order. Missing indexes are left out (a gap means the store
	// was tampered with).
	Entries(ctx context.Context, start uint64, count int) ([]Entry, error)

	// IndexOf returns the index an append ID was integrated at, or
	// ErrNotFound while it is pending (or if it never existed).
	IndexOf(ctx context.Context, appendID int64) (uint64, error)

	// PendingCount returns how many entries wait for integration.
	PendingCount(ctx context.Context) (int64, error)

	// AcquireLease grants the integrator lease to holder for ttl, measured
	// on the database's clock where there is one to share, if it is free,
	// expired or already held by holder, and reports whether holder holds
	// it now.
	AcquireLease(ctx context.Context, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives up the lease if holder holds it.
	ReleaseLease(ctx context.Context, holder string) error
}

// Inliner is the log's side of an integration run inside the commit of the
// write that appended the entries (InlineStore). Begin is called inside
// that write's transaction, once its own statements have run; when it
// reports ok, the store runs fn as one integration of up to limit pending
// entries, in the same transaction, and then calls finish exactly once:
// with nil when the transaction committed with the batch fn returned,
// otherwise with why not (fn wrote nothing or failed, a statement failed,
// the transaction did not commit). Begin must not block.
type Inliner interface {
	Begin() (fn IntegrateFunc, limit int, finish func(error), ok bool)
}

// InlineStore is a Store whose writes can integrate the entries they
// append in their own durable commit: one commit per write instead of
// one for the write and one for its integration. SetInline registers the
// log's side (nil to stop); the store asks it at the end of every write
// transaction that appended entries, and a write whose inline integration
// fails or is declined still commits, its entries left pending for the
// integrator.
type InlineStore interface {
	Store
	SetInline(Inliner)
}

package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"
)

// Config configures a Log.
type Config struct {
	// Store keeps the log. Required.
	Store Store
	// Origin is the checkpoint's origin line and the name of its key,
	// conventionally the log's URL prefix without the scheme
	// ("signet.example.com/audit"). Required.
	Origin string
	// Signer signs checkpoints; its key must be Ed25519. Required.
	Signer crypto.Signer
	// Logger receives the log's own messages (default: discarded).
	Logger *slog.Logger
	// Now stamps events appended without a time (default time.Now).
	Now func() time.Time
	// Holder names this process in the integrator lease (default: random).
	Holder string
	// Poll is how often pending entries appended by other processes (or
	// inside other transactions, without Kick) are looked for, and how
	// often a follower tries to take the lease. Default 100 ms.
	Poll time.Duration
	// LeaseTTL is how long the integrator lease lasts without renewal;
	// it is renewed every third of it. Default 3 s.
	LeaseTTL time.Duration
	// CheckEvery is the period of the full self-check after the one at
	// start; default 1 h, negative for only the one at start.
	CheckEvery time.Duration
	// MaxBatch bounds the entries of one integration (default 4096).
	MaxBatch int
}

// Log is the sequencer of the audit log: it appends entries, integrates
// them into the tree (when it holds the lease), signs checkpoints and
// checks the stored tree. Append works without Run; entries are
// integrated only while some process runs Run on the same store.
type Log struct {
	cfg      Config
	log      *slog.Logger
	signer   note.Signer
	verifier note.Verifier
	vkey     string

	kick chan struct{}

	// Group commit of Append: the first caller with no flush under way
	// flushes the queue; when done, it hands the role to the next waiter.
	amu      sync.Mutex
	queue    []*appendReq
	flushing bool

	smu     sync.Mutex
	status  Status
	changed chan struct{} // closed and replaced when the tree or checkpoint moves

	// leaseRenewed is when the lease was last renewed, leaseTried when it
	// was last asked for (Run's goroutine only).
	leaseRenewed, leaseTried time.Time
	// leaseUntil is, in Unix nanoseconds, until when this process may
	// integrate inside its writes' commits (inline.go): half the lease's
	// time after its last renewal, 0 while it does not lead.
	leaseUntil atomic.Int64

	// edge is what this process's last integration committed, so that the
	// next one, finding the stored state unchanged, need not rebuild the
	// tree's right edge from its tiles and verify the checkpoint again.
	// emu serialises integrations and guards edge.
	emu  sync.Mutex
	edge *edge

	// recent maps the append IDs this process integrated lately to their
	// indexes, and checkpoint is the latest checkpoint it stored, so that
	// Await answers the writers of this process without reading the
	// store (smu guards them).
	recent         map[int64]uint64
	recentIDs      []int64
	checkpoint     []byte
	checkpointSize uint64
}

// recentMax bounds Log.recent.
const recentMax = 4096

// edge is the tree as an integration left it: the stored state it
// committed, the compact range of its right edge, and the right-edge tiles
// it read or wrote, which the next integration compares with what the
// store returns (a change made outside the log is a history error, as
// when the edge is rebuilt from the tiles).
type edge struct {
	checkpoint []byte
	size       uint64
	root       Hash
	hashes     []Hash
	tiles      map[tileKey][]byte
}

type tileKey struct {
	level int
	index uint64
}

// matches reports whether st is the state e committed.
func (e *edge) matches(st TreeState) bool {
	return e != nil && st.Checkpoint != nil && bytes.Equal(st.Checkpoint, e.checkpoint) &&
		st.CheckpointSize == e.size && st.Size == e.size && st.Root == e.root
}

// Status is what the log knows of itself, for readiness and metrics.
type Status struct {
	// Checked is set once the first full self-check finished.
	Checked bool
	// Healthy is false when the stored tree no longer matches the latest
	// signed checkpoint; then Problem says why and no checkpoint is
	// signed until a full self-check passes again.
	Healthy bool
	Problem string
	// Leader reports whether this process holds the integrator lease.
	Leader bool
	// Size and CheckpointSize are the last tree and checkpoint sizes seen.
	Size, CheckpointSize uint64
	// LastCheck is when the last full self-check finished, and how long it
	// took; CheckFailures counts failed checks (full or per batch).
	LastCheck         time.Time
	LastCheckDuration time.Duration
	CheckFailures     int64
	// Integrated counts entries this process integrated, in Batches; Inline
	// of those batches were integrated in the commit of the write that
	// appended their entries (InlineStore).
	Integrated, Batches, Inline int64
	// LastCheckpoint is when this process last signed a checkpoint.
	LastCheckpoint time.Time
}

// ErrHistory reports a stored tree that no longer matches the latest
// signed checkpoint: entries or tiles were changed, removed or reordered
// outside the log.
var ErrHistory = errors.New("audit: the stored log does not match its signed checkpoint")

func historyError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrHistory, fmt.Sprintf(format, args...))
}

// New returns a Log over cfg.Store.
func New(cfg Config) (*Log, error) {
	if cfg.Store == nil || cfg.Signer == nil {
		return nil, errors.New("audit: a log needs a store and a signer")
	}
	signer, err := NewNoteSigner(cfg.Origin, cfg.Signer)
	if err != nil {
		return nil, err
	}
	vkey, err := VerifierKey(cfg.Origin, cfg.Signer.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	verifier, err := NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Holder == "" {
		b := make([]byte, 8)
		rand.Read(b)
		cfg.Holder = hex.EncodeToString(b)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 100 * time.Millisecond
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 3 * time.Second
	}
	if cfg.CheckEvery == 0 {
		cfg.CheckEvery = time.Hour
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 4096
	}
	return &Log{
		cfg:      cfg,
		log:      cfg.Logger,
		signer:   signer,
		verifier: verifier,
		vkey:     vkey,
		kick:     make(chan struct{}, 1),
		changed:  make(chan struct{}),
		status:   Status{Healthy: true},
	}, nil
}

// VerifierKey returns the verifier key of the log's checkpoints
// (name+keyid+base64), which clients pass to verify the log.
func (l *Log) VerifierKey() string { return l.vkey }

// Verifier returns the verifier of the log's checkpoints.
func (l *Log) Verifier() note.Verifier { return l.verifier }

// Store returns the store the log keeps its entries in, for readers of the
// log in the same process (the read API, the web UI, the server's index
// of timestamps).
func (l *Log) Store() Store { return l.cfg.Store }

// Origin returns the checkpoint origin.
func (l *Log) Origin() string { return l.cfg.Origin }

// Status returns a snapshot of the log's status.
func (l *Log) Status() Status {
	l.smu.Lock()
	defer l.smu.Unlock()
	return l.status
}

// Ready returns nil when the log has passed its self-check and its stored
// tree matches its signed checkpoint.
func (l *Log) Ready(context.Context) error {
	s := l.Status()
	switch {
	case !s.Healthy:
		return errors.New(s.Problem)
	case !s.Checked:
		return errors.New("audit: the log's self-check has not finished yet")
	}
	return nil
}

func (l *Log) update(fn func(*Status)) {
	l.smu.Lock()
	defer l.smu.Unlock()
	fn(&l.status)
}

// notify wakes the waiters of Await.
func (l *Log) notify() {
	l.smu.Lock()
	defer l.smu.Unlock()
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *Log) changedChan() <-chan struct{} {
	l.smu.Lock()
	defer l.smu.Unlock()
	return l.changed
}

// Kick asks the integrator to look for pending entries now, as after an
// append made inside another transaction has committed. It never blocks.
func (l *Log) Kick() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Appended is the result of an Append.
type Appended struct {
	// ID is the append ID (Await turns it into the entry's index).
	ID int64
	// Entry is the bytes stored, and LeafHash their leaf hash.
	Entry    []byte
	LeafHash Hash
}

// Append encodes the event (stamping it with the log's clock if it has no
// time) and stores it durably as a pending entry. Concurrent appends are
// committed together. When Append returns nil, the entry is in the log:
// it survives a crash and will be integrated, in a checkpoint within a
// second while an integrator runs.
func (l *Log) Append(ctx context.Context, e Event) (Appended, error) {
	if e.Time.IsZero() {
		e.Time = l.cfg.Now()
	}
	data, err := e.Encode()
	if err != nil {
		return Appended{}, err
	}
	id, err := l.AppendEntry(ctx, data)
	if err != nil {
		return Appended{}, err
	}
	return Appended{ID: id, Entry: data, LeafHash: LeafHash(data)}, nil
}

type appendReq struct {
	data []byte
	id   int64
	err  error
	// done receives true when id and err are set, false when this waiter
	// is to flush the queue.
	done chan bool
}

// appendTimeout bounds one group commit.
const appendTimeout = 30 * time.Second

// AppendEntry stores already encoded entry bytes durably as a pending
// entry and returns the append ID.
func (l *Log) AppendEntry(ctx context.Context, data []byte) (int64, error) {
	if len(data) > MaxEntrySize {
		return 0, ErrEntryTooLarge
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	req := &appendReq{data: data, done: make(chan bool, 1)}
	l.amu.Lock()
	l.queue = append(l.queue, req)
	flush := !l.flushing
	l.flushing = true
	l.amu.Unlock()
	if !flush {
		if ready := <-req.done; ready {
			return req.id, req.err
		}
	}
	l.flushOnce(ctx)
	<-req.done
	return req.id, req.err
}

// flushOnce writes the queued entries in one AddPending, answers their
// callers, and hands the flusher role to the next waiter if any.
func (l *Log) flushOnce(ctx context.Context) {
	l.amu.Lock()
	batch := l.queue
	l.queue = nil
	l.amu.Unlock()

	// The write must not be cut short by one caller's cancellation: the
	// others wait on it too.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), appendTimeout)
	entries := make([][]byte, len(batch))
	for i, r := range batch {
		entries[i] = r.data
	}
	ids, err := l.cfg.Store.AddPending(wctx, entries)
	cancel()
	if err == nil && len(ids) != len(batch) {
		err = fmt.Errorf("audit: the store returned %d append IDs for %d entries", len(ids), len(batch))
	}
	for i, r := range batch {
		if err != nil {
			r.err = err
		} else {
			r.id = ids[i]
		}
		r.done <- true
	}
	// Entries integrated in their own commit (InlineStore) need no kick.
	if err == nil && slices.ContainsFunc(ids, func(id int64) bool { return !l.Integrated(id) }) {
		l.Kick()
	}

	l.amu.Lock()
	if len(l.queue) > 0 {
		next := l.queue[0]
		l.amu.Unlock()
		next.done <- false
		return
	}
	l.flushing = false
	l.amu.Unlock()
}

// Await waits until the entry of an append ID is integrated and a stored
// signed checkpoint covers it, and returns its index and that checkpoint.
func (l *Log) Await(ctx context.Context, id int64) (uint64, []byte, error) {
	for {
		ch := l.changedChan()
		if idx, cp, ok := l.recentIndex(id); ok {
			return idx, cp, nil
		}
		idx, err := l.cfg.Store.IndexOf(ctx, id)
		if err == nil {
			st, err := l.cfg.Store.State(ctx)
			if err != nil {
				return 0, nil, err
			}
			if st.Checkpoint != nil && st.CheckpointSize > idx {
				return idx, st.Checkpoint, nil
			}
		} else if !errors.Is(err, ErrNotFound) {
			return 0, nil, err
		}
		t := time.NewTimer(l.cfg.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, nil, ctx.Err()
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
}

// Run integrates pending entries and signs checkpoints while this process
// holds the integrator lease, and runs the self-check at start and every
// CheckEvery, until ctx is done. It returns nil when ctx is done.
func (l *Log) Run(ctx context.Context) error {
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := l.cfg.Store.ReleaseLease(rctx, l.cfg.Holder); err != nil {
			l.log.WarnContext(rctx, "audit: releasing the integrator lease", "err", err)
		}
		l.leaseUntil.Store(0)
		l.update(func(s *Status) { s.Leader = false })
	}()
	if st, ok := l.cfg.Store.(InlineStore); ok {
		st.SetInline(inliner{l}) // inline.go
		defer st.SetInline(nil)
	}
	l.Check(ctx)
	poll := time.NewTicker(l.cfg.Poll)
	defer poll.Stop()
	var check <-chan time.Time
	if l.cfg.CheckEvery > 0 {
		t := time.NewTicker(l.cfg.CheckEvery)
		defer t.Stop()
		check = t.C
	}
	kicked := true
	for {
		if ctx.Err() != nil {
			return nil
		}
		l.step(ctx, kicked)
		select {
		case <-ctx.Done():
			return nil
		case <-l.kick:
			kicked = true
		case <-poll.C:
			kicked = false
		case <-check:
			l.Check(ctx)
		}
	}
}

// step renews or takes the lease and, when leading and healthy,
// integrates until nothing is pending.
func (l *Log) step(ctx context.Context, kicked bool) {
	if !l.lead(ctx) || !l.Status().Healthy {
		return
	}
	if !kicked {
		// Look before taking the write lock: most polls find nothing.
		st, err := l.cfg.Store.State(ctx)
		if err != nil {
			l.log.WarnContext(ctx, "audit: reading the tree state", "err", err)
			return
		}
		if st.Checkpoint != nil && st.CheckpointSize == st.Size {
			n, err := l.cfg.Store.PendingCount(ctx)
			if err != nil {
				l.log.WarnContext(ctx, "audit: counting pending entries", "err", err)
				return
			}
			if n == 0 {
				l.update(func(s *Status) { s.Size, s.CheckpointSize = st.Size, st.CheckpointSize })
				return
			}
		}
	}
	for ctx.Err() == nil {
		more, err := l.IntegrateOnce(ctx)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, ErrHistory) {
				l.log.ErrorContext(ctx, "audit: integration failed", "err", err)
			}
			return
		}
		if !more {
			return
		}
		if !l.lead(ctx) {
			return
		}
	}
}

// lead renews the lease when a third of its time has passed (or takes it
// when free) and reports whether this process holds it.
func (l *Log) lead(ctx context.Context) bool {
	leader := l.Status().Leader
	if leader && time.Since(l.leaseRenewed) < l.cfg.LeaseTTL/3 {
		return true
	}
	// A follower asks as often as the leader renews, not at every poll.
	if !leader && !l.leaseTried.IsZero() && time.Since(l.leaseTried) < l.cfg.LeaseTTL/3 {
		return false
	}
	l.leaseTried = time.Now()
	ok, err := l.cfg.Store.AcquireLease(ctx, l.cfg.Holder, l.cfg.LeaseTTL)
	if err != nil {
		if ctx.Err() == nil {
			l.log.WarnContext(ctx, "audit: integrator lease", "err", err)
		}
		ok = false
	}
	if ok {
		l.leaseRenewed = time.Now()
		l.leaseUntil.Store(l.leaseRenewed.Add(l.cfg.LeaseTTL / 2).UnixNano())
	} else {
		l.leaseUntil.Store(0)
	}
	if ok != leader {
		l.log.InfoContext(ctx, "audit: integrator lease", "holder", l.cfg.Holder, "leader", ok)
	}
	l.update(func(s *Status) { s.Leader = ok })
	return ok
}

// IntegrateOnce runs one integration: it checks the stored right edge of
// the tree against the latest signed checkpoint, appends up to MaxBatch
// pending entries, and signs a checkpoint of the new tree. It reports
// whether a full batch was taken (more may be pending). A history
// mismatch marks the log unhealthy.
func (l *Log) IntegrateOnce(ctx context.Context) (more bool, err error) {
	if st := l.Status(); !st.Healthy {
		return false, fmt.Errorf("%w (%s)", ErrHistory, st.Problem)
	}
	// Waiters hear of the batch once the lock is free again, so that a
	// writer they wake can integrate its own entries inline (inline.go).
	notify := false
	defer func() {
		if notify {
			l.notify()
		}
	}()
	l.emu.Lock()
	defer l.emu.Unlock()
	prev := l.edge
	// Whatever happens, the next integration starts from the store again
	// unless this one commits.
	l.edge = nil
	var (
		res   extension
		taken int
	)
	wrote, err := l.cfg.Store.Integrate(ctx, l.cfg.MaxBatch, l.integrateFunc(prev, &res, &taken))
	if err != nil {
		if errors.Is(err, ErrHistory) {
			l.fail(ctx, err)
		}
		return false, err
	}
	if wrote {
		l.committed(res)
		notify = true
		return taken == l.cfg.MaxBatch, nil
	}
	if res.edge != nil && !res.sign {
		l.edge = res.edge // nothing to do, and the tree is as this process left it
	}
	if res.sign {
		if err := l.sign(ctx, res.size, res.root); err != nil {
			return false, err
		}
	}
	return taken == l.cfg.MaxBatch, nil
}

// integrateFunc is one integration from prev, the edge this process last
// committed (nil: rebuild it from the store): it extends the tree with the
// pending entries and signs the checkpoint of the grown tree, to be stored
// with it in one commit. What it computed is left in res, and how many
// entries it was given in taken.
func (l *Log) integrateFunc(prev *edge, res *extension, taken *int) IntegrateFunc {
	return func(ctx context.Context, st TreeState, pending []Pending, tile func(int, uint64) ([]byte, error)) (*Batch, error) {
		*taken = len(pending)
		var err error
		*res, err = l.extend(st, pending, tile, prev)
		if err != nil || res.batch == nil {
			return nil, err
		}
		if res.batch.Checkpoint, err = SignCheckpoint(Checkpoint{Origin: l.cfg.Origin, Size: res.size, Root: res.root}, l.signer); err != nil {
			return nil, err
		}
		return res.batch, nil
	}
}

// committed takes in an integration whose batch (with its checkpoint) is
// durable: its edge is the next integration's start, and its entries'
// indexes answer Await (emu held; the caller notifies the waiters once it
// is released).
func (l *Log) committed(res extension) {
	b := res.batch
	n := int64(len(b.Entries))
	res.edge.checkpoint = b.Checkpoint
	l.edge = res.edge
	now := l.cfg.Now()
	l.smu.Lock()
	l.status.Integrated += n
	l.status.Batches++
	l.status.Size = b.Size
	l.status.CheckpointSize = b.Size
	l.status.LastCheckpoint = now
	l.checkpoint, l.checkpointSize = b.Checkpoint, b.Size
	for _, e := range b.Entries {
		l.remember(e.AppendID, e.Index)
	}
	l.smu.Unlock()
}

// remember records that append ID id was integrated at index idx (smu
// held), forgetting the oldest beyond recentMax.
func (l *Log) remember(id int64, idx uint64) {
	if l.recent == nil {
		l.recent = make(map[int64]uint64, recentMax)
	}
	if len(l.recentIDs) >= recentMax {
		delete(l.recent, l.recentIDs[0])
		l.recentIDs = l.recentIDs[1:]
	}
	l.recent[id] = idx
	l.recentIDs = append(l.recentIDs, id)
}

// recentIndex answers Await from memory: the index of an append ID this
// process integrated, with the checkpoint it stored covering it.
func (l *Log) recentIndex(id int64) (uint64, []byte, bool) {
	l.smu.Lock()
	defer l.smu.Unlock()
	idx, ok := l.recent[id]
	if !ok || l.checkpoint == nil || l.checkpointSize <= idx {
		return 0, nil, false
	}
	return idx, l.checkpoint, true
}

// sign signs and stores a checkpoint of the tree at size with root.
func (l *Log) sign(ctx context.Context, size uint64, root Hash) error {
	msg, err := SignCheckpoint(Checkpoint{Origin: l.cfg.Origin, Size: size, Root: root}, l.signer)
	if err != nil {
		return err
	}
	stored, err := l.cfg.Store.PutCheckpoint(ctx, size, msg)
	if err != nil {
		return fmt.Errorf("audit: store checkpoint: %w", err)
	}
	if stored {
		l.update(func(s *Status) { s.CheckpointSize = size; s.LastCheckpoint = l.cfg.Now() })
		l.smu.Lock()
		if size >= l.checkpointSize {
			l.checkpoint, l.checkpointSize = msg, size
		}
		l.smu.Unlock()
		l.notify()
	}
	return nil
}

// fail marks the log unhealthy: loudly, once per problem.
func (l *Log) fail(ctx context.Context, err error) {
	l.update(func(s *Status) {
		s.CheckFailures++
		if s.Healthy || s.Problem != err.Error() {
			l.log.ErrorContext(ctx, "AUDIT LOG HISTORY MISMATCH: refusing to sign checkpoints until the stored log matches its signed checkpoint again; restore the database, do not edit it",
				"err", err)
		}
		s.Healthy = false
		s.Problem = err.Error()
	})
}

// extension is the outcome of extend.
type extension struct {
	batch *Batch
	// edge is the tree once batch is written (without its checkpoint), or
	// with no batch, the unchanged tree when it is the one this process
	// committed last.
	edge *edge
	// sign: a checkpoint of (size, root) is to be signed.
	sign bool
	size uint64
	root Hash
}

// extend checks the stored right edge of the tree against the state and
// the latest checkpoint, then appends the pending entries to it.
func (l *Log) extend(st TreeState, pending []Pending, readTile func(int, uint64) ([]byte, error), prev *edge) (extension, error) {
	if st.Checkpoint == nil {
		if st.Size != 0 || st.Root != EmptyRoot {
			return extension{}, historyError("the tree holds %d entries but there is no signed checkpoint", st.Size)
		}
		// Sign the empty tree before anything goes into it.
		return extension{sign: true, size: 0, root: EmptyRoot}, nil
	}
	// Every tile read is remembered for the next integration; a tile this
	// process read or wrote before must come back unchanged.
	cached := prev.matches(st)
	var known map[tileKey][]byte
	if cached {
		known = prev.tiles
	}
	seen := map[tileKey][]byte{}
	get := func(t Tile) ([]byte, error) {
		b, err := readTile(t.Level, t.Index)
		if errors.Is(err, ErrNotFound) {
			return nil, historyError("tile %s is missing", t.Path())
		}
		if err != nil {
			return nil, err
		}
		k := tileKey{t.Level, t.Index}
		if was, ok := known[k]; ok && !bytes.Equal(was, b) {
			return nil, historyError("tile %d/%d changed outside the log since it was written", t.Level, t.Index)
		}
		seen[k] = b
		return b, nil
	}
	var (
		r   *compact.Range
		err error
	)
	if cached {
		// The state is the one this process committed last: its right
		// edge and checkpoint were verified then.
		if r, err = RangeFromHashes(prev.size, prev.hashes); err != nil {
			return extension{}, err
		}
		for k, b := range prev.tiles {
			seen[k] = b
		}
	} else {
		if r, err = l.verifiedEdge(st, get); err != nil {
			return extension{}, err
		}
	}
	if len(pending) == 0 {
		ext := extension{sign: st.CheckpointSize < st.Size, size: st.Size, root: st.Root}
		if cached {
			ext.edge = prev // still the stored tree
		}
		return ext, nil
	}

	// Append the pending entries, collecting every tile they change.
	b := &Batch{Entries: make([]Entry, len(pending))}
	leaves := make([]Hash, len(pending))
	for i, p := range pending {
		if len(p.Data) > MaxEntrySize {
			return extension{}, fmt.Errorf("audit: pending entry %d holds %d bytes, more than an entry bundle can carry", p.ID, len(p.Data))
		}
		leaves[i] = LeafHash(p.Data)
		b.Entries[i] = Entry{Index: st.Size + uint64(i), AppendID: p.ID, Data: p.Data}
	}
	if b.Tiles, err = growTiles(r, leaves, get); err != nil {
		return extension{}, err
	}
	if b.Root, err = RootOf(r); err != nil {
		return extension{}, err
	}
	b.Size = r.End()
	for _, t := range b.Tiles {
		seen[tileKey{t.Level, t.Index}] = t.Hashes
	}
	// Only the right edge is read again: keep the last tile of each level.
	last := map[int]uint64{}
	for k := range seen {
		if i, ok := last[k.level]; !ok || k.index > i {
			last[k.level] = k.index
		}
	}
	for k := range seen {
		if k.index != last[k.level] {
			delete(seen, k)
		}
	}
	e := &edge{size: b.Size, root: b.Root, hashes: RangeHashes(r), tiles: seen}
	return extension{batch: b, edge: e, sign: true, size: b.Size, root: b.Root}, nil
}

// verifiedEdge rebuilds the compact range of the stored tree from its
// tiles and checks it, and the tree at the latest checkpoint, against the
// state and that checkpoint's signature.
func (l *Log) verifiedEdge(st TreeState, get TileGetter) (*compact.Range, error) {
	cp, err := OpenCheckpoint(st.Checkpoint, l.verifier)
	if err != nil {
		return nil, historyError("the latest stored checkpoint does not verify with this log's key %s: %v", l.vkey, err)
	}
	if cp.Size != st.CheckpointSize {
		return nil, historyError("the latest checkpoint is of %d entries but is stored as of %d", cp.Size, st.CheckpointSize)
	}
	if cp.Size > st.Size {
		return nil, historyError("the latest checkpoint covers %d entries but the tree holds %d: entries were removed", cp.Size, st.Size)
	}
	r, err := RangeFromTiles(st.Size, get)
	if err != nil {
		return nil, err
	}
	root, err := RootOf(r)
	if err != nil {
		return nil, err
	}
	if root != st.Root {
		return nil, historyError("the stored tiles give root %s for %d entries, but the tree's root is %s", root, st.Size, st.Root)
	}
	if cp.Size < st.Size {
		rc, err := RangeFromTiles(cp.Size, get)
		if err != nil {
			return nil, err
		}
		if croot, err := RootOf(rc); err != nil || croot != cp.Root {
			return nil, historyError("the stored tiles give root %s for %d entries, but the signed checkpoint says %s", croot, cp.Size, cp.Root)
		}
	} else if st.Root != cp.Root {
		return nil, historyError("the tree's root %s differs from the signed checkpoint's %s at %d entries", st.Root, cp.Root, cp.Size)
	}
	return r, nil
}

package auditclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/signet-trust/signet/internal/atomicfile"
	"github.com/signet-trust/signet/internal/audit"
)

// State is what a client remembers of a log between runs: the latest
// checkpoint it saw (every later one must be consistent with it), and how
// far it has checked the entries themselves, as the compact range of the
// tree at that size.
type State struct {
	Checkpoint    string   `json:"checkpoint"`
	VerifiedSize  uint64   `json:"verified_size"`
	VerifiedRange []string `json:"verified_range,omitempty"`
}

// LoadState reads a state file; a missing file is no state (nil, nil).
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("the state file %s is not a signet audit state: %v", path, err)
	}
	return &s, nil
}

// Save writes the state file atomically (mode 0600, parents 0700).
func (s *State) Save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

// StatePath returns the default state file of a log in a trust directory.
func StatePath(trustDir, origin string) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, origin)
	return filepath.Join(trustDir, "audit", name+".json")
}

// Report says what a Verify did.
type Report struct {
	// OldSize is the size of the remembered checkpoint (0 without one),
	// Size the size of the verified one.
	OldSize, Size uint64
	// Checked is how many entries were checked against their tiles and
	// hashed into the tree (the new ones, or all of them).
	Checked uint64
	// Requests and Bytes count the HTTP requests and body bytes.
	Requests, Bytes int64
}

// Verify fetches the log's checkpoint and verifies it: its signature; its
// consistency with the checkpoint remembered in prev (nil for none); every
// entry not checked before, against its leaf hash in its level-0 tile;
// every tile hash above them, against the hashes below; and the root
// recomputed from the entries, against the checkpoint. It returns the
// state to remember next.
func (c *Client) Verify(ctx context.Context, prev *State) (*State, Report, error) {
	return c.verify(ctx, prev, nil)
}

// VerifyEntries is Verify that also passes each entry it checks, in index
// order, to fn (every entry when prev is nil). Entries are passed before
// the root is compared: fn must not act on them before VerifyEntries
// returns nil.
func (c *Client) VerifyEntries(ctx context.Context, prev *State, fn func(index uint64, entry []byte) error) (*State, Report, error) {
	return c.verify(ctx, prev, fn)
}

func (c *Client) verify(ctx context.Context, prev *State, fn func(uint64, []byte) error) (*State, Report, error) {
	r0, b0 := c.Requests()
	var rep Report
	done := func(st *State, err error) (*State, Report, error) {
		r1, b1 := c.Requests()
		rep.Requests, rep.Bytes = r1-r0, b1-b0
		return st, rep, err
	}
	cp, msg, err := c.Checkpoint(ctx)
	if err != nil {
		return done(nil, err)
	}
	rep.Size = cp.Size
	ts := c.newTiles()

	// The range of the tree already checked entry by entry.
	r := audit.NewRange()
	if prev != nil {
		old, err := c.OpenCheckpoint([]byte(prev.Checkpoint))
		if err != nil {
			return done(nil, fmt.Errorf("the checkpoint remembered in the state: %w", err))
		}
		rep.OldSize = old.Size
		if err := c.consistent(ctx, ts, old, cp); err != nil {
			return done(nil, err)
		}
		if pr, err := prevRange(prev, old.Size); err == nil {
			r = pr
		}
	}

	// Every hash tile above the new entries must hold what they hash to.
	var verr error
	visit := func(id compact.NodeID, h []byte) {
		level, pos, ok := audit.TileNode(id)
		if !ok || level == 0 || verr != nil {
			return
		}
		t, _ := audit.TileFor(level, pos, cp.Size)
		b, err := ts.get(ctx, t)
		if err != nil {
			verr = err
			return
		}
		if audit.Hash(b[(pos%audit.TileWidth)*audit.HashSize:][:audit.HashSize]) != audit.Hash(h) {
			verr = verifyError("hash %d of %s does not match the entries below it", pos%audit.TileWidth, t.Path())
		}
	}

	from := r.End()
	if from > cp.Size {
		from = 0
		r = audit.NewRange()
	}
	err = c.walk(ctx, ts, from, cp.Size, func(index uint64, entry []byte, leaf audit.Hash) error {
		if index < r.End() {
			return nil
		}
		if err := r.Append(leaf[:], visit); err != nil {
			return err
		}
		if verr != nil {
			return verr
		}
		rep.Checked++
		if fn != nil {
			return fn(index, entry)
		}
		return nil
	})
	if err != nil {
		return done(nil, err)
	}
	root, err := audit.RootOf(r)
	if err != nil {
		return done(nil, err)
	}
	if root != cp.Root {
		return done(nil, verifyError("the log's %d entries hash to root %s, but its checkpoint says %s", cp.Size, root, cp.Root))
	}
	st := &State{Checkpoint: string(msg), VerifiedSize: cp.Size}
	for _, h := range audit.RangeHashes(r) {
		st.VerifiedRange = append(st.VerifiedRange, h.String())
	}
	return done(st, nil)
}

// prevRange rebuilds the remembered compact range; it must not go beyond
// the remembered checkpoint.
func prevRange(prev *State, max uint64) (*compact.Range, error) {
	if prev.VerifiedSize > max {
		return nil, errors.New("verified beyond the checkpoint")
	}
	hs := make([]audit.Hash, len(prev.VerifiedRange))
	for i, s := range prev.VerifiedRange {
		h, err := audit.ParseHash(s)
		if err != nil {
			return nil, err
		}
		hs[i] = h
	}
	return audit.RangeFromHashes(prev.VerifiedSize, hs)
}

// walk fetches (through ts, without keeping them) the level-0 tiles and entry bundles holding entries
// [from, size) of the tree of size, Parallel at a time, checks every
// entry of each against its leaf hash, and calls fn for each entry from
// the first of from's tile on, in order.
func (c *Client) walk(ctx context.Context, ts *tiles, from, size uint64, fn func(index uint64, entry []byte, leaf audit.Hash) error) error {
	if from >= size {
		return nil
	}
	first, last := from/audit.TileWidth, (size-1)/audit.TileWidth
	type fetched struct {
		hashes  []byte
		entries [][]byte
		err     error
	}
	par := max(c.Parallel, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]chan fetched, par)
	for i := range results {
		results[i] = make(chan fetched, 1)
	}
	sem := make(chan struct{}, par)
	start := func(k uint64) {
		ch := results[k%uint64(par)]
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			w := audit.TileWidthAt(0, k, size)
			var f fetched
			f.hashes, f.err = ts.fetch(ctx, audit.Tile{Level: 0, Index: k, Width: w}, false)
			if f.err == nil {
				f.entries, f.err = c.bundle(ctx, audit.Tile{Level: audit.EntriesLevel, Index: k, Width: w})
			}
			ch <- f
		}()
	}
	next := first
	for ; next <= last && next < first+uint64(par); next++ {
		start(next)
	}
	for k := first; k <= last; k++ {
		f := <-results[k%uint64(par)]
		if next <= last {
			start(next)
			next++
		}
		if f.err != nil {
			return f.err
		}
		for i, e := range f.entries {
			index := k*audit.TileWidth + uint64(i)
			leaf := audit.LeafHash(e)
			if leaf != audit.Hash(f.hashes[i*audit.HashSize:][:audit.HashSize]) {
				return verifyError("entry %d does not match its leaf hash in %s: the log was changed", index, audit.Tile{Level: 0, Index: k, Width: len(f.entries)}.Path())
			}
			if err := fn(index, e, leaf); err != nil {
				return err
			}
		}
	}
	return nil
}

// consistent proves from the tiles that the tree of cp extends the tree
// of old.
func (c *Client) consistent(ctx context.Context, ts *tiles, old, cp audit.Checkpoint) error {
	switch {
	case cp.Size < old.Size:
		return verifyError("the log has %d entries, fewer than the %d of the checkpoint remembered: its history was truncated", cp.Size, old.Size)
	case cp.Size == old.Size:
		if cp.Root != old.Root {
			return verifyError("the log's checkpoint of %d entries has root %s, but the one remembered has %s: its history was rewritten", cp.Size, cp.Root, old.Root)
		}
		return nil
	case old.Size == 0:
		if old.Root != audit.EmptyRoot {
			return verifyError("the remembered checkpoint of the empty log has a wrong root")
		}
		return nil
	}
	nodes, err := proof.Consistency(old.Size, cp.Size)
	if err != nil {
		return err
	}
	hashes, err := nodeHashes(ctx, ts, nodes.IDs, cp.Size)
	if err != nil {
		return err
	}
	p, err := nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return err
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, cp.Size, p, old.Root[:], cp.Root[:]); err != nil {
		return verifyError("the log of %d entries is not consistent with the checkpoint of %d entries remembered: its history was rewritten (%v)", cp.Size, old.Size, err)
	}
	return nil
}

func nodeHashes(ctx context.Context, ts *tiles, ids []compact.NodeID, size uint64) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := audit.NodeFromTiles(id, size, ts.getter(ctx))
		if err != nil {
			return nil, err
		}
		out[i] = h[:]
	}
	return out, nil
}

// Consistent proves from the log's tiles that the tree of cp extends the
// tree of old (both verified checkpoints of this log).
func (c *Client) Consistent(ctx context.Context, old, cp audit.Checkpoint) error {
	return c.consistent(ctx, c.newTiles(), old, cp)
}

// Proof is an inclusion proof of one entry in a checkpoint's tree.
type Proof struct {
	Index    uint64
	LeafHash audit.Hash
	Hashes   []audit.Hash
	// Checkpoint is the signed checkpoint note the proof leads to.
	Checkpoint []byte
}

// Prove builds the inclusion proof of entry index in the tree of cp
// (whose signed note is msg) from the tiles, and verifies it.
func (c *Client) Prove(ctx context.Context, cp audit.Checkpoint, msg []byte, index uint64) (*Proof, error) {
	if index >= cp.Size {
		return nil, fmt.Errorf("the log has %d entries; there is no entry %d", cp.Size, index)
	}
	ts := c.newTiles()
	nodes, err := proof.Inclusion(index, cp.Size)
	if err != nil {
		return nil, err
	}
	hashes, err := nodeHashes(ctx, ts, nodes.IDs, cp.Size)
	if err != nil {
		return nil, err
	}
	p, err := nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return nil, err
	}
	leaf, err := audit.NodeFromTiles(compact.NewNodeID(0, index), cp.Size, ts.getter(ctx))
	if err != nil {
		return nil, err
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, leaf[:], p, cp.Root[:]); err != nil {
		return nil, verifyError("the tiles do not prove entry %d in the checkpoint of %d entries: %v", index, cp.Size, err)
	}
	out := &Proof{Index: index, LeafHash: leaf, Checkpoint: msg}
	for _, h := range p {
		out.Hashes = append(out.Hashes, audit.Hash(h))
	}
	return out, nil
}

// Entry fetches entry index of the tree of cp and checks it against its
// proven leaf hash.
func (c *Client) Entry(ctx context.Context, p *Proof, size uint64) ([]byte, error) {
	k := p.Index / audit.TileWidth
	entries, err := c.bundle(ctx, audit.Tile{Level: audit.EntriesLevel, Index: k, Width: audit.TileWidthAt(0, k, size)})
	if err != nil {
		return nil, err
	}
	e := entries[p.Index%audit.TileWidth]
	if audit.LeafHash(e) != p.LeafHash {
		return nil, verifyError("entry %d as served does not match its proven leaf hash", p.Index)
	}
	return e, nil
}

// VerifyProof checks an inclusion proof against its checkpoint (verified
// with the client's key).
func (c *Client) VerifyProof(p *Proof) error {
	cp, err := c.OpenCheckpoint(p.Checkpoint)
	if err != nil {
		return err
	}
	hs := make([][]byte, len(p.Hashes))
	for i := range p.Hashes {
		hs[i] = p.Hashes[i][:]
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.Index, cp.Size, p.LeafHash[:], hs, cp.Root[:]); err != nil {
		return verifyError("entry %d is not proven in the checkpoint of %d entries: %v", p.Index, cp.Size, err)
	}
	return nil
}

// Format returns the proof in the C2SP tlog-proof text format.
func (p *Proof) Format() string {
	var b strings.Builder
	b.WriteString("c2sp.org/tlog-proof@v1\n")
	fmt.Fprintf(&b, "index %d\n", p.Index)
	for _, h := range p.Hashes {
		b.WriteString(h.String() + "\n")
	}
	b.WriteString("\n")
	b.Write(p.Checkpoint)
	return b.String()
}

// ProveEntry is what a client checking one entry of the log does (such as
// signet verify, for the log entry of a timestamp): it fetches the log's
// checkpoint, proves it consistent with the checkpoint remembered in prev
// (if any), proves entry index in it and returns the entry, the proof and
// the state to remember (the new checkpoint; how far the entries were
// checked one by one is kept from prev).
func (c *Client) ProveEntry(ctx context.Context, prev *State, index uint64) ([]byte, *Proof, *State, error) {
	cp, msg, err := c.Checkpoint(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	next := &State{Checkpoint: string(msg)}
	if prev != nil {
		old, err := c.OpenCheckpoint([]byte(prev.Checkpoint))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("the checkpoint remembered in the state: %w", err)
		}
		if err := c.Consistent(ctx, old, cp); err != nil {
			return nil, nil, nil, err
		}
		next.VerifiedSize, next.VerifiedRange = prev.VerifiedSize, prev.VerifiedRange
	}
	p, err := c.Prove(ctx, cp, msg, index)
	if err != nil {
		return nil, nil, nil, err
	}
	e, err := c.Entry(ctx, p, cp.Size)
	if err != nil {
		return nil, nil, nil, err
	}
	return e, p, next, nil
}

package audit

import (
	"context"
	"errors"
	"time"

	"github.com/transparency-dev/merkle/compact"
)

// checkChunk is how many entries the self-check reads per query (a
// multiple of TileWidth).
const checkChunk = 16 * TileWidth

// Check recomputes the whole stored tree from the stored entries: every
// entry against its leaf hash in its level-0 tile, every stored tile hash
// against the hashes below it, the root at the latest checkpoint's size
// against the checkpoint (whose signature it verifies), and the root of
// the whole tree against the stored state. A mismatch marks the log
// unhealthy (no checkpoint is signed until a later Check passes); a pass
// marks it healthy again. It returns the mismatch or the error that
// stopped the check.
func (l *Log) Check(ctx context.Context) error {
	// The next integration rebuilds the tree's edge from the store too.
	l.emu.Lock()
	l.edge = nil
	l.emu.Unlock()
	start := time.Now()
	err := l.checkTree(ctx)
	took := time.Since(start)
	if err != nil {
		if errors.Is(err, ErrHistory) {
			l.fail(ctx, err)
			l.update(func(s *Status) { s.Checked, s.LastCheck, s.LastCheckDuration = true, l.cfg.Now(), took })
		} else if ctx.Err() == nil {
			l.log.ErrorContext(ctx, "audit: self-check could not run", "err", err)
		}
		return err
	}
	l.update(func(s *Status) {
		if !s.Healthy {
			l.log.WarnContext(ctx, "audit: the stored log matches its signed checkpoint again", "was", s.Problem)
		}
		s.Checked, s.Healthy, s.Problem = true, true, ""
		s.LastCheck, s.LastCheckDuration = l.cfg.Now(), took
	})
	l.log.InfoContext(ctx, "audit: self-check passed", "duration", took)
	return nil
}

func (l *Log) checkTree(ctx context.Context) error {
	st, err := l.cfg.Store.State(ctx)
	if err != nil {
		return err
	}
	l.update(func(s *Status) { s.Size, s.CheckpointSize = st.Size, st.CheckpointSize })
	if st.Checkpoint == nil {
		if st.Size != 0 || st.Root != EmptyRoot {
			return historyError("the tree holds %d entries but there is no signed checkpoint", st.Size)
		}
		return nil
	}
	cp, err := OpenCheckpoint(st.Checkpoint, l.verifier)
	if err != nil {
		return historyError("the latest stored checkpoint does not verify with this log's key %s: %v", l.vkey, err)
	}
	if cp.Size != st.CheckpointSize || cp.Size > st.Size {
		return historyError("the latest checkpoint covers %d entries (stored as %d) but the tree holds %d", cp.Size, st.CheckpointSize, st.Size)
	}
	if cp.Size == 0 && cp.Root != EmptyRoot {
		return historyError("the signed checkpoint of the empty tree has root %s", cp.Root)
	}

	// The tile currently compared at each level ≥ 1.
	type current struct {
		index  uint64
		hashes []byte
	}
	upper := map[int]*current{}
	var verr error
	visit := func(id compact.NodeID, h []byte) {
		level, pos, ok := TileNode(id)
		if !ok || level == 0 || verr != nil {
			return
		}
		idx := pos / TileWidth
		c := upper[level]
		if c == nil || c.index != idx {
			b, err := l.cfg.Store.Tile(ctx, level, idx)
			if errors.Is(err, ErrNotFound) {
				verr = historyError("tile %s is missing", Tile{Level: level, Index: idx, Width: TileWidth}.Path())
				return
			} else if err != nil {
				verr = err
				return
			}
			c = &current{index: idx, hashes: b}
			upper[level] = c
		}
		off := int(pos % TileWidth)
		if len(c.hashes) < (off+1)*HashSize {
			verr = historyError("tile %d/%d holds %d hashes; the tree needs %d", level, idx, len(c.hashes)/HashSize, off+1)
			return
		}
		if hashAt(c.hashes, off) != Hash(h) {
			verr = historyError("hash %d of tile %d/%d does not match the tiles below it", off, level, idx)
		}
	}

	r := NewRange()
	for start := uint64(0); start < st.Size; start += checkChunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		count := min(uint64(checkChunk), st.Size-start)
		entries, err := l.cfg.Store.Entries(ctx, start, int(count))
		if err != nil {
			return err
		}
		for i := uint64(0); i < count; i++ {
			idx := start + i
			if int(i) >= len(entries) || entries[i].Index != idx {
				return historyError("entry %d is missing", idx)
			}
		}
		for i := uint64(0); i < count; i += TileWidth {
			tileIdx := (start + i) / TileWidth
			n := min(uint64(TileWidth), count-i)
			t0, err := l.cfg.Store.Tile(ctx, 0, tileIdx)
			if errors.Is(err, ErrNotFound) {
				return historyError("tile %s is missing", Tile{Level: 0, Index: tileIdx, Width: int(n)}.Path())
			} else if err != nil {
				return err
			}
			if uint64(len(t0)) < n*HashSize {
				return historyError("tile 0/%d holds %d hashes; the tree needs %d", tileIdx, len(t0)/HashSize, n)
			}
			for j := uint64(0); j < n; j++ {
				e := entries[i+j]
				lh := LeafHash(e.Data)
				if lh != hashAt(t0, int(j)) {
					return historyError("entry %d does not match its hash in tile 0/%d", e.Index, tileIdx)
				}
				if err := r.Append(lh[:], visit); err != nil {
					return err
				}
				if verr != nil {
					return verr
				}
				if r.End() == cp.Size {
					if root, err := RootOf(r); err != nil || root != cp.Root {
						return historyError("the entries give root %s at %d entries, but the signed checkpoint says %s", root, cp.Size, cp.Root)
					}
				}
			}
		}
	}
	root, err := RootOf(r)
	if err != nil {
		return err
	}
	if root != st.Root {
		return historyError("the entries give root %s for %d entries, but the stored tree's root is %s", root, st.Size, st.Root)
	}
	return nil
}

package audit

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/compact"
)

// Tiles (C2SP tlog-tiles) have height 8: a full tile holds 256 hashes.
const (
	TileHeight = 8
	TileWidth  = 1 << TileHeight
	// MaxLevel is the highest level a tile path may name.
	MaxLevel = 63
	// EntriesLevel is the Level of an entry bundle (tile/entries/…).
	EntriesLevel = -1
)

// Tile names one tile of the log: hashes at Level ≥ 0, or the entry bundle
// of level-0 tile Index when Level is EntriesLevel. Width is the number of
// hashes (or entries), 1 to TileWidth; less than TileWidth is a partial
// tile.
type Tile struct {
	Level int
	Index uint64
	Width int
}

// Full reports whether the tile is full.
func (t Tile) Full() bool { return t.Width == TileWidth }

// Path returns the tile's path below the log's prefix:
// tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>].
func (t Tile) Path() string {
	var b strings.Builder
	b.WriteString("tile/")
	if t.Level == EntriesLevel {
		b.WriteString("entries")
	} else {
		b.WriteString(strconv.Itoa(t.Level))
	}
	b.WriteByte('/')
	b.WriteString(formatTileIndex(t.Index))
	if t.Width < TileWidth {
		b.WriteString(".p/")
		b.WriteString(strconv.Itoa(t.Width))
	}
	return b.String()
}

func (t Tile) String() string { return t.Path() }

// formatTileIndex encodes n as zero-padded 3-digit elements, all but the
// last prefixed with x: 1234067 is x001/x234/067.
func formatTileIndex(n uint64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/", n%1000) + s
	}
	return s
}

// ErrBadTilePath reports a path that is not a tile path of tlog-tiles.
var ErrBadTilePath = errors.New("audit: not a tile path")

// ParseTilePath reads a path made by Tile.Path. It accepts only the
// canonical form: no leading zeros, no empty or extra elements, widths 1
// to 255 after .p/, indexes that fit 64 bits.
func ParseTilePath(path string) (Tile, error) {
	bad := func() (Tile, error) { return Tile{}, fmt.Errorf("%w: %q", ErrBadTilePath, path) }
	rest, ok := strings.CutPrefix(path, "tile/")
	if !ok {
		return bad()
	}
	levelStr, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return bad()
	}
	var t Tile
	if levelStr == "entries" {
		t.Level = EntriesLevel
	} else {
		l, ok := parseDecimal(levelStr, MaxLevel)
		if !ok {
			return bad()
		}
		t.Level = int(l)
	}
	t.Width = TileWidth
	if i := strings.Index(rest, ".p/"); i >= 0 {
		w, ok := parseDecimal(rest[i+3:], TileWidth-1)
		if !ok || w == 0 {
			return bad()
		}
		t.Width = int(w)
		rest = rest[:i]
	}
	elems := strings.Split(rest, "/")
	if len(elems) > 7 { // 2^64 has 20 digits
		return bad()
	}
	var n uint64
	for i, e := range elems {
		if i < len(elems)-1 {
			var ok bool
			if e, ok = strings.CutPrefix(e, "x"); !ok {
				return bad()
			}
		}
		if len(e) != 3 || e[0] < '0' || e[0] > '9' || e[1] < '0' || e[1] > '9' || e[2] < '0' || e[2] > '9' {
			return bad()
		}
		d := uint64(e[0]-'0')*100 + uint64(e[1]-'0')*10 + uint64(e[2]-'0')
		if n > (^uint64(0)-d)/1000 {
			return bad()
		}
		n = n*1000 + d
	}
	t.Index = n
	if formatTileIndex(n) != rest { // x000/… is not canonical
		return bad()
	}
	return t, nil
}

// parseDecimal reads a decimal without sign or leading zeros, at most max.
func parseDecimal(s string, max uint64) (uint64, bool) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > max {
		return 0, false
	}
	return v, true
}

// levelSize returns how many hashes level has in a tree of size: the
// number of complete subtrees of 256^level leaves.
func levelSize(level int, size uint64) uint64 {
	if level == EntriesLevel {
		level = 0
	}
	if level < 0 || TileHeight*level >= 64 {
		return 0
	}
	return size >> (TileHeight * uint(level))
}

// TileWidthAt returns the width of tile index at level (or of the entry
// bundle, for EntriesLevel) in a tree of size: TileWidth for a full tile,
// 1 to 255 for the partial tile on the right edge, 0 when the tree has no
// such tile.
func TileWidthAt(level int, index, size uint64) int {
	n := levelSize(level, size)
	if index >= n/TileWidth+1 {
		return 0
	}
	if w := n - index*TileWidth; w < TileWidth {
		return int(w)
	}
	return TileWidth
}

// TileFor returns the tile of a tree of size that holds hash position pos
// of level (or entry pos, for EntriesLevel); ok is false when the tree
// has no such hash.
func TileFor(level int, pos, size uint64) (t Tile, ok bool) {
	if pos >= levelSize(level, size) {
		return Tile{}, false
	}
	idx := pos / TileWidth
	return Tile{Level: level, Index: idx, Width: TileWidthAt(level, idx, size)}, true
}

// TileGetter returns the hashes of a tile of the tree, at least t.Width of
// them (more is allowed: a tile only ever grows, so a longer stored tile
// has the requested one as its prefix).
type TileGetter func(t Tile) ([]byte, error)

// NodeFromTiles returns the hash of the perfect subtree node id of a tree
// of size, reading the tile that holds its descendants at the nearest
// tiled level below it (the node itself when its level is a multiple of
// 8). The node must be complete in the tree.
func NodeFromTiles(id compact.NodeID, size uint64, get TileGetter) (Hash, error) {
	level := int(id.Level / TileHeight)
	below := id.Level % TileHeight
	first := id.Index << below
	count := uint64(1) << below
	if id.Index > (^uint64(0))>>below || first+count > levelSize(level, size) {
		return Hash{}, fmt.Errorf("audit: node (%d, %d) is not complete in a tree of %d entries", id.Level, id.Index, size)
	}
	t, _ := TileFor(level, first, size)
	data, err := get(t)
	if err != nil {
		return Hash{}, err
	}
	off := int(first % TileWidth)
	if len(data)%HashSize != 0 || len(data)/HashSize < off+int(count) {
		return Hash{}, fmt.Errorf("audit: %s holds %d bytes, too few for its width", t.Path(), len(data))
	}
	return subtreeHash(data[off*HashSize : (off+int(count))*HashSize]), nil
}

// subtreeHash returns the root of a perfect subtree whose leaves (a power
// of two of them) are the concatenated hashes.
func subtreeHash(hashes []byte) Hash {
	n := len(hashes) / HashSize
	if n == 1 {
		return hashAt(hashes, 0)
	}
	level := make([]Hash, n)
	for i := range level {
		level[i] = hashAt(hashes, i)
	}
	for len(level) > 1 {
		for i := 0; i < len(level)/2; i++ {
			level[i] = NodeHash(level[2*i], level[2*i+1])
		}
		level = level[:len(level)/2]
	}
	return level[0]
}

// TileRoot returns the hash a full tile contributes to the level above:
// the root of the 256 hashes.
func TileRoot(hashes []byte) (Hash, error) {
	if len(hashes) != TileWidth*HashSize {
		return Hash{}, fmt.Errorf("audit: a full tile has %d bytes, not %d", TileWidth*HashSize, len(hashes))
	}
	return subtreeHash(hashes), nil
}

// rangeFactory makes compact ranges with RFC 6962 hashing.
var rangeFactory = &compact.RangeFactory{Hash: hashChildren}

// NewRange returns an empty compact range of the tree, to append leaf
// hashes to.
func NewRange() *compact.Range { return rangeFactory.NewEmptyRange(0) }

// RangeFromHashes rebuilds the compact range [0, size) from its hashes
// (as Range.Hashes returns them).
func RangeFromHashes(size uint64, hashes []Hash) (*compact.Range, error) {
	hs := make([][]byte, len(hashes))
	for i := range hashes {
		hs[i] = hashes[i][:]
	}
	return rangeFactory.NewRange(0, size, hs)
}

// RangeFromTiles rebuilds the compact range [0, size) of the tree from its
// tiles: the roots of the perfect subtrees on the tree's right edge.
func RangeFromTiles(size uint64, get TileGetter) (*compact.Range, error) {
	ids := compact.RangeNodes(0, size, nil)
	hashes := make([]Hash, len(ids))
	// The nodes of one level often share a tile: read each tile once.
	memo := map[Tile][]byte{}
	cached := func(t Tile) ([]byte, error) {
		if b, ok := memo[t]; ok {
			return b, nil
		}
		b, err := get(t)
		if err == nil {
			memo[t] = b
		}
		return b, err
	}
	for i, id := range ids {
		h, err := NodeFromTiles(id, size, cached)
		if err != nil {
			return nil, err
		}
		hashes[i] = h
	}
	return RangeFromHashes(size, hashes)
}

// RangeHashes returns the hashes of a compact range.
func RangeHashes(r *compact.Range) []Hash {
	hs := r.Hashes()
	out := make([]Hash, len(hs))
	for i, h := range hs {
		out[i] = Hash(h)
	}
	return out
}

// RootOf returns the root hash of the tree a compact range [0, n) covers.
func RootOf(r *compact.Range) (Hash, error) {
	if r.Begin() != 0 {
		return Hash{}, errors.New("audit: the range does not start at 0")
	}
	if r.End() == 0 {
		return EmptyRoot, nil
	}
	h, err := r.GetRootHash(nil)
	if err != nil {
		return Hash{}, err
	}
	return Hash(h), nil
}

// TileNode places a tree node in the tiles: nodes whose level is a
// multiple of 8 are stored, as hash pos of tile level level/8.
func TileNode(id compact.NodeID) (level int, pos uint64, stored bool) {
	if id.Level%TileHeight != 0 {
		return 0, 0, false
	}
	return int(id.Level / TileHeight), id.Index, true
}

// growTiles appends leaves to the compact range r of the tree and returns
// every tile that changed, whole (hashes before the new ones read through
// get, which must return at least the tile's width at the old size).
// Tiles come sorted by level, then index.
func growTiles(r *compact.Range, leaves []Hash, get TileGetter) ([]TileData, error) {
	type key struct {
		level int
		index uint64
	}
	tiles := map[key]*TileData{}
	var verr error
	visit := func(id compact.NodeID, h []byte) {
		level, pos, ok := TileNode(id)
		if !ok || verr != nil {
			return
		}
		k := key{level, pos / TileWidth}
		td := tiles[k]
		off := int(pos % TileWidth)
		if td == nil {
			td = &TileData{Level: level, Index: k.index, Hashes: make([]byte, 0, TileWidth*HashSize)}
			if off > 0 {
				old, err := get(Tile{Level: level, Index: k.index, Width: off})
				if err != nil {
					verr = err
					return
				}
				if len(old) < off*HashSize {
					verr = historyError("tile %d/%d holds %d hashes, fewer than the tree's %d", level, k.index, len(old)/HashSize, off)
					return
				}
				td.Hashes = append(td.Hashes, old[:off*HashSize]...)
			}
			tiles[k] = td
		}
		if len(td.Hashes) != off*HashSize {
			verr = fmt.Errorf("audit: internal error: hash %d of tile %d/%d computed out of order", off, level, k.index)
			return
		}
		td.Hashes = append(td.Hashes, h...)
	}
	for _, lh := range leaves {
		if err := r.Append(lh[:], visit); err != nil {
			return nil, err
		}
		if verr != nil {
			return nil, verr
		}
	}
	out := make([]TileData, 0, len(tiles))
	for _, td := range tiles {
		out = append(out, *td)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Level != out[j].Level {
			return out[i].Level < out[j].Level
		}
		return out[i].Index < out[j].Index
	})
	return out, nil
}

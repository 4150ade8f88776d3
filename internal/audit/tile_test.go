package audit

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/tlog"
)

// The tree, its tiles and proofs are checked against golang.org/x/mod's
// tlog: an independent implementation of the same RFC 6962 tree and tiles
// (the sumdb's tiles of height 8 are C2SP tiles, with the height in the
// path).

func TestHashesMatchTlog(t *testing.T) {
	for _, e := range [][]byte{nil, {}, []byte("a"), bytes.Repeat([]byte{0xff}, 1000)} {
		if got, want := LeafHash(e), tlog.RecordHash(e); got != Hash(want) {
			t.Errorf("LeafHash(%q) = %s, tlog %s", e, got, want)
		}
	}
	l, r := LeafHash([]byte("l")), LeafHash([]byte("r"))
	if got, want := NodeHash(l, r), tlog.NodeHash(tlog.Hash(l), tlog.Hash(r)); got != Hash(want) {
		t.Errorf("NodeHash = %s, tlog %s", got, want)
	}
	want, err := tlog.TreeHash(0, tlog.HashReaderFunc(func([]int64) ([]tlog.Hash, error) { return nil, nil }))
	if err != nil || EmptyRoot != Hash(want) {
		t.Errorf("EmptyRoot = %s, tlog %s (%v)", EmptyRoot, want, err)
	}
}

// sumdbPath turns a tlog tile path into its C2SP form.
func sumdbPath(t tlog.Tile) string {
	p := strings.TrimPrefix(t.Path(), "tile/8/")
	if rest, ok := strings.CutPrefix(p, "data/"); ok {
		return "tile/entries/" + rest
	}
	return "tile/" + p
}

func TestTilePathsMatchTlog(t *testing.T) {
	cases := []Tile{
		{0, 0, 256}, {0, 0, 1}, {0, 1, 44}, {1, 0, 2}, {2, 999, 256}, {0, 1000, 256},
		{3, 1234067, 17}, {5, 1 << 40, 255}, {EntriesLevel, 0, 256}, {EntriesLevel, 1234067, 3},
		{63, 0, 1}, {0, 1<<63 - 1, 256},
	}
	for _, c := range cases {
		want := sumdbPath(tlog.Tile{H: 8, L: c.Level, N: int64(c.Index), W: c.Width})
		if got := c.Path(); got != want {
			t.Errorf("%+v.Path() = %q, tlog %q", c, got, want)
		}
		back, err := ParseTilePath(c.Path())
		if err != nil || back != c {
			t.Errorf("ParseTilePath(%q) = %+v, %v", c.Path(), back, err)
		}
	}
	if got := (Tile{0, 18446744073709551615, 256}).Path(); got != "tile/0/x018/x446/x744/x073/x709/x551/615" {
		t.Errorf("max index path %q", got)
	}
	if tt, err := ParseTilePath("tile/0/x018/x446/x744/x073/x709/x551/615"); err != nil || tt.Index != 1<<64-1 {
		t.Errorf("max index parse: %+v %v", tt, err)
	}
	for _, bad := range []string{
		"", "tile", "tile/", "tile/0", "tile/0/", "tile/0/1", "tile/0/01", "tile/0/0001", "tile/00/000",
		"tile/-1/000", "tile/64/000", "tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/01", "tile/0/000.p/",
		"tile/0/000.p", "tile/0/x000/001", "tile/0/001/002", "tile/0/x001", "tile/0/x001/", "tile/0/y001/002",
		"tile/0/x018/x446/x744/x073/x709/x551/616", "tile/0/x001/x002/x003/x004/x005/x006/x007/008",
		"tile/data/000", "tile/entries/000.p/x", "tile/0/000/", "tile/0//000", "tile/0/ 00", "tile/0/+00",
		"tile/entries", "tile/0/000.p/5/6", "checkpoint", "/tile/0/000",
	} {
		if tt, err := ParseTilePath(bad); err == nil || !errors.Is(err, ErrBadTilePath) {
			t.Errorf("ParseTilePath(%q) = %+v, %v; want ErrBadTilePath", bad, tt, err)
		}
	}
}

func TestTileWidthAt(t *testing.T) {
	// The example of the tlog-tiles spec: a tree of 70,000 entries has 273
	// full level-0 tiles, a partial one of 112, one full level-1 tile, a
	// partial level-1 tile of 17 and a partial level-2 tile of 1.
	const n = 70000
	for _, c := range []struct {
		level int
		index uint64
		want  int
	}{
		{0, 0, 256}, {0, 272, 256}, {0, 273, 112}, {0, 274, 0}, {EntriesLevel, 273, 112},
		{1, 0, 256}, {1, 1, 17}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}, {3, 0, 0}, {8, 0, 0}, {63, 0, 0},
	} {
		if got := TileWidthAt(c.level, c.index, n); got != c.want {
			t.Errorf("TileWidthAt(%d, %d, %d) = %d, want %d", c.level, c.index, n, got, c.want)
		}
	}
	if got := TileWidthAt(1, 0, 256); got != 1 {
		t.Errorf("a tree of 256 has a level-1 tile of width %d, want 1", got)
	}
	if got := TileWidthAt(0, 1, 256); got != 0 {
		t.Errorf("a tree of 256 has a second level-0 tile of width %d", got)
	}
}

// memTree is a tree built with growTiles, tiles kept in a map, beside the
// same tree kept by tlog.
type memTree struct {
	r      *compact.Range
	tiles  map[[2]uint64][]byte // (level, index) → hashes
	stored []tlog.Hash          // tlog's stored hashes
}

func newMemTree() *memTree {
	return &memTree{r: NewRange(), tiles: map[[2]uint64][]byte{}}
}

func (m *memTree) get(t Tile) ([]byte, error) {
	b, ok := m.tiles[[2]uint64{uint64(t.Level), t.Index}]
	if !ok {
		return nil, fmt.Errorf("no tile %s", t.Path())
	}
	return b, nil
}

func (m *memTree) hashReader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = m.stored[x]
		}
		return out, nil
	})
}

func (m *memTree) add(t *testing.T, entries [][]byte) {
	t.Helper()
	leaves := make([]Hash, len(entries))
	for i, e := range entries {
		leaves[i] = LeafHash(e)
		hs, err := tlog.StoredHashes(int64(m.r.End())+int64(i), e, m.hashReader())
		if err != nil {
			t.Fatal(err)
		}
		m.stored = append(m.stored, hs...)
	}
	tiles, err := growTiles(m.r, leaves, m.get)
	if err != nil {
		t.Fatal(err)
	}
	for _, td := range tiles {
		m.tiles[[2]uint64{uint64(td.Level), td.Index}] = td.Hashes
	}
}

// check compares every tile and the root with tlog's.
func (m *memTree) check(t *testing.T) {
	t.Helper()
	n := m.r.End()
	root, err := RootOf(m.r)
	if err != nil {
		t.Fatal(err)
	}
	want, err := tlog.TreeHash(int64(n), m.hashReader())
	if err != nil {
		t.Fatal(err)
	}
	if root != Hash(want) {
		t.Fatalf("size %d: root %s, tlog %s", n, root, want)
	}
	count := 0
	for level := 0; levelSize(level, n) > 0; level++ {
		for idx := uint64(0); ; idx++ {
			w := TileWidthAt(level, idx, n)
			if w == 0 {
				break
			}
			got, err := m.get(Tile{Level: level, Index: idx, Width: w})
			if err != nil {
				t.Fatalf("size %d: %v", n, err)
			}
			wantTile, err := tlog.ReadTileData(tlog.Tile{H: 8, L: level, N: int64(idx), W: w}, m.hashReader())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, wantTile) {
				t.Fatalf("size %d: tile %d/%d differs from tlog's", n, level, idx)
			}
			count++
		}
	}
	for k := range m.tiles {
		if TileWidthAt(int(k[0]), k[1], n) == 0 {
			t.Fatalf("size %d: tile %d/%d stored but not in the tree", n, k[0], k[1])
		}
	}
	if len(m.tiles) != count {
		t.Fatalf("size %d: %d tiles stored, %d in the tree", n, len(m.tiles), count)
	}
	// The right edge rebuilt from the tiles gives the same root.
	r2, err := RangeFromTiles(n, m.get)
	if err != nil {
		t.Fatal(err)
	}
	if root2, _ := RootOf(r2); root2 != root {
		t.Fatalf("size %d: RangeFromTiles gives root %s, want %s", n, root2, root)
	}
}

func TestTilesMatchTlog(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := newMemTree()
	m.check(t)
	total := 0
	// Batches of every kind of size, across the 256 and 65536 boundaries.
	for total < 70000 {
		var n int
		switch rng.IntN(4) {
		case 0:
			n = 1
		case 1:
			n = rng.IntN(300)
		case 2:
			n = 256 - total%256
		default:
			n = rng.IntN(3000)
		}
		entries := make([][]byte, n)
		for i := range entries {
			entries[i] = fmt.Appendf(nil, "entry %d", total+i)
		}
		m.add(t, entries)
		total += n
		if rng.IntN(8) == 0 || total%256 == 0 || total >= 65536 && total-n < 65536 {
			m.check(t)
		}
	}
	m.check(t)
}

func TestNodeFromTilesRefusesIncompleteNodes(t *testing.T) {
	m := newMemTree()
	entries := make([][]byte, 300)
	for i := range entries {
		entries[i] = []byte{byte(i)}
	}
	m.add(t, entries)
	for _, id := range []compact.NodeID{compact.NewNodeID(0, 300), compact.NewNodeID(2, 75), compact.NewNodeID(9, 0), compact.NewNodeID(8, 1), compact.NewNodeID(63, 1<<62)} {
		if _, err := NodeFromTiles(id, 300, m.get); err == nil {
			t.Errorf("NodeFromTiles(%+v) in a tree of 300 succeeded", id)
		}
	}
	h, err := NodeFromTiles(compact.NewNodeID(8, 0), 300, m.get)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := tlog.TreeHash(256, m.hashReader())
	if h != Hash(want) {
		t.Fatalf("node (8, 0) = %s, tlog's tree of 256 = %s", h, want)
	}
}

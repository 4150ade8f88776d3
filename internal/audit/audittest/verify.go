package audittest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Result is what Verify found.
type Result struct {
	// Checkpoint is the verified signed checkpoint, Size and Root its tree.
	Checkpoint []byte
	Size       int64
	Root       tlog.Hash
	// Entries are every entry of the log, in index order.
	Entries [][]byte
}

// Verify reads the tlog-tiles log at prefix (a URL ending in "/") and
// checks, independently of the server's code: the checkpoint's signature
// by vkey and its form; every hash tile it needs, authenticated up to the
// checkpoint's root; every entry bundle, entry by entry, against the
// level-0 tiles; and, when remembered (a checkpoint note verified before)
// is not nil, that the new tree is consistent with it. It returns the
// first failure as an error.
func Verify(ctx context.Context, hc *http.Client, prefix, vkey string, remembered []byte) (*Result, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("verifier key: %w", err)
	}
	get := func(path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, prefix+path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return b, nil
	}

	msg, err := get("checkpoint")
	if err != nil {
		return nil, err
	}
	tree, err := openCheckpoint(msg, v)
	if err != nil {
		return nil, err
	}
	tr := &tileReader{get: get}
	hr := tlog.TileHashReader(tree, tr)
	// TreeHash through the tile reader authenticates the tiles it reads
	// against the checkpoint.
	th, err := tlog.TreeHash(tree.N, hr)
	if err != nil {
		return nil, fmt.Errorf("tree hash from tiles: %w", err)
	}
	if th != tree.Hash {
		return nil, fmt.Errorf("the tiles give root %s, the checkpoint says %s", th, tree.Hash)
	}

	res := &Result{Checkpoint: msg, Size: tree.N, Root: tree.Hash}
	for start := int64(0); start < tree.N; start += 256 {
		w := min(256, tree.N-start)
		path := bundlePath(start/256, int(w))
		b, err := get(path)
		if err != nil {
			return nil, err
		}
		entries, err := parseBundle(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if int64(len(entries)) != w {
			return nil, fmt.Errorf("%s holds %d entries, want %d", path, len(entries), w)
		}
		idx := make([]int64, w)
		for i := range idx {
			idx[i] = tlog.StoredHashIndex(0, start+int64(i))
		}
		hashes, err := hr.ReadHashes(idx)
		if err != nil {
			return nil, fmt.Errorf("leaf hashes %d-%d: %w", start, start+w-1, err)
		}
		for i, e := range entries {
			if tlog.RecordHash(e) != hashes[i] {
				return nil, fmt.Errorf("entry %d in %s does not match its leaf hash", start+int64(i), path)
			}
		}
		res.Entries = append(res.Entries, entries...)
	}

	if remembered != nil {
		old, err := openCheckpoint(remembered, v)
		if err != nil {
			return nil, fmt.Errorf("remembered checkpoint: %w", err)
		}
		if old.N > tree.N {
			return nil, fmt.Errorf("the log shrank from %d to %d entries", old.N, tree.N)
		}
		if old.N == 0 {
			if old.Hash != tlog.Hash(sha256.Sum256(nil)) {
				return nil, errors.New("the remembered checkpoint of the empty tree has a wrong root")
			}
			return res, nil
		}
		p, err := tlog.ProveTree(tree.N, old.N, hr)
		if err != nil {
			return nil, fmt.Errorf("consistency proof from tiles: %w", err)
		}
		if err := tlog.CheckTree(p, tree.N, tree.Hash, old.N, old.Hash); err != nil {
			return nil, fmt.Errorf("the log is not consistent with the remembered checkpoint of %d entries: %w", old.N, err)
		}
	}
	return res, nil
}

// openCheckpoint verifies a checkpoint note and reads its tree.
func openCheckpoint(msg []byte, v note.Verifier) (tlog.Tree, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 || lines[0] != v.Name() {
		return tlog.Tree{}, errors.New("checkpoint: not origin, size and root lines of the key's log")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return tlog.Tree{}, fmt.Errorf("checkpoint: bad size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return tlog.Tree{}, fmt.Errorf("checkpoint: bad root %q", lines[2])
	}
	return tlog.Tree{N: size, Hash: tlog.Hash(root)}, nil
}

// tileReader reads C2SP tiles for tlog, which names them with the height
// in the path (tile/8/L/N) and entry bundles "data".
type tileReader struct {
	get func(string) ([]byte, error)
}

func (r *tileReader) Height() int { return 8 }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		p := strings.TrimPrefix(t.Path(), "tile/8/")
		b, err := r.get("tile/" + p)
		if err != nil {
			return nil, err
		}
		if len(b) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("tile %s: %d bytes, want %d", p, len(b), t.W*tlog.HashSize)
		}
		out[i] = b
	}
	return out, nil
}

func (r *tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

func bundlePath(n int64, w int) string {
	p := tlog.Tile{H: 8, L: -1, N: n, W: w}.Path() // tile/8/data/…
	return "tile/entries/" + strings.TrimPrefix(p, "tile/8/data/")
}

func parseBundle(b []byte) ([][]byte, error) {
	var out [][]byte
	r := bytes.NewReader(b)
	for r.Len() > 0 {
		var n uint16
		if err := binary.Read(r, binary.BigEndian, &n); err != nil {
			return nil, errors.New("truncated length")
		}
		e := make([]byte, n)
		if _, err := io.ReadFull(r, e); err != nil {
			return nil, errors.New("truncated entry")
		}
		out = append(out, e)
	}
	return out, nil
}

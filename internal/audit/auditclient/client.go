// Package auditclient reads and verifies Signet's audit log over HTTPS as
// any C2SP tlog-tiles client would: it verifies the checkpoint's signature
// with the log's verifier key, recomputes the tree from the entry bundles
// and the tiles, proves consistency with a checkpoint remembered in a
// state file, and builds inclusion proofs from the tiles. A second Verify
// with the state of the first fetches only the tiles that changed.
//
// Every failure that means the log is not what it should be wraps
// ErrVerification and reads as a plain sentence; other errors (network,
// files) do not wrap it. The package links no SQL.
package auditclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/mod/sumdb/note"

	"github.com/signet-trust/signet/internal/audit"
)

// ErrVerification reports that the log does not verify: a bad signature, an
// entry or tile that does not match, a checkpoint inconsistent with one
// seen before.
var ErrVerification = errors.New("the audit log does not verify")

func verifyError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrVerification, fmt.Sprintf(format, args...))
}

// Client reads one log.
type Client struct {
	prefix   string
	hc       *http.Client
	verifier note.Verifier
	// Parallel is how many tiles are fetched at once (default 8).
	Parallel int

	requests atomic.Int64
	bytes    atomic.Int64
}

// New returns a client of the log at prefix (a URL; "/" is added when
// missing), whose checkpoints verify with vkey.
func New(prefix, vkey string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(prefix)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL of an audit log", prefix)
	}
	v, err := audit.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &Client{prefix: prefix, hc: hc, verifier: v, Parallel: 8}, nil
}

// Origin returns the log's origin (the verifier key's name).
func (c *Client) Origin() string { return c.verifier.Name() }

// Requests returns how many HTTP requests the client made, and how many
// body bytes it read.
func (c *Client) Requests() (n, bytes int64) { return c.requests.Load(), c.bytes.Load() }

// errNotFound is a 404 from the log.
var errNotFound = errors.New("not found")

func (c *Client) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.prefix+path, nil)
	if err != nil {
		return nil, err
	}
	c.requests.Add(1)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", c.prefix+path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	c.bytes.Add(int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", c.prefix+path, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("fetch %s: %w", c.prefix+path, errNotFound)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("fetch %s: the server answered %s", c.prefix+path, resp.Status)
	case int64(len(b)) > limit:
		return nil, verifyError("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// Checkpoint fetches the log's checkpoint and verifies its signature.
func (c *Client) Checkpoint(ctx context.Context) (audit.Checkpoint, []byte, error) {
	msg, err := c.get(ctx, "checkpoint", audit.MaxCheckpointSize)
	if err != nil {
		return audit.Checkpoint{}, nil, err
	}
	cp, err := audit.OpenCheckpoint(msg, c.verifier)
	if err != nil {
		return audit.Checkpoint{}, nil, verifyError("the log's checkpoint: %v", err)
	}
	return cp, msg, nil
}

// OpenCheckpoint verifies a checkpoint note (such as a remembered one)
// with the client's key.
func (c *Client) OpenCheckpoint(msg []byte) (audit.Checkpoint, error) {
	cp, err := audit.OpenCheckpoint(msg, c.verifier)
	if err != nil {
		return audit.Checkpoint{}, verifyError("%v", err)
	}
	return cp, nil
}

// tiles fetches and remembers hash tiles during one operation.
type tiles struct {
	c  *Client
	mu sync.Mutex
	m  map[audit.Tile][]byte
}

func (c *Client) newTiles() *tiles { return &tiles{c: c, m: map[audit.Tile][]byte{}} }

// get returns exactly t.Width hashes of tile t: the partial tile, or the
// full tile's prefix when the log no longer serves the partial one.
func (ts *tiles) get(ctx context.Context, t audit.Tile) ([]byte, error) {
	return ts.fetch(ctx, t, true)
}

// fetch is get, remembering the tile only when keep is set.
func (ts *tiles) fetch(ctx context.Context, t audit.Tile, keep bool) ([]byte, error) {
	ts.mu.Lock()
	b, ok := ts.m[t]
	ts.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := ts.c.get(ctx, t.Path(), audit.TileWidth*audit.HashSize)
	if errors.Is(err, errNotFound) && !t.Full() {
		full := t
		full.Width = audit.TileWidth
		if fb, ferr := ts.c.get(ctx, full.Path(), audit.TileWidth*audit.HashSize); ferr == nil && len(fb) == audit.TileWidth*audit.HashSize {
			b, err = fb[:t.Width*audit.HashSize], nil
		}
	}
	if err != nil {
		if errors.Is(err, errNotFound) {
			return nil, verifyError("the log does not serve %s, which its checkpoint needs", t.Path())
		}
		return nil, err
	}
	if len(b) != t.Width*audit.HashSize {
		return nil, verifyError("%s holds %d bytes, not %d", t.Path(), len(b), t.Width*audit.HashSize)
	}
	if keep {
		ts.mu.Lock()
		ts.m[t] = b
		ts.mu.Unlock()
	}
	return b, nil
}

func (ts *tiles) getter(ctx context.Context) audit.TileGetter {
	return func(t audit.Tile) ([]byte, error) { return ts.get(ctx, t) }
}

// bundle fetches the entries of entry bundle t (t.Width of them).
func (c *Client) bundle(ctx context.Context, t audit.Tile) ([][]byte, error) {
	const limit = audit.TileWidth * (2 + audit.MaxEntrySize)
	b, err := c.get(ctx, t.Path(), limit)
	if errors.Is(err, errNotFound) && !t.Full() {
		full := t
		full.Width = audit.TileWidth
		b, err = c.get(ctx, full.Path(), limit)
	}
	if err != nil {
		if errors.Is(err, errNotFound) {
			return nil, verifyError("the log does not serve %s, which its checkpoint needs", t.Path())
		}
		return nil, err
	}
	entries, err := audit.ParseBundle(b)
	if err != nil {
		return nil, verifyError("%s: %v", t.Path(), err)
	}
	if len(entries) < t.Width || (len(entries) > t.Width && len(entries) != audit.TileWidth) {
		return nil, verifyError("%s holds %d entries, not %d", t.Path(), len(entries), t.Width)
	}
	return entries[:t.Width], nil
}

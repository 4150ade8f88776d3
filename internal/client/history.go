package client

// A repository's trust history, read from one Notary server and imported
// into signet-server (`signet mirror`).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/tuf"
)

// History is a repository's trust history as a Notary server serves it:
// every version of root, and the current timestamp, snapshot, targets and
// each delegation the snapshot lists — the files any client can ask for —
// byte for byte, in that order.
type History struct {
	GUN   string
	Files []notaryapi.ImportFile
	// FirstRoot and Root are the oldest and newest root versions.
	FirstRoot, Root int
	// Versions are the versions of the other roles.
	Versions map[string]int
}

// FetchHistory reads the repository's history: the timestamp, the
// snapshot and root it names (by hash), every older root version, then
// targets and every delegation reachable from it that the snapshot lists,
// each by the hash the snapshot gives. Downloads are bounded by the
// lengths the metadata gives, or by notary's limits. Nothing is verified
// here: the importing server verifies the whole history.
func (r *Remote) FetchHistory(ctx context.Context) (*History, error) {
	h := &History{GUN: r.gun, Versions: map[string]int{}}
	ts, err := r.GetCurrent(ctx, tuf.RoleTimestamp, MaxTimestampSize)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoTrustData, r.gun)
	}
	if err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	tsm, err := tuf.ParseTimestamp(ts)
	if err != nil {
		return nil, fmt.Errorf("the source's timestamp: %w", err)
	}
	sm, ok := tsm.Signed.Meta[tuf.RoleSnapshot]
	if !ok {
		return nil, errors.New("the source's timestamp names no snapshot")
	}
	snap, err := r.GetChecksum(ctx, tuf.RoleSnapshot, sm.Hashes["sha256"], sm.Length)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	snapm, err := tuf.ParseSnapshot(snap)
	if err != nil {
		return nil, fmt.Errorf("the source's snapshot: %w", err)
	}
	rm, ok := snapm.Signed.Meta[tuf.RoleRoot]
	if !ok {
		return nil, errors.New("the source's snapshot names no root")
	}
	root, err := r.GetChecksum(ctx, tuf.RoleRoot, rm.Hashes["sha256"], rm.Length)
	if err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	c, err := tuf.Peek(root)
	if err != nil {
		return nil, fmt.Errorf("the source's root: %w", err)
	}
	roots := [][]byte{root}
	h.Root, h.FirstRoot = c.Version, c.Version
	for v := c.Version - 1; v >= 1; v-- {
		b, err := r.GetVersion(ctx, tuf.RoleRoot, v, MaxMetadataSize)
		if errors.Is(err, ErrNotFound) && v == 1 {
			break // notary may publish its first root as version 2
		}
		if err != nil {
			return nil, fmt.Errorf("root version %d: %w", v, err)
		}
		roots = append(roots, b)
		h.FirstRoot = v
	}
	for i := len(roots) - 1; i >= 0; i-- {
		h.Files = append(h.Files, notaryapi.ImportFile{Role: tuf.RoleRoot, Data: roots[i]})
	}
	h.add(tuf.RoleTimestamp, ts)
	h.add(tuf.RoleSnapshot, snap)
	queue := []string{tuf.RoleTargets}
	seen := map[string]bool{}
	for len(queue) > 0 {
		role := queue[0]
		queue = queue[1:]
		fm, listed := snapm.Signed.Meta[role]
		if !listed || seen[role] {
			continue // delegated but never published
		}
		seen[role] = true
		b, err := r.GetChecksum(ctx, role, fm.Hashes["sha256"], fm.Length)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", role, err)
		}
		m, err := tuf.ParseTargets(role, b)
		if err != nil {
			return nil, fmt.Errorf("the source's %s: %w", role, err)
		}
		h.add(role, b)
		for _, d := range m.Signed.Delegations.Roles {
			queue = append(queue, d.Name)
		}
	}
	return h, nil
}

func (h *History) add(role string, b []byte) {
	h.Files = append(h.Files, notaryapi.ImportFile{Role: role, Data: b})
	if c, err := tuf.Peek(b); err == nil {
		h.Versions[role] = c.Version
	}
}

// Import sends a history to signet-server's import endpoint
// (POST /_signet/import/{gun}), which verifies it whole and stores what it
// lacks. A refusal is a *ServerError whose Msg says why.
func (r *Remote) Import(ctx context.Context, files []notaryapi.ImportFile) (*notaryapi.ImportResult, error) {
	body, err := json.Marshal(notaryapi.ImportRequest{Files: files})
	if err != nil {
		return nil, err
	}
	resp, err := r.do(ctx, http.MethodPost, r.url(notaryapi.ImportPath(r.gun)), bytes.NewReader(body), "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorSize))
			return nil, fmt.Errorf("the trust server at %s takes no imports (HTTP %d): it is not a signet-server, or an older one", r.base.Host, resp.StatusCode)
		}
		return nil, responseError(resp)
	}
	var res notaryapi.ImportResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxMetadataSize)).Decode(&res); err != nil {
		return nil, fmt.Errorf("client: the import's answer: %w", err)
	}
	return &res, nil
}

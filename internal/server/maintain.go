package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/tuf"
)

// expiryRoles are the roles whose soonest expiry is exported.
var expiryRoles = []string{tuf.RoleRoot, tuf.RoleTargets, tuf.RoleSnapshot, tuf.RoleTimestamp}

// RunExpiryMetrics sets the soonest-expiry gauges every interval until ctx
// ends, from the store's index of current versions (never per scrape).
func (s *Server) RunExpiryMetrics(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.updateExpiryMetrics(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "expiry metrics", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) updateExpiryMetrics(ctx context.Context) error {
	horizon := s.now().AddDate(1000, 0, 0)
	var errs []error
	for _, role := range expiryRoles {
		fs, err := s.cfg.Store.Expiring(ctx, role, horizon, 1)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(fs) == 0 {
			s.m.soonest.DeleteLabelValues(role)
			continue
		}
		s.m.soonest.WithLabelValues(role).Set(float64(fs[0].Expires.UnixMicro()) / 1e6)
	}
	return errors.Join(errs...)
}

// Retention batches: files per store call, and the pause between calls so
// pruning never hogs the database.
const (
	retentionBatch = 500
	retentionPause = 100 * time.Millisecond
)

// RunRetention prunes superseded metadata versions every interval until
// ctx ends, keeping the newest keep versions of each role, every root, and
// every file a current snapshot or timestamp refers to (see
// store.MetaStore.PruneVersions). Each pass goes through every repository
// in bounded batches.
func (s *Server) RunRetention(ctx context.Context, keep int, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.pruneOnce(ctx, keep)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pruneOnce runs one retention pass and returns the files removed.
func (s *Server) pruneOnce(ctx context.Context, keep int) int {
	p := store.Retention{KeepVersions: keep, Referenced: References}
	total, from := 0, ""
	for {
		next, n, err := s.cfg.Store.PruneVersions(ctx, p, from, retentionBatch)
		total += n
		s.m.pruned.Add(float64(n))
		if n > 0 {
			// Files by checksum or version are cached as immutable; the
			// ones just removed must not be served from there.
			s.cache.dropFixed()
		}
		if err != nil {
			if ctx.Err() != nil {
				return total
			}
			s.log.WarnContext(ctx, "retention: pruning", "err", err)
			if next == from && n == 0 {
				return total // no progress: try again next pass
			}
		}
		if next == "" {
			break
		}
		from = next
		select {
		case <-ctx.Done():
			return total
		case <-time.After(retentionPause):
		}
	}
	if total > 0 {
		s.log.InfoContext(ctx, "retention: pruned superseded metadata", "files", total, "keep_versions", keep)
	}
	return total
}

// References returns the hex SHA-256 of every file a snapshot or timestamp
// lists: what a client holding it may fetch by checksum next.
func References(role string, data []byte) ([]string, error) {
	var meta map[string]tuf.FileMeta
	switch role {
	case tuf.RoleSnapshot:
		m, err := tuf.ParseSnapshot(data)
		if err != nil {
			return nil, err
		}
		meta = m.Signed.Meta
	case tuf.RoleTimestamp:
		m, err := tuf.ParseTimestamp(data)
		if err != nil {
			return nil, err
		}
		meta = m.Signed.Meta
	default:
		return nil, fmt.Errorf("server: %s lists no files", role)
	}
	out := make([]string, 0, len(meta))
	for _, fm := range meta {
		if h := fm.Hashes["sha256"]; len(h) > 0 {
			out = append(out, hex.EncodeToString(h))
		}
	}
	return out, nil
}

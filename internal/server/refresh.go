package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/tuf"
)

// refresh re-signs the timestamp of gun, and the snapshot too when it is
// server-held and expires within the refresh window (or force is set for
// the timestamp). It reads the store directly, under the GUN's write lock.
// listed, when not 0, is the timestamp version the caller found expiring:
// if the store has another, someone (another replica) re-signed meanwhile
// and there is nothing to do. When another replica re-signs the same
// version at the same time, the store keeps one and this returns an error
// wrapping store.ErrOldVersion.
func (s *Server) refresh(ctx context.Context, gun string, force bool, listed int) error {
	unlock := s.locks.lock(gun)
	defer unlock()
	remoteGen := s.cache.remoteGeneration()
	now := s.now()
	get := func(role string) (store.File, error) { return s.cfg.Store.GetCurrent(ctx, gun, role) }
	rootF, err := get(tuf.RoleRoot)
	if err != nil {
		return err
	}
	root, err := tuf.ParseRoot(rootF.Data)
	if err != nil {
		return fmt.Errorf("stored root: %w", err)
	}
	snapF, err := get(tuf.RoleSnapshot)
	if err != nil {
		return err
	}
	tsF, err := get(tuf.RoleTimestamp)
	if err != nil {
		return err
	}
	if listed != 0 && tsF.Version != listed {
		return errNothingToDo
	}
	var files []store.File
	snapshot := snapF.Data
	if now.Add(s.cfg.RefreshWithin).After(snapF.Expires) {
		signer, held, err := s.heldKey(ctx, gun, &root.Signed, tuf.RoleSnapshot)
		if err != nil {
			return err
		}
		if held {
			prev, err := tuf.ParseSnapshot(snapF.Data)
			if err != nil {
				return fmt.Errorf("stored snapshot: %w", err)
			}
			next := prev.Signed
			next.Version++
			next.Expires = now.Add(s.cfg.SnapshotExpiry).UTC()
			f, err := signFile(gun, tuf.RoleSnapshot, &next, next.Common, signer)
			if err != nil {
				return err
			}
			files = append(files, f)
			snapshot = f.Data
		}
	}
	if len(files) == 0 && !force && now.Add(s.cfg.RefreshWithin).Before(tsF.Expires) {
		return errNothingToDo // a client-held snapshot, or refreshed meanwhile
	}
	ts, err := s.newTimestamp(ctx, gun, &root.Signed, tsF.Version, snapshot)
	if err != nil {
		return err
	}
	files = append(files, ts)
	if err := s.storeFiles(ctx, gun, files, audit.TUFResign, actorRefresher, ""); err != nil {
		s.cache.invalidate(gun)
		return err
	}
	s.cache.replace(remoteGen, gun, files, now)
	s.m.resigned.Inc()
	return nil
}

// RunRefresher re-signs timestamps (and server-held snapshots) that expire
// within the refresh window, every interval, until ctx ends. Reads never
// wait for it; if it falls behind, a read of expired metadata re-signs.
func (s *Server) RunRefresher(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.refreshDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

var errNothingToDo = errors.New("nothing to re-sign")

// refreshDue runs one pass of the refresher and reports how many
// repositories it re-signed. Repositories it cannot or need not re-sign
// (no server key, client-held snapshot) are set aside for an hour so they
// do not crowd out the rest of the batch.
func (s *Server) refreshDue(ctx context.Context) int {
	const batch = 200
	n := 0
	now := s.now()
	s.skipMu.Lock()
	if len(s.skip) > 100000 {
		clear(s.skip)
	}
	for k, until := range s.skip {
		if now.After(until) {
			delete(s.skip, k)
		}
	}
	s.skipMu.Unlock()
	for _, role := range []string{tuf.RoleTimestamp, tuf.RoleSnapshot} {
		due, err := s.cfg.Store.Expiring(ctx, role, now.Add(s.cfg.RefreshWithin), batch+s.skipped())
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				s.log.ErrorContext(ctx, "refresher: listing expiring metadata", "role", role, "err", err)
			}
			return n
		}
		for _, f := range due {
			if ctx.Err() != nil {
				return n
			}
			key := role + "\x00" + f.GUN
			s.skipMu.Lock()
			_, skipped := s.skip[key]
			s.skipMu.Unlock()
			if skipped {
				continue
			}
			listed := 0
			if role == tuf.RoleTimestamp {
				listed = f.Version
			}
			err := s.refresh(ctx, f.GUN, role == tuf.RoleTimestamp, listed)
			if errors.Is(err, store.ErrOldVersion) {
				// Another replica re-signed this version first: done.
				s.log.DebugContext(ctx, "refresher: re-signed by another replica", "gun", f.GUN, "role", role)
				continue
			}
			if err != nil {
				if !errors.Is(err, errNoTimestampKey) && !errors.Is(err, errNothingToDo) {
					s.log.ErrorContext(ctx, "refresher: re-signing", "gun", f.GUN, "role", role, "err", err)
				}
				s.skipMu.Lock()
				s.skip[key] = now.Add(time.Hour)
				s.skipMu.Unlock()
				continue
			}
			n++
		}
	}
	return n
}

func (s *Server) skipped() int {
	s.skipMu.Lock()
	defer s.skipMu.Unlock()
	return len(s.skip)
}

package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/server/apierr"
	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/tuf"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// current returns the current file of a role, from the cache or the store.
func (s *Server) current(ctx context.Context, gun, role string) (*cachedFile, error) {
	if f := s.cache.getCurrent(gun, role); f != nil {
		return f, nil
	}
	gen := s.cache.generation()
	f, err := s.cfg.Store.GetCurrent(ctx, gun, role)
	if err != nil {
		return nil, err
	}
	cf := newCachedFile(f)
	s.cache.putCurrent(gen, gun, role, cf)
	return cf, nil
}

// currentForWrite returns the current file of a role for validating a
// write: from the cache, or, when other processes write to the store too,
// from the store, so that a missed invalidation cannot make the server
// validate against (and build on) superseded metadata.
func (s *Server) currentForWrite(ctx context.Context, gun, role string) (*cachedFile, error) {
	if !s.replicated {
		return s.current(ctx, gun, role)
	}
	f, err := s.cfg.Store.GetCurrent(ctx, gun, role)
	if err != nil {
		return nil, err
	}
	return newCachedFile(f), nil
}

// Header values shared by every response (never modified).
var (
	textPlain = []string{"text/plain; charset=utf-8"}
	noCache   = []string{"no-cache"}
)

// writeMeta answers with a metadata file, in one Write of known length.
//
// A body over net/http's 2 KiB response buffer (targets.json with a few
// tags already) has its headers written from inside that Write, several
// KiB of net/http frames (chunkWriter.writeHeader alone is 2.8 KiB) on top
// of the handler's. A connection's goroutine starts with an 8 KiB stack
// and the garbage collector shrinks it back while the connection is idle,
// so a path that needs more grows (copies) the stack again on every GC
// cycle. The frames from serveHTTP down to here are kept small for that
// reason: logging, re-signing and store reads are in functions of their
// own (notaryError, resignOnRead, loadFixed), off the path of a hit.
func (s *Server) writeMeta(w http.ResponseWriter, f *cachedFile, cacheControl []string) {
	h := w.Header()
	h["Content-Type"] = textPlain
	h["Cache-Control"] = cacheControl
	if cacheControl[0] == "max-age=0, no-cache, no-store" {
		h["Pragma"] = noCache
	}
	h["Last-Modified"] = f.lastModified
	h["Content-Length"] = f.length
	_, _ = w.Write(f.file.Data)
}

func (s *Server) handleGetCurrent(w http.ResponseWriter, r *http.Request, p notaryapi.Path) error {
	gun := p.GUN.String()
	ctx := r.Context()
	f, err := s.current(ctx, gun, p.Role)
	if err != nil {
		return err
	}
	if (p.Role == tuf.RoleTimestamp || p.Role == tuf.RoleSnapshot) && !s.now().Before(f.file.Expires) {
		// The background refresher keeps these fresh; it has fallen
		// behind: re-sign now rather than serve expired metadata.
		if f, err = s.resignOnRead(ctx, gun, p.Role, f); err != nil {
			return err
		}
	}
	if p.Role == tuf.RoleTimestamp {
		s.setAuditIndex(ctx, w, gun, f)
	}
	s.writeMeta(w, f, s.currentCC)
	return nil
}

// resignOnRead re-signs the expired timestamp (and snapshot) of gun and
// returns the current file of role afterwards; if re-signing fails, it
// logs why and returns f, the expired file, as before. It is apart from
// handleGetCurrent to keep that frame small (see writeMeta).
func (s *Server) resignOnRead(ctx context.Context, gun, role string, f *cachedFile) (*cachedFile, error) {
	err := s.refresh(ctx, gun, false, 0)
	switch {
	case errors.Is(err, store.ErrOldVersion), errors.Is(err, errNothingToDo):
		// Re-signed meanwhile, by another request or replica.
		s.cache.invalidate(gun)
		fallthrough
	case err == nil:
		return s.current(ctx, gun, role)
	default:
		s.log.ErrorContext(ctx, "re-signing expired metadata on read", "gun", gun, "role", role, "err", err)
		return f, nil
	}
}

func (s *Server) handleGetVersion(w http.ResponseWriter, r *http.Request, p notaryapi.Path) error {
	if p.Version < 1 {
		return apierr.New(notaryapi.MetadataNotFound, struct{}{})
	}
	gun := p.GUN.String()
	key := fixedKey{role: p.Role, version: p.Version}
	f := s.cache.getFixed(gun, key)
	if f == nil {
		var err error
		if f, err = s.loadFixed(r.Context(), gun, key); err != nil {
			return err
		}
	}
	s.writeMeta(w, f, s.consistentCC)
	return nil
}

func (s *Server) handleGetChecksum(w http.ResponseWriter, r *http.Request, p notaryapi.Path) error {
	if len(p.Checksum) != 64 { // only SHA-256 is indexed, as in the reference
		return apierr.New(notaryapi.MetadataNotFound, struct{}{})
	}
	gun := p.GUN.String()
	key := fixedKey{role: p.Role, sha256: p.Checksum}
	f := s.cache.getFixed(gun, key)
	if f == nil {
		var err error
		if f, err = s.loadFixed(r.Context(), gun, key); err != nil {
			return err
		}
	}
	s.writeMeta(w, f, s.consistentCC)
	return nil
}

// loadFixed reads the immutable file key names from the store and caches
// it. It is apart from the handlers to keep their frames small (see
// writeMeta).
func (s *Server) loadFixed(ctx context.Context, gun string, key fixedKey) (*cachedFile, error) {
	gen := s.cache.generation()
	var sf store.File
	var err error
	if key.sha256 != "" {
		sf, err = s.cfg.Store.GetChecksum(ctx, gun, key.role, key.sha256)
	} else {
		sf, err = s.cfg.Store.GetVersion(ctx, gun, key.role, key.version)
	}
	if err != nil {
		return nil, err
	}
	f := newCachedFile(sf)
	s.cache.putFixed(gen, gun, key, f)
	return f, nil
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, p notaryapi.Path) error {
	gun := p.GUN.String()
	unlock := s.locks.lock(gun)
	defer unlock()
	deleted, err := s.deleteGUN(r.Context(), gun, s.actorOf(r))
	s.cache.invalidate(gun)
	if err != nil {
		return apierr.Wrap(notaryapi.Updating, err)
	}
	s.log.InfoContext(r.Context(), "repository deleted", "gun", gun, "existed", deleted)
	return nil
}

type changeJSON struct {
	ID        string `json:"ID"`
	CreatedAt string `json:"CreatedAt"`
	GUN       string `json:"GUN"`
	Version   int    `json:"Version"`
	SHA256    string `json:"SHA256"`
	Category  string `json:"Category"`
}

// defaultChangePage is the reference's page size for records=0;
// maxChangePage the most records one answer holds.
const (
	defaultChangePage = 100
	maxChangePage     = 1000
)

func (s *Server) handleChanges(w http.ResponseWriter, r *http.Request, p notaryapi.Path) error {
	gun := p.GUN.String()
	q := r.URL.Query()
	records, err := strconv.ParseInt(q.Get("records"), 10, 32)
	if err != nil {
		return apierr.New(notaryapi.InvalidParams, "invalid records parameter: "+err.Error())
	}
	if records == 0 {
		records = defaultChangePage
	}
	// A page is bounded (the reference returns as many records as asked,
	// up to its whole changefeed); readers page on by change_id.
	records = max(-maxChangePage, min(records, maxChangePage))
	var changeID int64
	if v := q.Get("change_id"); v != "" {
		if changeID, err = strconv.ParseInt(v, 10, 64); err != nil || changeID < -1 {
			return apierr.New(notaryapi.InvalidParams, fmt.Sprintf("invalid change_id parameter: %q", v))
		}
	}
	changes, err := s.cfg.Store.Changes(r.Context(), gun, changeID, int(records))
	if err != nil {
		return err
	}
	out := struct {
		Count   int          `json:"count"`
		Records []changeJSON `json:"records"`
	}{Count: len(changes)}
	for _, c := range changes {
		out.Records = append(out.Records, changeJSON{
			ID: itoa(c.ID), CreatedAt: c.CreatedAt.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"),
			GUN: c.GUN, Version: c.Version, SHA256: c.SHA256, Category: c.Category,
		})
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(mustJSON(out))
	return nil
}

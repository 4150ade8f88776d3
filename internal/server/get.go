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
	if p.Role == tuf.RoleTimestamp || p.Role == tuf.RoleSnapshot {
		// The background refresher keeps these fresh; if it has fallen
		// behind, re-sign now rather than serve expired metadata.
		if !s.now().Before(f.file.Expires) {
			err := s.refresh(ctx, gun, false, 0)
			switch {
			case errors.Is(err, store.ErrOldVersion), errors.Is(err, errNothingToDo):
				// Re-signed meanwhile, by another request or replica.
				s.cache.invalidate(gun)
				fallthrough
			case err == nil:
				if f, err = s.current(ctx, gun, p.Role); err != nil {
					return err
				}
			default:
				s.log.ErrorContext(ctx, "re-signing expired metadata on read", "gun", gun, "role", p.Role, "err", err)
			}
		}
	}
	if p.Role == tuf.RoleTimestamp {
		s.setAuditIndex(ctx, w, gun, f)
	}
	s.writeMeta(w, f, s.currentCC)
	return nil
}

func (s *Server) handleGetVersion(w http.ResponseWriter, r *http.Request, p notaryapi.Path) error {
	gun := p.GUN.String()
	if p.Version < 1 {
		return apierr.New(notaryapi.MetadataNotFound, struct{}{})
	}
	key := fmt.Sprintf("v:%s:%d", p.Role, p.Version)
	f := s.cache.getFixed(gun, key)
	if f == nil {
		gen := s.cache.generation()
		sf, err := s.cfg.Store.GetVersion(r.Context(), gun, p.Role, p.Version)
		if err != nil {
			return err
		}
		f = newCachedFile(sf)
		s.cache.putFixed(gen, gun, key, f)
	}
	s.writeMeta(w, f, s.consistentCC)
	return nil
}

func (s *Server) handleGetChecksum(w http.ResponseWriter, r *http.Request, p notaryapi.Path) error {
	gun := p.GUN.String()
	if len(p.Checksum) != 64 { // only SHA-256 is indexed, as in the reference
		return apierr.New(notaryapi.MetadataNotFound, struct{}{})
	}
	key := checksumKey(p.Role, p.Checksum)
	f := s.cache.getFixed(gun, key)
	if f == nil {
		gen := s.cache.generation()
		sf, err := s.cfg.Store.GetChecksum(r.Context(), gun, p.Role, p.Checksum)
		if err != nil {
			return err
		}
		f = newCachedFile(sf)
		s.cache.putFixed(gen, gun, key, f)
	}
	s.writeMeta(w, f, s.consistentCC)
	return nil
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

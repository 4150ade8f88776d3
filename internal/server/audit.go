package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/tuf"
)

// AuditIndexHeader names, on a timestamp.json response, the index in the
// audit log of the entry (tuf.publish or tuf.resign) that recorded that
// timestamp; a client holding the log's verifier key proves the timestamp
// it received is in the log (signet verify --audit-key). It is absent when
// the server runs without an audit log, or does not know the entry yet.
const AuditIndexHeader = notaryapi.AuditIndexHeader

// Identifier is an Authorizer that can also name who a request's
// credentials belong to (a registry token's subject), for the actor of
// the audit log entries of the writes it makes. "" when it cannot tell.
type Identifier interface {
	Identify(r *http.Request) string
}

// Anonymous is the actor of a write made without credentials (a server
// without auth).
var Anonymous = audit.Actor{Kind: audit.ActorSystem, Name: "anonymous"}

// Actors of the writes the server makes on its own.
var (
	actorRefresher = audit.Actor{Kind: audit.ActorSystem, Name: "refresher"}
	actorService   = audit.Actor{Kind: audit.ActorSystem, Name: "signing-service"}
)

type actorKey struct{}

// withActor carries the actor of a write from its request to the store.
func withActor(ctx context.Context, a audit.Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

func actorFrom(ctx context.Context, def audit.Actor) audit.Actor {
	if a, ok := ctx.Value(actorKey{}).(audit.Actor); ok {
		return a
	}
	return def
}

// actorOf is who a request's credentials say made it.
func (s *Server) actorOf(r *http.Request) audit.Actor {
	if id, ok := s.cfg.Authorizer.(Identifier); ok {
		if name := id.Identify(r); name != "" {
			return audit.Actor{Kind: audit.ActorUser, Name: name}
		}
	}
	return Anonymous
}

// serverAudit is the server's side of the audit log.
type serverAudit struct {
	log   *audit.Log
	store store.AuditedMetaStore
	wait  time.Duration
	ts    *tsIndex
}

func newServerAudit(cfg Config) (*serverAudit, error) {
	if cfg.AuditLog == nil {
		return nil, nil
	}
	st, ok := cfg.Store.(store.AuditedMetaStore)
	if !ok {
		return nil, fmt.Errorf("server: the store (%T) cannot record writes in the audit log in their own transaction", cfg.Store)
	}
	wait := cfg.AuditWait
	if wait == 0 {
		wait = 2 * time.Second
	}
	return &serverAudit{log: cfg.AuditLog, store: st, wait: wait, ts: newTSIndex(cfg.AuditLog.Store())}, nil
}

// tufEvent is the entry of a write of files.
func (s *Server) tufEvent(typ audit.EventType, actor audit.Actor, gun string, files []store.File, comment string) ([]byte, error) {
	e := audit.Event{Type: typ, Time: s.now(), Actor: actor, Subject: audit.Subject{GUN: gun}, Comment: comment}
	for _, f := range files {
		e.Roles = append(e.Roles, audit.RoleVersion{Role: f.Role, Version: int64(f.Version), SHA256: f.SHA256})
	}
	return e.Encode()
}

// storeFiles is every write of metadata: UpdateMany, or, with an audit
// log, UpdateManyAudited with the entry recording the write (so that the
// write is acknowledged only once its entry is durable), after which the
// log is told, and the entry awaited for a while so that the timestamp's
// index is known when it is served. files must carry their SHA256.
func (s *Server) storeFiles(ctx context.Context, gun string, files []store.File, typ audit.EventType, actor audit.Actor, comment string) error {
	a := s.audit
	if a == nil {
		return s.cfg.Store.UpdateMany(ctx, gun, files)
	}
	entry, err := s.tufEvent(typ, actor, gun, files, comment)
	if err != nil {
		return fmt.Errorf("audit log entry: %w", err)
	}
	id, err := a.store.UpdateManyAudited(ctx, gun, files, entry)
	if err != nil {
		return err
	}
	if !a.log.Integrated(id) { // not in the write's own commit: ask the integrator
		a.log.Kick()
	}
	if !a.log.Status().Healthy {
		// No checkpoint is signed until the stored log matches its
		// signed checkpoint again: the entry is durable, and waiting for
		// it would only slow every write down.
		return nil
	}
	var ts string
	for _, f := range files {
		if f.Role == tuf.RoleTimestamp {
			ts = f.SHA256
		}
	}
	wctx, cancel := context.WithTimeout(ctx, a.wait)
	defer cancel()
	idx, _, err := a.log.Await(wctx, id)
	if err != nil {
		// Durable, but not in a checkpoint yet: the index is found later
		// by reading the log.
		s.log.WarnContext(ctx, "audit: the entry of a write is not in a checkpoint yet", "gun", gun, "err", err)
		return nil
	}
	if ts != "" {
		a.ts.put(gun, ts, idx)
	}
	return nil
}

// deleteGUN is every delete of a repository, recorded like storeFiles.
func (s *Server) deleteGUN(ctx context.Context, gun string, actor audit.Actor) (bool, error) {
	a := s.audit
	if a == nil {
		return s.cfg.Store.Delete(ctx, gun)
	}
	entry, err := audit.Event{Type: audit.TUFDelete, Time: s.now(), Actor: actor, Subject: audit.Subject{GUN: gun}}.Encode()
	if err != nil {
		return false, fmt.Errorf("audit log entry: %w", err)
	}
	deleted, id, err := a.store.DeleteAudited(ctx, gun, entry)
	if err == nil && deleted {
		if !a.log.Integrated(id) {
			a.log.Kick()
		}
		a.ts.drop(gun)
	}
	return deleted, err
}

// keyEvent records a key the server made for a repository; the request
// that made it fails when the entry cannot be stored.
func (s *Server) keyEvent(ctx context.Context, typ audit.EventType, actor audit.Actor, gun, role, keyID string) error {
	if s.audit == nil {
		return nil
	}
	// Append asks the integrator itself when the entry was not integrated
	// in its own commit.
	if _, err := s.audit.log.Append(ctx, audit.Event{Type: typ, Actor: actor, Subject: audit.Subject{GUN: gun, Role: role, KeyID: keyID}}); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

// setAuditIndex names the log entry of a timestamp being served.
func (s *Server) setAuditIndex(ctx context.Context, w http.ResponseWriter, gun string, f *cachedFile) {
	if s.audit == nil {
		return
	}
	if idx, ok := s.audit.ts.lookup(ctx, gun, f.file.SHA256); ok {
		w.Header().Set(AuditIndexHeader, strconv.FormatUint(idx, 10))
	}
}

// tsIndex finds the log entry of a timestamp: the index of the latest
// tuf.publish or tuf.resign entry of its GUN naming its SHA-256. It
// follows the log from its start (entries written by any process sharing
// the store), keeping the last few timestamps of each GUN.
type tsIndex struct {
	st audit.Store

	mu   sync.Mutex
	m    map[string][]tsEntry // by GUN, oldest first
	next uint64               // entries read so far
	// last is when the log was last read for a timestamp not found.
	last time.Time
}

type tsEntry struct {
	sha string
	idx uint64
}

// tsKeep is how many timestamps of a GUN are remembered (a client may be
// served an older one by a cache in between).
const tsKeep = 8

// tsReadEvery bounds how often lookups of unknown timestamps read the log.
const tsReadEvery = 50 * time.Millisecond

func newTSIndex(st audit.Store) *tsIndex { return &tsIndex{st: st, m: map[string][]tsEntry{}} }

func (x *tsIndex) put(gun, sha string, idx uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.putLocked(gun, sha, idx)
}

func (x *tsIndex) putLocked(gun, sha string, idx uint64) {
	es := x.m[gun]
	for i := range es {
		if es[i].sha == sha {
			if idx > es[i].idx {
				es[i].idx = idx
			}
			return
		}
	}
	es = append(es, tsEntry{sha, idx})
	if len(es) > tsKeep {
		es = es[len(es)-tsKeep:]
	}
	x.m[gun] = es
}

func (x *tsIndex) drop(gun string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.m, gun)
}

func (x *tsIndex) find(gun, sha string) (uint64, bool) {
	for _, e := range x.m[gun] {
		if e.sha == sha {
			return e.idx, true
		}
	}
	return 0, false
}

// lookup returns the index of the entry of a timestamp, reading the log's
// new entries if it is not known yet.
func (x *tsIndex) lookup(ctx context.Context, gun, sha string) (uint64, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if idx, ok := x.find(gun, sha); ok {
		return idx, true
	}
	if time.Since(x.last) < tsReadEvery {
		return 0, false
	}
	x.last = time.Now()
	if err := x.follow(ctx); err != nil {
		return 0, false
	}
	return x.find(gun, sha)
}

// follow reads the entries integrated since the last read.
func (x *tsIndex) follow(ctx context.Context) error {
	st, err := x.st.State(ctx)
	if err != nil {
		return err
	}
	const chunk = 1024
	for x.next < st.Size {
		n := int(min(uint64(chunk), st.Size-x.next))
		es, err := x.st.Entries(ctx, x.next, n)
		if err != nil {
			return err
		}
		if len(es) == 0 {
			return errors.New("audit: entries missing from the log")
		}
		for _, e := range es {
			ev, err := audit.ParseEvent(e.Data)
			if err != nil {
				continue
			}
			switch ev.Type {
			case audit.TUFDelete:
				delete(x.m, ev.Subject.GUN)
			case audit.TUFPublish, audit.TUFResign:
				for _, r := range ev.Roles {
					if r.Role == tuf.RoleTimestamp {
						x.putLocked(ev.Subject.GUN, r.SHA256, e.Index)
					}
				}
			}
			x.next = e.Index + 1
		}
	}
	return nil
}

package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/server/apierr"
	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/tuf"
)

// heldKey returns the signer of the first key listed for role in root that
// the custodian holds, or ok=false.
func (s *Server) heldKey(ctx context.Context, gun string, root *tuf.Root, role string) (tuf.Signer, bool, error) {
	rk := root.Roles[role]
	if rk == nil {
		return tuf.Signer{}, false, nil
	}
	for _, id := range rk.KeyIDs {
		signer, err := s.cfg.Custodian.Signer(ctx, gun, id)
		if err != nil {
			if errors.Is(err, keys.ErrKeyNotHeld) {
				continue
			}
			return tuf.Signer{}, false, err
		}
		return tuf.Signer{Key: root.Keys[id], Signer: signer}, true, nil
	}
	return tuf.Signer{}, false, nil
}

// signFile signs a role object and turns it into a store file.
func signFile(gun, role string, obj any, c tuf.Common, signer tuf.Signer) (store.File, error) {
	raw, err := tuf.Sign(obj, signer)
	if err != nil {
		return store.File{}, err
	}
	return newFile(gun, role, c, raw), nil
}

func newFile(gun, role string, c tuf.Common, raw []byte) store.File {
	fm := tuf.NewFileMeta(raw)
	return store.File{GUN: gun, Role: role, Version: c.Version, Data: raw, SHA256: fmt.Sprintf("%x", fm.Hashes["sha256"]), Expires: c.Expires}
}

// newTimestamp signs the next timestamp over snapshot bytes.
func (s *Server) newTimestamp(ctx context.Context, gun string, root *tuf.Root, prevVersion int, snapshot []byte) (store.File, error) {
	signer, ok, err := s.heldKey(ctx, gun, root, tuf.RoleTimestamp)
	if err != nil {
		return store.File{}, fmt.Errorf("timestamp key: %w", err)
	}
	if !ok {
		return store.File{}, errNoTimestampKey
	}
	ts := tuf.Timestamp{
		Common: tuf.Common{Type: tuf.TypeTimestamp, Version: prevVersion + 1, Expires: s.now().Add(s.cfg.TimestampExpiry).UTC()},
		Meta:   map[string]tuf.FileMeta{tuf.RoleSnapshot: tuf.NewFileMeta(snapshot)},
	}
	return signFile(gun, tuf.RoleTimestamp, &ts, ts.Common, signer)
}

var errNoTimestampKey = errors.New("no timestamp keys exist on the server")

// keyJSON is the reference's encoding of a public key in key responses:
// encoding/json struct order, public before private.
func keyJSON(k *keys.PublicKey) []byte {
	return mustJSON(struct {
		Type  string `json:"keytype"`
		Value struct {
			Public  []byte  `json:"public"`
			Private *string `json:"private"`
		} `json:"keyval"`
	}{Type: k.Type(), Value: struct {
		Public  []byte  `json:"public"`
		Private *string `json:"private"`
	}{Public: k.Public()}})
}

func (s *Server) writeKey(w http.ResponseWriter, k *keys.PublicKey) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(keyJSON(k))
}

// storedRoot returns the current root of gun, or nil if it has none.
func (s *Server) storedRoot(ctx context.Context, gun string) (*tuf.Meta[tuf.Root], error) {
	f, err := s.current(ctx, gun, tuf.RoleRoot)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return tuf.ParseRoot(f.file.Data)
}

// allowNewRepositoryKey takes a token of Config.NewRepositoryKeys for a key
// about to be made for a repository that has no metadata: the one write a
// read may cause (GET snapshot.key or timestamp.key is create-if-missing,
// notary-v1.md §2.5). Without a token the request is 429 TOOMANYREQUESTS,
// with the time until the next token in Retry-After, and nothing is made.
func (s *Server) allowNewRepositoryKey() error {
	ok, wait := s.newKeys.Take(s.now())
	if ok {
		return nil
	}
	s.m.limited("new_repository_keys")
	return &apierr.Error{
		Code:       notaryapi.TooManyRequests,
		Detail:     "the server makes keys for repositories without metadata at a limited rate; retry later",
		RetryAfter: wait,
	}
}

// handleGetKey returns the server's key for a role. For a repository that
// has no root yet it returns the newest pending key, creating one only if
// none exists (so repeated GETs do not mint keys) and the rate of such
// keys allows it; for an initialised repository it returns the key the
// root lists, and never creates one.
func (s *Server) handleGetKey(w http.ResponseWriter, r *http.Request, p notaryapi.Path) error {
	gun := p.GUN.String()
	ctx := r.Context()
	unlock := s.locks.lock(gun)
	defer unlock()
	root, err := s.storedRoot(ctx, gun)
	if err != nil {
		return err
	}
	held, err := s.cfg.Custodian.Keys(ctx, gun, p.Role)
	if err != nil {
		return err
	}
	if root == nil {
		if len(held) > 0 {
			s.writeKey(w, held[0])
			return nil
		}
		if err := s.allowNewRepositoryKey(); err != nil {
			return err
		}
		k, err := s.cfg.Custodian.Create(ctx, gun, p.Role)
		if err != nil {
			return err
		}
		if err := s.keyEvent(ctx, audit.KeyCreate, s.actorOf(r), gun, p.Role, k.ID()); err != nil {
			return apierr.Wrap(notaryapi.Unavailable, err)
		}
		s.writeKey(w, k)
		return nil
	}
	listed := root.Signed.Roles[p.Role].KeyIDs
	for _, k := range held {
		if slices.Contains(listed, k.ID()) {
			s.writeKey(w, k)
			return nil
		}
	}
	return apierr.New(notaryapi.MetadataNotFound, fmt.Sprintf("the server holds no %s key of %s; rotate it with `notary key rotate %s %s -r`", p.Role, gun, gun, p.Role))
}

// handleRotateKey makes a new pending key for a role. Until a root listing
// it is published the key is unused, and further rotations return the same
// pending key instead of minting more.
func (s *Server) handleRotateKey(w http.ResponseWriter, r *http.Request, p notaryapi.Path) error {
	gun := p.GUN.String()
	ctx := r.Context()
	unlock := s.locks.lock(gun)
	defer unlock()
	root, err := s.storedRoot(ctx, gun)
	if err != nil {
		return err
	}
	held, err := s.cfg.Custodian.Keys(ctx, gun, p.Role)
	if err != nil {
		return err
	}
	if len(held) > 0 && (root == nil || !slices.Contains(root.Signed.Roles[p.Role].KeyIDs, held[0].ID())) {
		s.writeKey(w, held[0])
		return nil
	}
	if root == nil {
		if err := s.allowNewRepositoryKey(); err != nil {
			return err
		}
	}
	k, err := s.cfg.Custodian.Create(ctx, gun, p.Role)
	if err != nil {
		return err
	}
	if err := s.keyEvent(ctx, audit.KeyRotate, s.actorOf(r), gun, p.Role, k.ID()); err != nil {
		return apierr.Wrap(notaryapi.Unavailable, err)
	}
	s.log.InfoContext(ctx, "key rotation started", "gun", gun, "role", p.Role, "key", k.ID())
	s.writeKey(w, k)
	return nil
}

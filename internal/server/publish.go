package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/server/apierr"
	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// The in-process face of the Notary API for the signing service, which
// signet-server's command wires to it (this package does not know the
// service): the same validation chokepoint as every upload, and the
// current metadata as the server holds it.

// Publish runs files (role name → metadata bytes, as a client would
// upload them) through the validation every upload passes and stores the
// result atomically, exactly as a POST of them would. It returns the files
// stored: the uploaded roles, the snapshot the server signed (it must hold
// the snapshot key when none is uploaded) and the new timestamp.
//
// Errors: one wrapping store.ErrOldVersion when another writer stored a
// version of an uploaded role first (read the current state and retry);
// an *apierr.Error whose message says why validation refused the files;
// store.ErrUnavailable when the database could not be reached.
func (s *Server) Publish(ctx context.Context, gun string, files map[string][]byte) ([]store.File, error) {
	// The edge checks of an HTTP upload, so both paths accept the same.
	if _, err := notaryapi.ParseGUN(gun); err != nil {
		var ie *notaryapi.InvalidGUNError
		if errors.As(err, &ie) {
			return nil, invalidGUN(ie)
		}
		return nil, err
	}
	if err := trust.CheckUploadRoles(len(files)); err != nil {
		return nil, apierr.New(notaryapi.MalformedUpload, trust.Message(err))
	}
	uploads := make(map[string]upload, len(files))
	for role, data := range files {
		if !tuf.ValidRole(role) {
			return nil, apierr.New(notaryapi.InvalidRole, quoteName(role))
		}
		c, err := tuf.Peek(data)
		if err != nil {
			return nil, apierr.New(notaryapi.MalformedJSON, fmt.Sprintf("%s: %v", role, err))
		}
		uploads[role] = upload{role: role, data: data, common: c}
	}
	return s.update(ctx, gun, uploads)
}

// Current returns the current bytes of a role of gun as the server serves
// them, read from the store when other processes write to it too; an error
// wrapping store.ErrNotFound when there is none.
func (s *Server) Current(ctx context.Context, gun, role string) ([]byte, error) {
	f, err := s.currentForWrite(ctx, gun, role)
	if err != nil {
		return nil, err
	}
	return f.file.Data, nil
}

// SnapshotManaged reports whether the server holds a snapshot key that
// gun's current root lists, so that a publish without a snapshot is
// completed by the server (docker trust's default; notary's
// --server-managed-snapshot). An error wrapping store.ErrNotFound means
// gun has no root.
func (s *Server) SnapshotManaged(ctx context.Context, gun string) (bool, error) {
	f, err := s.currentForWrite(ctx, gun, tuf.RoleRoot)
	if err != nil {
		return false, err
	}
	root, err := tuf.ParseRoot(f.file.Data)
	if err != nil {
		return false, fmt.Errorf("stored root of %s: %w", gun, err)
	}
	_, ok, err := s.heldKey(ctx, gun, &root.Signed, tuf.RoleSnapshot)
	if err != nil {
		return false, err
	}
	return ok, nil
}

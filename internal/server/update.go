package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"

	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/server/apierr"
	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// upload is one metadata file of a POST.
type upload struct {
	role   string
	data   []byte
	common tuf.Common
}

// readUpload parses the multipart body of an atomic update. The role is the
// "filename" parameter of each part's raw Content-Disposition (so
// "targets/releases" keeps its slash, unlike multipart.Part.FileName), minus
// an optional ".json".
func readUpload(r *http.Request, limit int64) (map[string]upload, error) {
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mediaType, "multipart/") || params["boundary"] == "" {
		return nil, apierr.New(notaryapi.MalformedUpload, "the request is not a multipart upload")
	}
	body := http.MaxBytesReader(nil, r.Body, limit)
	mr := multipart.NewReader(body, params["boundary"])
	out := map[string]upload{}
	for {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, uploadReadErr(err, limit)
		}
		_, dparams, err := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		if err != nil || dparams["name"] != "files" {
			continue
		}
		filename := dparams["filename"]
		if filename == "" {
			return nil, apierr.New(notaryapi.NoFilename, struct{}{})
		}
		role := strings.TrimSuffix(filename, ".json")
		if !tuf.ValidRole(role) {
			return nil, apierr.New(notaryapi.InvalidRole, role)
		}
		if err := trust.CheckUploadRoles(len(out) + 1); err != nil {
			return nil, apierr.New(notaryapi.MalformedUpload, trust.Message(err))
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return nil, uploadReadErr(err, limit)
		}
		c, err := tuf.Peek(data)
		if err != nil {
			return nil, apierr.New(notaryapi.MalformedJSON, fmt.Sprintf("%s: %v", role, strings.TrimPrefix(err.Error(), tuf.ErrInvalidMetadata.Error()+": ")))
		}
		if _, dup := out[role]; dup {
			return nil, apierr.New(notaryapi.MalformedUpload, fmt.Sprintf("role %s appears twice in the upload", role))
		}
		out[role] = upload{role: role, data: data, common: c}
	}
	// An upload with no files is valid: notary sends one to publish with
	// nothing staged, and the server re-signs snapshot (if it holds the key)
	// and timestamp, as the reference does.
	return out, nil
}

func uploadReadErr(err error, limit int64) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return apierr.New(notaryapi.MalformedUpload, fmt.Sprintf("the upload is larger than the server's limit of %d bytes", limit))
	}
	return apierr.New(notaryapi.MalformedUpload, "the multipart body could not be read: "+err.Error())
}

func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request, p notaryapi.Path) error {
	ctx := r.Context()
	uploads, err := readUpload(r, s.cfg.MaxUploadBytes)
	if err != nil {
		s.m.rejected("malformed")
		return err
	}
	unlock := s.locks.lock(p.GUN)
	defer unlock()
	remoteGen := s.cache.remoteGeneration()
	files, err := s.validate(ctx, p.GUN, uploads)
	if err != nil {
		var ae *apierr.Error
		if errors.As(err, &ae) {
			if d, ok := ae.Detail.(notaryapi.ValidationDetail); ok {
				s.m.rejected(d.Name)
			}
		}
		return err
	}
	if err := s.cfg.Store.UpdateMany(ctx, p.GUN, files); err != nil {
		s.cache.invalidate(p.GUN)
		if errors.Is(err, store.ErrOldVersion) {
			s.m.rejected("version")
			return err
		}
		return apierr.Wrap(notaryapi.Updating, err)
	}
	s.cache.replace(remoteGen, p.GUN, files, s.now())
	s.m.publishes.Inc()
	roles := make([]string, 0, len(files))
	for _, f := range files {
		roles = append(roles, fmt.Sprintf("%s@%d", f.Role, f.Version))
	}
	s.log.InfoContext(ctx, "repository updated", "gun", p.GUN, "files", roles)
	return nil
}

// validate is the chokepoint every upload passes, in the reference's order:
// root, targets roles shallowest first, snapshot (verified or generated),
// then a new timestamp. It returns the files to store.
func (s *Server) validate(ctx context.Context, gun string, uploads map[string]upload) ([]store.File, error) {
	now := s.now()
	v := trust.New(gun, now, trust.Options{EnforcePaths: true})
	cur := func(role string) (*cachedFile, error) {
		f, err := s.currentForWrite(ctx, gun, role)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return f, err
	}
	var files []store.File

	// 1. Root: the stored one anchors; an uploaded one must follow it.
	storedRoot, err := cur(tuf.RoleRoot)
	if err != nil {
		return nil, err
	}
	if storedRoot != nil {
		if err := v.TrustRoot(storedRoot.file.Data); err != nil {
			return nil, apierr.Wrap(notaryapi.Unknown, fmt.Errorf("stored root of %s: %w", gun, err))
		}
	}
	if up, ok := uploads[tuf.RoleRoot]; ok {
		next := 1
		if storedRoot != nil {
			next = storedRoot.file.Version + 1
			if up.common.Version < next {
				return nil, apierr.New(notaryapi.OldVersion, struct{}{})
			}
		}
		if up.common.Version > next && !(storedRoot == nil && up.common.Version == 2) {
			return nil, apierr.Invalid(notaryapi.NameBadRoot, fmt.Sprintf("root version %d skips version %d: each root must be the next version so clients can follow the chain", up.common.Version, next))
		}
		if err := v.LoadRoot(up.data); err != nil {
			return nil, apierr.Invalid(notaryapi.NameBadRoot, trust.Message(err))
		}
		files = append(files, newFile(gun, tuf.RoleRoot, up.common, up.data))
	} else if storedRoot == nil {
		return nil, apierr.Invalid(notaryapi.NameValidation, "no pre-existing root and no root provided in update.")
	}
	root := v.Root()

	// 2. Targets and delegations, parents before children.
	var targetRoles []string
	for role := range uploads {
		if tuf.IsTargetsRole(role) {
			targetRoles = append(targetRoles, role)
		}
	}
	slices.SortFunc(targetRoles, func(a, b string) int {
		if d := tuf.Depth(a) - tuf.Depth(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	ensure := func(role string) error { // load a stored ancestor
		if v.Targets(role) != nil {
			return nil
		}
		f, err := cur(role)
		if err != nil {
			return err
		}
		if f == nil {
			if role == tuf.RoleTargets {
				return apierr.Hierarchy(tuf.RoleTargets, "no targets metadata in the update and none stored for this repository")
			}
			return apierr.Invalid(notaryapi.NameBadTargets, fmt.Sprintf("parent role %s does not exist", role))
		}
		if err := v.TrustTargets(role, f.file.Data); err != nil {
			return apierr.Invalid(notaryapi.NameBadTargets, trust.Message(err))
		}
		return nil
	}
	for _, role := range targetRoles {
		parts := strings.Split(role, "/")
		for i := 1; i < len(parts); i++ {
			if err := ensure(strings.Join(parts[:i], "/")); err != nil {
				return nil, err
			}
		}
		up := uploads[role]
		if err := v.LoadTargets(role, up.data); err != nil {
			return nil, apierr.Invalid(notaryapi.NameBadTargets, trust.Message(err))
		}
		files = append(files, newFile(gun, role, up.common, up.data))
	}

	// 3. Snapshot: verify the uploaded one, or sign one if the server holds
	// the snapshot key.
	storedSnap, err := cur(tuf.RoleSnapshot)
	if err != nil {
		return nil, err
	}
	if storedSnap == nil && v.Targets(tuf.RoleTargets) == nil {
		return nil, apierr.Hierarchy(tuf.RoleTargets, "no targets metadata in the update and none stored for this repository")
	}
	var snapshot []byte
	if up, ok := uploads[tuf.RoleSnapshot]; ok {
		if err := v.LoadSnapshot(up.data); err != nil {
			return nil, apierr.Invalid(notaryapi.NameBadSnapshot, trust.Message(err))
		}
		files = append(files, newFile(gun, tuf.RoleSnapshot, up.common, up.data))
		snapshot = up.data
	} else {
		signer, ok, err := s.heldKey(ctx, gun, &root.Signed, tuf.RoleSnapshot)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, apierr.Hierarchy(tuf.RoleSnapshot, "no snapshot was included in update and server does not hold current snapshot key for repository")
		}
		snap := tuf.Snapshot{Common: tuf.Common{Type: tuf.TypeSnapshot, Version: 1}, Meta: map[string]tuf.FileMeta{}}
		if storedSnap != nil {
			prev, err := tuf.ParseSnapshot(storedSnap.file.Data)
			if err != nil {
				return nil, apierr.Wrap(notaryapi.Unknown, fmt.Errorf("stored snapshot of %s: %w", gun, err))
			}
			snap.Version = prev.Signed.Version + 1
			snap.Meta = prev.Signed.Meta
		}
		snap.Expires = now.Add(s.cfg.SnapshotExpiry).UTC()
		snap.Meta[tuf.RoleRoot] = root.FileMeta()
		for _, role := range targetRoles {
			snap.Meta[role] = tuf.NewFileMeta(uploads[role].data)
		}
		f, err := signFile(gun, tuf.RoleSnapshot, &snap, snap.Common, signer)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
		snapshot = f.Data
	}

	// 4. A new timestamp, always signed by the server (an uploaded one is
	// ignored, as by the reference).
	prevTS := 0
	if f, err := cur(tuf.RoleTimestamp); err != nil {
		return nil, err
	} else if f != nil {
		prevTS = f.file.Version
	}
	ts, err := s.newTimestamp(ctx, gun, &root.Signed, prevTS, snapshot)
	if errors.Is(err, errNoTimestampKey) {
		return nil, apierr.Invalid(notaryapi.NameBadRoot, "no  timestamp keys exist on the server")
	}
	if err != nil {
		return nil, err
	}
	return append(files, ts), nil
}

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
	"sync"

	"github.com/signet-trust/signet/internal/audit"
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

// UploadMemoryPerByte is the memory an upload may take, at worst, per byte
// of its body while it is read, parsed and verified: measured on the
// costliest shape, a targets file of many small targets (its parse, and the
// canonical form its signatures are checked over; about 16 bytes of peak
// RSS per byte), and reserved from Config.UploadMemory for every upload.
const UploadMemoryPerByte = 16

// budget is the memory reserved by uploads in flight, server-wide.
type budget struct {
	mu    sync.Mutex
	limit int64
	used  int64
}

// reservation is what one upload holds of the budget.
type reservation struct {
	b    *budget
	held int64
}

// grow reserves n more bytes. It fails when they do not fit in the budget
// and another upload holds some of it: an upload alone is admitted
// whatever its size, so that no upload within MaxUploadBytes is refused
// for ever.
func (r *reservation) grow(n int64) bool {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit && b.used != r.held {
		return false
	}
	b.used += n
	r.held += n
	return true
}

// release gives back everything the upload holds.
func (r *reservation) release() {
	r.b.mu.Lock()
	r.b.used -= r.held
	r.b.mu.Unlock()
	r.held = 0
}

// errUploadMemory means the budget of upload memory is full.
var errUploadMemory = errors.New("server: the memory for uploads in flight is in use; retry later")

// growStep is how much of a body without Content-Length is reserved at a
// time, in body bytes.
const growStep = 1 << 20

// meteredBody reserves memory for a body of unknown length as it is read.
type meteredBody struct {
	r    io.Reader
	res  *reservation
	read int64
}

func (m *meteredBody) Read(p []byte) (int, error) {
	if need := (m.read + int64(len(p))) * UploadMemoryPerByte; need > m.res.held {
		step := max(need-m.res.held, growStep*UploadMemoryPerByte)
		if !m.res.grow(step) {
			return 0, errUploadMemory
		}
	}
	n, err := m.r.Read(p)
	m.read += int64(n)
	return n, err
}

// readUpload parses the multipart body of an atomic update, holding its
// memory in res. The role is the "filename" parameter of each part's raw
// Content-Disposition (so "targets/releases" keeps its slash, unlike
// multipart.Part.FileName), minus an optional ".json". A body with a
// Content-Length has its memory reserved before anything is read and its
// parts read into one buffer of that length; one without is reserved for
// as it arrives.
func readUpload(r *http.Request, limit int64, res *reservation) (map[string]upload, error) {
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mediaType, "multipart/") || params["boundary"] == "" {
		return nil, apierr.New(notaryapi.MalformedUpload, "the request is not a multipart upload")
	}
	if r.ContentLength > limit {
		return nil, tooBig(limit)
	}
	var body io.Reader = http.MaxBytesReader(nil, r.Body, limit)
	var arena []byte
	if r.ContentLength >= 0 {
		if !res.grow(r.ContentLength * UploadMemoryPerByte) {
			return nil, uploadReadErr(errUploadMemory, limit)
		}
		arena = make([]byte, 0, r.ContentLength)
	} else {
		body = &meteredBody{r: body, res: res}
	}
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
			return nil, apierr.New(notaryapi.InvalidRole, quoteName(role))
		}
		if err := trust.CheckUploadRoles(len(out) + 1); err != nil {
			return nil, apierr.New(notaryapi.MalformedUpload, trust.Message(err))
		}
		var data []byte
		if arena != nil {
			data, err = readInto(&arena, part)
		} else {
			data, err = io.ReadAll(part)
		}
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

// readInto appends what r holds to the arena and returns it as a slice of
// its own. The arena has the capacity of the whole body, so the parts of
// an upload take one allocation of the body's size, without the copies of
// a growing buffer.
func readInto(arena *[]byte, r io.Reader) ([]byte, error) {
	a := *arena
	start := len(a)
	for {
		if len(a) == cap(a) {
			a = append(a, 0)[:len(a)] // never for a body within its Content-Length
		}
		n, err := r.Read(a[len(a):cap(a)])
		a = a[:len(a)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			*arena = a
			return nil, err
		}
	}
	*arena = a
	return a[start:len(a):len(a)], nil
}

// quoteName returns a name from a request as an error detail or a log
// quotes it: whole, as the reference does, unless it is longer than any
// valid name (a part's header may hold megabytes).
func quoteName(s string) string { return shorten(s, 256) }

// shorten cuts s to at most n bytes of valid UTF-8, saying how long it was.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + fmt.Sprintf("…(%d bytes)", len(s))
}

func tooBig(limit int64) error {
	return apierr.New(notaryapi.MalformedUpload, fmt.Sprintf("the upload is larger than the server's limit of %d bytes", limit))
}

func uploadReadErr(err error, limit int64) error {
	var tooSlow *bodyTooSlowError
	switch {
	case errors.Is(err, errUploadMemory):
		return apierr.Wrap(notaryapi.Unavailable, err)
	case errors.As(err, new(*http.MaxBytesError)):
		return tooBig(limit)
	case errors.As(err, &tooSlow):
		return &apierr.Error{Code: notaryapi.MalformedUpload, Detail: tooSlow.Error(), Cause: err}
	}
	return apierr.New(notaryapi.MalformedUpload, "the multipart body could not be read: "+err.Error())
}

func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request, p notaryapi.Path) error {
	res := &reservation{b: s.uploads}
	defer res.release()
	uploads, err := readUpload(r, s.cfg.MaxUploadBytes, res)
	if errors.Is(err, errUploadMemory) {
		s.m.limited("upload_memory")
		return err
	}
	if err != nil {
		s.m.rejected("malformed")
		return err
	}
	_, err = s.update(withActor(r.Context(), s.actorOf(r)), p.GUN.String(), uploads)
	return err
}

// update validates uploads against gun's current state and stores the
// result atomically: the one path of every write of metadata, whether it
// comes over HTTP or from the signing service (Publish). It returns the
// files stored.
func (s *Server) update(ctx context.Context, gun string, uploads map[string]upload) ([]store.File, error) {
	unlock := s.locks.lock(gun)
	defer unlock()
	remoteGen := s.cache.remoteGeneration()
	files, err := s.validate(ctx, gun, uploads)
	if err != nil {
		var ae *apierr.Error
		if errors.As(err, &ae) {
			if d, ok := ae.Detail.(notaryapi.ValidationDetail); ok {
				s.m.rejected(d.Name)
			}
		}
		return nil, err
	}
	if err := s.storeFiles(ctx, gun, files, audit.TUFPublish, actorFrom(ctx, actorService), ""); err != nil {
		s.cache.invalidate(gun)
		if errors.Is(err, store.ErrOldVersion) {
			s.m.rejected("version")
			return nil, err
		}
		return nil, apierr.Wrap(notaryapi.Updating, err)
	}
	s.cache.replace(remoteGen, gun, files, s.now())
	s.m.publishes.Inc()
	roles := make([]string, 0, len(files))
	for _, f := range files {
		roles = append(roles, fmt.Sprintf("%s@%d", f.Role, f.Version))
	}
	s.log.InfoContext(ctx, "repository updated", "gun", gun, "files", roles)
	return files, nil
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
		m, err := storedRoot.root() // parsed once per stored version (rootcache.go)
		if err != nil {
			return nil, apierr.Wrap(notaryapi.Unknown, fmt.Errorf("stored root of %s: %w", gun, err))
		}
		v.TrustParsedRoot(m)
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

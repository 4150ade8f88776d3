package server

// The import of a repository's trust history from another Notary server
// (`signet mirror`): POST /_signet/import/{gun} with every root version and
// the current timestamp, snapshot, targets and delegations, as the source
// served them. The whole history is verified by the state machine of
// tuf/trust — each root version signed by a threshold of the previous
// root's keys and of its own, then timestamp → snapshot → targets →
// delegations under the newest root — and compared with what this server
// already holds; only versions newer than the stored ones are added,
// through the store's normal atomic write, or nothing is.
//
// The server signs nothing here. It holds neither the source's timestamp
// key nor (when the source managed it) its snapshot key, so the imported
// timestamp is served as it is until the owner moves the key
// (`notary key rotate GUN timestamp -r`): the refresher and the read path
// find no held key and leave it alone (heldKey), and key rotation creates
// the server's own key as for any repository.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/server/apierr"
	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// maxImportTimestamp is the notary client's download limit for a
// timestamp: a larger one could never be read by a client.
const maxImportTimestamp = 1 << 20

// handleImport serves POST /_signet/import/{gun}.
func (s *Server) handleImport(w http.ResponseWriter, r *http.Request) {
	gun := r.PathValue("gun")
	res, err := s.importRequest(r.WithContext(withActor(r.Context(), s.actorOf(r))), gun)
	if err != nil {
		e := apierr.Write(w, err)
		lvl := slog.LevelInfo
		if e.Code.Status() >= 500 {
			lvl = slog.LevelError
		}
		s.log.LogAttrs(r.Context(), lvl, "import refused", slog.String("gun", gun), slog.String("code", e.Code.Name()),
			slog.Any("detail", e.Detail), slog.Any("cause", e.Cause))
		return
	}
	w.Header().Set("Content-Type", notaryapi.ContentTypeJSON)
	_, _ = w.Write(mustJSON(res))
}

func (s *Server) importRequest(r *http.Request, gun string) (*notaryapi.ImportResult, error) {
	if _, err := notaryapi.ParseGUN(gun); err != nil {
		var ie *notaryapi.InvalidGUNError
		if errors.As(err, &ie) {
			return nil, invalidGUN(ie)
		}
		return nil, err
	}
	if mt := strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]); mt != "application/json" {
		return nil, apierr.New(notaryapi.MalformedUpload, "an import is a JSON body (Content-Type: application/json)")
	}
	body := http.MaxBytesReader(nil, r.Body, s.cfg.MaxUploadBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var req notaryapi.ImportRequest
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, apierr.New(notaryapi.MalformedUpload, fmt.Sprintf("the import is larger than the server's limit of %d bytes", s.cfg.MaxUploadBytes))
		}
		return nil, apierr.New(notaryapi.MalformedUpload, "the import is not the JSON of an import request: "+err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, apierr.New(notaryapi.MalformedUpload, "the import has data after its JSON object")
	}
	h, err := parseImport(req.Files)
	if err != nil {
		return nil, err
	}
	unlock := s.locks.lock(gun)
	defer unlock()
	res, err := s.importHistory(r.Context(), gun, h)
	if err != nil {
		return nil, err
	}
	added := make([]string, len(res.Added))
	for i, f := range res.Added {
		added[i] = fmt.Sprintf("%s@%d", f.Role, f.Version)
	}
	s.log.InfoContext(r.Context(), "repository imported", "gun", gun, "outcome", res.Outcome, "files", added)
	return res, nil
}

// history is an import, parsed: every root version in ascending order and
// one file of each other role.
type history struct {
	roots []versioned
	other map[string]versioned
}

type versioned struct {
	role    string
	version int
	expires time.Time
	data    []byte
}

// parseImport checks the shape of an import: valid role names, files that
// carry a version, one file per role except root, a complete root chain
// (consecutive versions from 1, or from 2 as the reference's first root
// may be) and the base roles present.
func parseImport(files []notaryapi.ImportFile) (*history, error) {
	h := &history{other: map[string]versioned{}}
	seenRoot := map[int]bool{}
	for _, f := range files {
		if !tuf.ValidRole(f.Role) {
			return nil, apierr.New(notaryapi.InvalidRole, f.Role)
		}
		c, err := tuf.Peek(f.Data)
		if err != nil {
			return nil, apierr.New(notaryapi.MalformedJSON, fmt.Sprintf("%s: %v", f.Role, strings.TrimPrefix(err.Error(), tuf.ErrInvalidMetadata.Error()+": ")))
		}
		if c.Version < 1 {
			return nil, apierr.Invalid(notaryapi.NameValidation, fmt.Sprintf("%s has version %d; versions start at 1", f.Role, c.Version))
		}
		v := versioned{role: f.Role, version: c.Version, expires: c.Expires, data: f.Data}
		if f.Role == tuf.RoleRoot {
			if seenRoot[c.Version] {
				return nil, apierr.New(notaryapi.MalformedUpload, fmt.Sprintf("root version %d appears twice in the import", c.Version))
			}
			seenRoot[c.Version] = true
			h.roots = append(h.roots, v)
			continue
		}
		if _, dup := h.other[f.Role]; dup {
			return nil, apierr.New(notaryapi.MalformedUpload, fmt.Sprintf("role %s appears twice in the import; only root carries its history", f.Role))
		}
		if f.Role == tuf.RoleTimestamp && len(f.Data) > maxImportTimestamp {
			return nil, apierr.Invalid(notaryapi.NameValidation, fmt.Sprintf("the timestamp is %d bytes, more than notary clients read (%d)", len(f.Data), maxImportTimestamp))
		}
		h.other[f.Role] = v
	}
	if len(h.roots) == 0 {
		return nil, apierr.Hierarchy(tuf.RoleRoot, "the import has no root")
	}
	for _, role := range []string{tuf.RoleTimestamp, tuf.RoleSnapshot, tuf.RoleTargets} {
		if _, ok := h.other[role]; !ok {
			return nil, apierr.Hierarchy(role, "the import has no "+role)
		}
	}
	sort.Slice(h.roots, func(i, j int) bool { return h.roots[i].version < h.roots[j].version })
	if first := h.roots[0].version; first > 2 {
		return nil, apierr.Invalid(notaryapi.NameBadRoot, fmt.Sprintf("the root chain starts at version %d: every version from the first (1, or 2 as notary may publish it) is needed so that clients trusting an older root can follow it", first))
	}
	for i := 1; i < len(h.roots); i++ {
		if want := h.roots[i-1].version + 1; h.roots[i].version != want {
			return nil, apierr.Invalid(notaryapi.NameBadRoot, fmt.Sprintf("the root chain lacks version %d (it jumps from %d to %d)", want, h.roots[i-1].version, h.roots[i].version))
		}
	}
	return h, nil
}

// verify runs the whole history through the state machine: the root chain,
// then the newest state under the newest root. Expired metadata is
// accepted (history, and a repository that expired on its old server must
// still be movable), and reported in the warnings; readers still refuse
// it.
func (h *history) verify(gun string, now time.Time) ([]string, error) {
	all := map[string]bool{tuf.RoleRoot: true, tuf.RoleTimestamp: true, tuf.RoleSnapshot: true}
	for role := range h.other {
		all[role] = true
	}
	v := trust.New(gun, now, trust.Options{AllowExpired: all})
	v.AllowExpiredTargets(true)
	for _, r := range h.roots {
		if err := v.LoadRoot(r.data); err != nil {
			what := fmt.Sprintf("root version %d", r.version)
			if r.version > h.roots[0].version {
				what += fmt.Sprintf(" (after version %d)", r.version-1)
			}
			return nil, apierr.Invalid(notaryapi.NameBadRoot, what+": "+trust.Message(err))
		}
	}
	if err := v.LoadTimestamp(h.other[tuf.RoleTimestamp].data); err != nil {
		return nil, apierr.Invalid(notaryapi.NameValidation, "timestamp: "+trust.Message(err))
	}
	if err := v.LoadSnapshot(h.other[tuf.RoleSnapshot].data); err != nil {
		return nil, apierr.Invalid(notaryapi.NameBadSnapshot, "snapshot: "+trust.Message(err))
	}
	loaded := map[string]bool{tuf.RoleTimestamp: true, tuf.RoleSnapshot: true}
	queue := []string{tuf.RoleTargets}
	for len(queue) > 0 {
		role := queue[0]
		queue = queue[1:]
		f, ok := h.other[role]
		if _, listed := v.Snapshot().Signed.Meta[role]; !listed {
			if role == tuf.RoleTargets {
				return nil, apierr.Invalid(notaryapi.NameBadSnapshot, "the snapshot does not list targets")
			}
			continue // delegated, never published
		}
		if !ok {
			return nil, apierr.Hierarchy(role, fmt.Sprintf("the snapshot lists %s, but the import does not carry it", role))
		}
		if err := v.LoadTargets(role, f.data); err != nil {
			return nil, apierr.Invalid(notaryapi.NameBadTargets, role+": "+trust.Message(err))
		}
		loaded[role] = true
		for _, d := range v.Targets(role).Signed.Delegations.Roles {
			queue = append(queue, d.Name)
		}
	}
	var extra []string
	for role := range h.other {
		if !loaded[role] {
			extra = append(extra, role)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return nil, apierr.Invalid(notaryapi.NameValidation, fmt.Sprintf("%s %s not part of the repository's state: neither listed in its snapshot nor delegated", strings.Join(extra, ", "), isAre(len(extra))))
	}
	var warnings []string
	newest := h.roots[len(h.roots)-1]
	for _, f := range append([]versioned{newest}, h.sortedOther()...) {
		if !now.Before(f.expires) {
			warnings = append(warnings, fmt.Sprintf("%s version %d expired at %s; clients refuse it until it is re-signed", f.role, f.version, f.expires.UTC().Format(time.RFC3339)))
		}
	}
	return warnings, nil
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// sortedOther returns the non-root files in role order.
func (h *history) sortedOther() []versioned {
	out := make([]versioned, 0, len(h.other))
	for _, f := range h.other {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].role < out[j].role })
	return out
}

// importHistory verifies h and stores what this server lacks of it. The
// caller holds the GUN's write lock. Stored state is read from the store,
// not the cache, so that replicas decide on what is committed.
//
// Against what is stored, for every role of the import: the same version
// must hold the same bytes (else the histories conflict); the import is
// behind on a role when the server holds a newer version, ahead when an
// older one. Ahead on some roles and behind on others is a diverged
// history, refused; behind or level on every role stores nothing; ahead or
// level on every role stores every imported version newer than the
// server's, in one atomic write, which makes the source's state current.
func (s *Server) importHistory(ctx context.Context, gun string, h *history) (*notaryapi.ImportResult, error) {
	now := s.now()
	warnings, err := h.verify(gun, now)
	if err != nil {
		return nil, err
	}
	current := func(role string) (store.File, bool, error) {
		f, err := s.cfg.Store.GetCurrent(ctx, gun, role)
		if errors.Is(err, store.ErrNotFound) {
			return store.File{}, false, nil
		}
		return f, err == nil, err
	}
	same := func(f versioned) (bool, error) {
		st, err := s.cfg.Store.GetVersion(ctx, gun, f.role, f.version)
		if errors.Is(err, store.ErrNotFound) {
			return true, nil // not kept here: nothing to disagree with
		}
		if err != nil {
			return false, err
		}
		return string(st.Data) == string(f.data), nil
	}
	conflict := func(f versioned) error {
		return apierr.Invalid(notaryapi.NameValidation, fmt.Sprintf(
			"the history here conflicts with the source's: %s version %d differs; this repository was not copied from that source, or one of them was changed independently. Nothing was imported", f.role, f.version))
	}

	var ahead, behind []string // roles where the import is newer / older
	var add []versioned
	// Root: every imported version the server holds must be the same.
	storedRoot, hasRoot, err := current(tuf.RoleRoot)
	if err != nil {
		return nil, err
	}
	newest := h.roots[len(h.roots)-1]
	for _, r := range h.roots {
		if hasRoot && r.version <= storedRoot.Version {
			ok, err := same(r)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, conflict(r)
			}
			continue
		}
		add = append(add, r)
	}
	switch {
	case !hasRoot || newest.version > storedRoot.Version:
		ahead = append(ahead, fmt.Sprintf("root (%d here, %d there)", storedRoot.Version, newest.version))
	case newest.version < storedRoot.Version:
		behind = append(behind, fmt.Sprintf("root (%d here, %d there)", storedRoot.Version, newest.version))
	}
	for _, f := range h.sortedOther() {
		st, ok, err := current(f.role)
		if err != nil {
			return nil, err
		}
		switch {
		case !ok || f.version > st.Version:
			ahead = append(ahead, fmt.Sprintf("%s (%d here, %d there)", f.role, st.Version, f.version))
			add = append(add, f)
		case f.version == st.Version:
			if string(st.Data) != string(f.data) {
				return nil, conflict(f)
			}
		default:
			same, err := same(f)
			if err != nil {
				return nil, err
			}
			if !same {
				return nil, conflict(f)
			}
			behind = append(behind, fmt.Sprintf("%s (%d here, %d there)", f.role, st.Version, f.version))
		}
	}
	res := &notaryapi.ImportResult{GUN: gun, Added: []notaryapi.ImportedFile{}, Current: map[string]int{}, Warnings: warnings}
	switch {
	case len(ahead) > 0 && len(behind) > 0:
		return nil, apierr.Invalid(notaryapi.NameValidation, fmt.Sprintf(
			"the histories diverged: the source is newer on %s, this server on %s; both were changed since the last mirror. Nothing was imported",
			strings.Join(ahead, ", "), strings.Join(behind, ", ")))
	case len(ahead) == 0 && len(behind) > 0:
		res.Outcome = notaryapi.ImportNewerHere
	case len(ahead) == 0:
		res.Outcome = notaryapi.ImportUpToDate
	default:
		res.Outcome = notaryapi.ImportAdded
		files := make([]store.File, len(add))
		for i, f := range add {
			files[i] = newFile(gun, f.role, tuf.Common{Version: f.version, Expires: f.expires}, f.data)
		}
		err := s.storeFiles(ctx, gun, files, audit.TUFPublish, actorFrom(ctx, Anonymous), "imported from another Notary server")
		s.cache.invalidate(gun)
		if err != nil {
			if errors.Is(err, store.ErrOldVersion) {
				return nil, err // another writer got there first: VERSION
			}
			return nil, apierr.Wrap(notaryapi.Updating, err)
		}
		slices.SortFunc(add, func(a, b versioned) int {
			if c := strings.Compare(a.role, b.role); c != 0 {
				return c
			}
			return a.version - b.version
		})
		for _, f := range add {
			res.Added = append(res.Added, notaryapi.ImportedFile{Role: f.role, Version: f.version})
		}
	}
	for _, f := range append([]versioned{newest}, h.sortedOther()...) {
		st, ok, err := current(f.role)
		if err != nil {
			return nil, err
		}
		if ok {
			res.Current[f.role] = st.Version
		}
	}
	ts, _, err := current(tuf.RoleTimestamp)
	if err != nil {
		return nil, err
	}
	res.TimestampExpires = ts.Expires.UTC().Format(time.RFC3339)
	if res.Outcome != notaryapi.ImportNewerHere {
		if root, err := tuf.ParseRoot(newest.data); err == nil {
			if _, held, err := s.heldKey(ctx, gun, &root.Signed, tuf.RoleTimestamp); err == nil && !held {
				res.Warnings = append(res.Warnings, fmt.Sprintf(
					"this server does not hold the timestamp key of %s: it serves the imported timestamp until it expires at %s; before then the owner moves the key here with `notary key rotate %s timestamp -r`",
					gun, res.TimestampExpires, gun))
			}
		}
	}
	return res, nil
}

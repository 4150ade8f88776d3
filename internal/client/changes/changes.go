// Package changes is the closed set of changes a client stages before it
// publishes — targets added or removed, delegations created, changed or
// removed, delegation keys purged, base-role keys rotated, roles witnessed
// — and the on-disk changelist that holds them.
//
// The client library works only with the Go types below. Notary's JSON
// form (Record) appears only where a changelist file is read or written,
// in the notary client's file format, so a changelist staged by notary is
// published by signet and the other way round. A file that holds no change
// notary would apply is reported, naming the file; it is never skipped.
//
// A changelist directory holds one JSON file per change, named
// <20-digit unix nanoseconds>_<uuid>.change and applied in name order.
package changes

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/atomicfile"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
)

// Change is one staged change: AddTarget, RemoveTarget, AddDelegation,
// UpdateDelegation, RemoveDelegation, PurgeKeys, RotateKey or Witness.
type Change interface {
	// record returns the change in notary's on-disk form; the unexported
	// method closes the set.
	record() (Record, error)
}

// AddTarget lists (or replaces) a target in a targets role.
type AddTarget struct {
	Role string
	Name string
	Meta tuf.FileMeta
}

// RemoveTarget removes a target from a targets role.
type RemoveTarget struct {
	Role string
	Name string
}

// AddDelegation creates the delegation Role, or adds keys and paths to it.
// A Threshold of 0 leaves the threshold as it is (1 for a new role).
type AddDelegation struct {
	Role      string
	Threshold int
	Keys      []*keys.PublicKey
	Paths     []string
}

// UpdateDelegation changes an existing delegation: keys added, keys removed
// (by canonical key ID, as notary stages them), paths added, removed or
// cleared, and the threshold when not 0.
type UpdateDelegation struct {
	Role        string
	Threshold   int
	AddKeys     []*keys.PublicKey
	RemoveKeys  []string
	AddPaths    []string
	RemovePaths []string
	ClearPaths  bool
}

// RemoveDelegation deletes the delegation Role, its metadata and everything
// delegated below it.
type RemoveDelegation struct {
	Role string
}

// PurgeKeys removes keys (canonical key IDs) from every delegation under
// Under ("targets": all of them).
type PurgeKeys struct {
	Under  string
	KeyIDs []string
}

// RotateKey replaces the keys of a base role (root, targets, snapshot or
// timestamp) in the root.
type RotateKey struct {
	Role string
	Keys []*keys.PublicKey
}

// Witness re-signs a targets role as it is (after a key change left its
// signatures short).
type Witness struct {
	Role string
}

// Record is a change as notary's changelist files hold it.
type Record struct {
	Action string `json:"action"` // create, update or delete
	Scope  string `json:"role"`   // "targets", a delegation, "<delegation>/*" or "root"
	Type   string `json:"type"`   // target, delegation, witness or role
	Path   string `json:"path"`
	Data   []byte `json:"data"`
}

// Notary's names.
const (
	actionCreate = "create"
	actionUpdate = "update"
	actionDelete = "delete"

	scopeRoot = "root"

	typeRole       = "role"
	typeTarget     = "target"
	typeDelegation = "delegation"
	typeWitness    = "witness"
)

// delegationData is the data of a delegation record.
type delegationData struct {
	NewName      string            `json:"new_name,omitempty"` // notary never applies it
	NewThreshold int               `json:"threshold,omitempty"`
	AddKeys      []*keys.PublicKey `json:"add_keys,omitempty"`
	RemoveKeys   []string          `json:"remove_keys,omitempty"`
	AddPaths     []string          `json:"add_paths,omitempty"`
	RemovePaths  []string          `json:"remove_paths,omitempty"`
	ClearPaths   bool              `json:"clear_paths,omitempty"`
}

// rootRoleData is the data of a base-role key change.
type rootRoleData struct {
	Keys []*keys.PublicKey `json:"keys"`
	Role string            `json:"role"`
}

func (c AddTarget) record() (Record, error) {
	b, err := json.Marshal(c.Meta)
	return Record{Action: actionCreate, Scope: c.Role, Type: typeTarget, Path: c.Name, Data: b}, err
}

func (c RemoveTarget) record() (Record, error) {
	return Record{Action: actionDelete, Scope: c.Role, Type: typeTarget, Path: c.Name}, nil
}

func (c AddDelegation) record() (Record, error) {
	b, err := json.Marshal(delegationData{NewThreshold: c.Threshold, AddKeys: c.Keys, AddPaths: c.Paths})
	return Record{Action: actionCreate, Scope: c.Role, Type: typeDelegation, Data: b}, err
}

func (c UpdateDelegation) record() (Record, error) {
	b, err := json.Marshal(delegationData{NewThreshold: c.Threshold, AddKeys: c.AddKeys, RemoveKeys: c.RemoveKeys,
		AddPaths: c.AddPaths, RemovePaths: c.RemovePaths, ClearPaths: c.ClearPaths})
	return Record{Action: actionUpdate, Scope: c.Role, Type: typeDelegation, Data: b}, err
}

func (c RemoveDelegation) record() (Record, error) {
	return Record{Action: actionDelete, Scope: c.Role, Type: typeDelegation}, nil
}

func (c PurgeKeys) record() (Record, error) {
	b, err := json.Marshal(delegationData{RemoveKeys: c.KeyIDs})
	return Record{Action: actionUpdate, Scope: c.Under + "/*", Type: typeDelegation, Data: b}, err
}

func (c RotateKey) record() (Record, error) {
	b, err := json.Marshal(rootRoleData{Keys: c.Keys, Role: c.Role})
	return Record{Action: actionCreate, Scope: scopeRoot, Type: typeRole, Path: c.Role, Data: b}, err
}

func (c Witness) record() (Record, error) {
	return Record{Action: actionUpdate, Scope: c.Role, Type: typeWitness}, nil
}

// Encode returns a change in notary's on-disk form.
func Encode(c Change) (Record, error) {
	if c == nil {
		return Record{}, errors.New("changes: no change")
	}
	return c.record()
}

// ErrUnknown reports a record that is not a change notary applies.
var ErrUnknown = errors.New("changes: not a change notary applies")

// isWildDelegation reports whether scope names every delegation under a
// role ("targets/*", "targets/team/*"), as notary's IsWildDelegation.
func isWildDelegation(scope string) bool {
	parent, ok := strings.CutSuffix(scope, "/*")
	return ok && path.Clean(scope) == scope && (parent == tuf.RoleTargets || tuf.IsDelegation(parent))
}

// Decode reads a record the way notary's client applies it: by scope (the
// targets role or a delegation, "<role>/*" for a purge, or the root), then
// by type and action. Anything else wraps ErrUnknown.
func Decode(r Record) (Change, error) {
	unknown := func(why string) error {
		return fmt.Errorf("%w: %s (action %q, scope %q, type %q)", ErrUnknown, why, r.Action, r.Scope, r.Type)
	}
	switch {
	case r.Scope == scopeRoot:
		if r.Type != typeRole {
			return nil, unknown("the only root change is a base role's keys")
		}
		if r.Action != actionCreate {
			return nil, unknown("a base role's keys are only replaced (create)")
		}
		var d rootRoleData
		if err := json.Unmarshal(r.Data, &d); err != nil {
			return nil, unknown("its data is not a key list: " + err.Error())
		}
		if !slices.Contains(tuf.BaseRoles, d.Role) || len(d.Keys) == 0 {
			return nil, unknown(fmt.Sprintf("%q with %d key(s) is not a base role's new keys", d.Role, len(d.Keys)))
		}
		return RotateKey{Role: d.Role, Keys: d.Keys}, nil
	case isWildDelegation(r.Scope):
		if r.Type != typeDelegation || r.Action != actionUpdate {
			return nil, unknown(r.Scope + " only takes a delegation key purge (update)")
		}
		var d delegationData
		if err := unmarshalOptional(r.Data, &d); err != nil {
			return nil, unknown("its data is not a delegation change: " + err.Error())
		}
		return PurgeKeys{Under: strings.TrimSuffix(r.Scope, "/*"), KeyIDs: d.RemoveKeys}, nil
	case !tuf.IsTargetsRole(r.Scope):
		return nil, unknown("the scope is not root, targets or a delegation")
	}
	switch r.Type {
	case typeTarget:
		switch r.Action {
		case actionCreate:
			var fm tuf.FileMeta
			if err := json.Unmarshal(r.Data, &fm); err != nil {
				return nil, unknown(fmt.Sprintf("target %q: its data is not file metadata: %v", r.Path, err))
			}
			return AddTarget{Role: r.Scope, Name: r.Path, Meta: fm}, nil
		case actionDelete:
			return RemoveTarget{Role: r.Scope, Name: r.Path}, nil
		}
		return nil, unknown("a target is only added (create) or removed (delete)")
	case typeDelegation:
		if !tuf.IsDelegation(r.Scope) {
			return nil, unknown(r.Scope + " is not a delegation")
		}
		var d delegationData
		if r.Action != actionDelete {
			if err := unmarshalOptional(r.Data, &d); err != nil {
				return nil, unknown("its data is not a delegation change: " + err.Error())
			}
		}
		switch r.Action {
		case actionCreate: // notary applies only the additions of a create
			return AddDelegation{Role: r.Scope, Threshold: d.NewThreshold, Keys: d.AddKeys, Paths: d.AddPaths}, nil
		case actionUpdate:
			return UpdateDelegation{Role: r.Scope, Threshold: d.NewThreshold, AddKeys: d.AddKeys, RemoveKeys: d.RemoveKeys,
				AddPaths: d.AddPaths, RemovePaths: d.RemovePaths, ClearPaths: d.ClearPaths}, nil
		case actionDelete:
			return RemoveDelegation{Role: r.Scope}, nil
		}
		return nil, unknown("a delegation is created, updated or deleted")
	case typeWitness: // notary witnesses whatever the action
		return Witness{Role: r.Scope}, nil
	}
	return nil, unknown("unknown type")
}

// unmarshalOptional decodes data that may be absent (null).
func unmarshalOptional(data []byte, v any) error {
	if len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, v)
}

// MaxFile bounds a changelist file read back.
const MaxFile = 16 << 20

// List is a changelist directory.
type List struct {
	Dir string
	Now func() time.Time
}

// Staged is one changelist file: its record, and the change it holds (nil,
// with Err set, when it holds none notary applies).
type Staged struct {
	File   string // name in the changelist directory
	Record Record
	Change Change
	Err    error
}

// Read returns the staged files in the order they apply. A file that is
// not a change record at all is an error; one whose record is not a change
// notary applies is returned with Err set (so it can be listed and reset),
// and Changes refuses it.
func (l List) Read() ([]Staged, error) {
	entries, err := os.ReadDir(l.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".change") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	out := make([]Staged, 0, len(names))
	for _, n := range names {
		b, err := atomicfile.ReadFile(filepath.Join(l.Dir, n), MaxFile)
		if err != nil {
			return nil, fmt.Errorf("changes: %w", err)
		}
		s := Staged{File: n}
		if err := json.Unmarshal(b, &s.Record); err != nil {
			return nil, fmt.Errorf("changes: %s is not a change file: %w", filepath.Join(l.Dir, n), err)
		}
		s.Change, s.Err = Decode(s.Record)
		out = append(out, s)
	}
	return out, nil
}

// Changes returns the changes of staged files, in order, or an error naming
// the first file that holds no change notary applies.
func (l List) Changes(staged []Staged) ([]Change, error) {
	out := make([]Change, 0, len(staged))
	for _, s := range staged {
		if s.Err != nil || s.Change == nil {
			err := s.Err
			if err == nil {
				err = ErrUnknown
			}
			return nil, fmt.Errorf("changes: the changelist file %s: %w; drop it with reset", filepath.Join(l.Dir, s.File), err)
		}
		out = append(out, s.Change)
	}
	return out, nil
}

// Add stages changes, in order, each durably in its own file.
func (l List) Add(cs ...Change) error {
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return fmt.Errorf("changes: %w", err)
	}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	last := int64(0)
	for _, c := range cs {
		r, err := Encode(c)
		if err != nil {
			return err
		}
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		ts := max(now().UnixNano(), last+1) // files sort in the order staged
		last = ts
		name := fmt.Sprintf("%020d_%s.change", ts, uuid())
		if err := atomicfile.Write(filepath.Join(l.Dir, name), b, 0o600); err != nil {
			return fmt.Errorf("changes: %w", err)
		}
	}
	return nil
}

// Remove deletes the given staged files from the list.
func (l List) Remove(staged []Staged) error {
	for _, s := range staged {
		if s.File == "" {
			continue
		}
		if err := os.Remove(filepath.Join(l.Dir, s.File)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("changes: %w", err)
		}
	}
	return nil
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

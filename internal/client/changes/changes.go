// Package changes is the closed set of changes a client stages before it
// publishes (targets added or removed, delegations changed, base-role keys
// rotated, roles witnessed) and the on-disk changelist that holds them, in
// the file format of the notary client, so a changelist staged by notary
// can be published by signet and the other way round.
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
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
)

// Actions.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"
)

// Scopes and types as notary writes them.
const (
	ScopeRoot    = "root"
	ScopeTargets = "targets"

	TypeRole       = "role"
	TypeTarget     = "target"
	TypeDelegation = "delegation"
	TypeWitness    = "witness"
)

// Change is one staged change, in notary's JSON form.
type Change struct {
	Action string `json:"action"`
	Role   string `json:"role"` // scope: "targets", a delegation, "targets/*" or "root"
	Type   string `json:"type"`
	Path   string `json:"path"`
	Data   []byte `json:"data"`

	// File is the file the change was read from (not serialised).
	File string `json:"-"`
}

// Delegation is the data of a delegation change.
type Delegation struct {
	NewName       string            `json:"new_name,omitempty"`
	NewThreshold  int               `json:"threshold,omitempty"`
	AddKeys       []*keys.PublicKey `json:"add_keys,omitempty"`
	RemoveKeys    []string          `json:"remove_keys,omitempty"` // canonical key IDs
	AddPaths      []string          `json:"add_paths,omitempty"`
	RemovePaths   []string          `json:"remove_paths,omitempty"`
	ClearAllPaths bool              `json:"clear_paths,omitempty"`
}

// RootRole is the data of a base-role key change (scope root, type role).
type RootRole struct {
	Keys []*keys.PublicKey `json:"keys"`
	Role string            `json:"role"`
}

// AddTarget stages a target in role.
func AddTarget(role, name string, meta tuf.FileMeta) (Change, error) {
	b, err := json.Marshal(meta)
	if err != nil {
		return Change{}, err
	}
	return Change{Action: ActionCreate, Role: role, Type: TypeTarget, Path: name, Data: b}, nil
}

// RemoveTarget stages the removal of a target from role.
func RemoveTarget(role, name string) Change {
	return Change{Action: ActionDelete, Role: role, Type: TypeTarget, Path: name}
}

// ChangeDelegation stages a delegation change (create, update or delete).
func ChangeDelegation(action, role string, d Delegation) (Change, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return Change{}, err
	}
	return Change{Action: action, Role: role, Type: TypeDelegation, Data: b}, nil
}

// RotateBaseRole stages new keys for a base role (snapshot, targets,
// timestamp or root) in the root.
func RotateBaseRole(role string, ks ...*keys.PublicKey) (Change, error) {
	b, err := json.Marshal(RootRole{Keys: ks, Role: role})
	if err != nil {
		return Change{}, err
	}
	return Change{Action: ActionCreate, Role: ScopeRoot, Type: TypeRole, Path: role, Data: b}, nil
}

// Witness stages a re-signing of role without other changes.
func Witness(role string) Change {
	return Change{Action: ActionUpdate, Role: role, Type: TypeWitness}
}

// TargetMeta decodes the data of a target change.
func (c Change) TargetMeta() (tuf.FileMeta, error) {
	var fm tuf.FileMeta
	if err := json.Unmarshal(c.Data, &fm); err != nil {
		return fm, fmt.Errorf("changes: target %q: %w", c.Path, err)
	}
	return fm, nil
}

// Delegation decodes the data of a delegation change.
func (c Change) Delegation() (Delegation, error) {
	var d Delegation
	if len(c.Data) == 0 {
		return d, nil
	}
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return d, fmt.Errorf("changes: delegation %s: %w", c.Role, err)
	}
	return d, nil
}

// RootRole decodes the data of a base-role key change.
func (c Change) RootRole() (RootRole, error) {
	var r RootRole
	if err := json.Unmarshal(c.Data, &r); err != nil {
		return r, fmt.Errorf("changes: root role change: %w", err)
	}
	return r, nil
}

// List is a changelist directory.
type List struct {
	Dir string
	Now func() time.Time
}

// Read returns the staged changes in the order they apply.
func (l List) Read() ([]Change, error) {
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
	out := make([]Change, 0, len(names))
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(l.Dir, n))
		if err != nil {
			return nil, fmt.Errorf("changes: %w", err)
		}
		var c Change
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("changes: %s is not a change file: %w", n, err)
		}
		c.File = n
		out = append(out, c)
	}
	return out, nil
}

// Add stages a change, durably.
func (l List) Add(c Change) error {
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return fmt.Errorf("changes: %w", err)
	}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("%020d_%s.change", now().UnixNano(), uuid())
	tmp := filepath.Join(l.Dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("changes: %w", err)
	}
	return os.Rename(tmp, filepath.Join(l.Dir, name))
}

// Remove deletes the given changes (by their File) from the list.
func (l List) Remove(cs []Change) error {
	for _, c := range cs {
		if c.File == "" {
			continue
		}
		if err := os.Remove(filepath.Join(l.Dir, c.File)); err != nil && !errors.Is(err, os.ErrNotExist) {
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

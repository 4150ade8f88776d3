// Package notarytest runs Notary 0.7's own library as the oracle of Signet's
// differential tests: the repository builder, trust pinning and signature
// checks notary-server 0.7 validates uploads with, and the notary client
// library reading a repository from a trust server. It is imported only
// from _test.go files; internal/lint keeps it (and the notary library) out
// of every binary.
//
// The library reads the clock itself (time.Now) for expiry and certificate
// checks, so metadata given to it must be valid now.
package notarytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
	"github.com/theupdateframework/notary/trustpinning"
	"github.com/theupdateframework/notary/tuf"
	"github.com/theupdateframework/notary/tuf/data"
)

var quiet sync.Once

// silence turns off the library's global logger (it logs every refusal).
func silence() {
	quiet.Do(func() {
		logrus.SetOutput(io.Discard)
		logrus.SetLevel(logrus.PanicLevel)
	})
}

// deliberate are the reasons Signet refuses metadata that notary 0.7
// accepts, as they appear in Signet's error messages: rules notary lacks,
// each documented in docs/notary-compat.md. A differential test accepts a
// disagreement only when Signet refused for one of them.
var deliberate = []struct{ match, why string }{
	{"is not valid for key content", "every key map entry must be listed under its content ID (issue 10, finding 1)"},
	{"is null", "a key map entry must hold a key"},
	{"may only sign targets under", "the server enforces delegation paths on upload"},
	{"keys: ", "a key that does not parse (unknown type, bad bytes) is refused in metadata, not only when used"},
	{"hash is", "target and meta hashes must have the right size"},
	{"no sha256 or sha512 hash", "targets must carry a sha256 or sha512 hash"},
	{"has negative length", "targets must have a non-negative length"},
	{"is not a valid role", "snapshot meta must name valid roles"},
	{"listed twice", "a delegation must be listed once"},
	{"does not match the snapshot: length", "the snapshot must list the right length (notary checks hashes only)"},
	{"more than the limit of", "documented limits on delegations, keys and roles"},
}

// Deliberate reports whether a Signet refusal (its error message, or the
// server's error body) is one of the deliberate differences from notary,
// and why.
func Deliberate(msg string) (why string, ok bool) {
	for _, d := range deliberate {
		if strings.Contains(msg, d.match) {
			return d.why, true
		}
	}
	return "", false
}

// Held names the keys (TUF key IDs) the server holds, to model the
// snapshot and timestamp the server signs after validating an upload.
type Held struct {
	Snapshot, Timestamp map[string]bool
}

// Upload reports whether notary-server 0.7 accepts an upload (role →
// bytes) on top of the repository it stores (role → current bytes): the
// handler's parsing of each part (role name, a decodable envelope), then
// validateUpdate — a builder trusting on first use loads the stored root,
// the uploaded root (version current or current+1; rotation and
// certificate rules), every uploaded targets role shallowest first after
// its stored ancestors, then the uploaded snapshot — and UpdateMany's
// version check. When no snapshot is uploaded the server must hold a key of
// the root's snapshot role (and have targets); the timestamp it signs needs
// a key of the root's timestamp role. (Those two are modelled: the builder
// would sign with the server's keys, which the oracle does not have.) A nil
// error means accepted.
func Upload(gun string, stored, upload map[string][]byte, held Held) (err error) {
	silence()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("notary panics: %v", r)
		}
	}()
	versions := map[data.RoleName]int{}
	for role, b := range upload {
		rn := data.RoleName(role)
		if role == "" || !data.ValidRole(rn) {
			return fmt.Errorf("invalid role %q", role)
		}
		var meta data.SignedMeta
		if err := json.NewDecoder(bytes.NewReader(b)).Decode(&meta); err != nil {
			return fmt.Errorf("malformed JSON (%s): %v", role, err)
		}
		versions[rn] = meta.Signed.Version
	}
	builder := tuf.NewRepoBuilder(data.GUN(gun), nil, trustpinning.TrustPinConfig{})
	loadedRoot := stored[data.CanonicalRootRole.String()]
	if b, ok := stored[data.CanonicalRootRole.String()]; ok {
		if err := builder.Load(data.CanonicalRootRole, b, 1, true); err != nil {
			return fmt.Errorf("stored root: %v", err)
		}
	}
	if b, ok := upload[data.CanonicalRootRole.String()]; ok {
		cur := builder.GetLoadedVersion(data.CanonicalRootRole)
		if v := versions[data.CanonicalRootRole]; v != cur && v != cur+1 {
			return fmt.Errorf("ErrBadRoot: root modifications must increment the version: current %d, new %d", cur, v)
		}
		builder = builder.BootstrapNewBuilder()
		if err := builder.Load(data.CanonicalRootRole, b, cur, false); err != nil {
			return fmt.Errorf("ErrBadRoot: %v", err)
		}
		loadedRoot = b
	} else if !builder.IsLoaded(data.CanonicalRootRole) {
		return fmt.Errorf("ErrValidation: no pre-existing root and no root provided in update")
	}

	var targetRoles []string
	for role := range upload {
		if role == data.CanonicalTargetsRole.String() || data.IsDelegation(data.RoleName(role)) {
			targetRoles = append(targetRoles, role)
		}
	}
	sort.Slice(targetRoles, func(i, j int) bool { // notary's utils.RoleList order
		si, sj := strings.Split(targetRoles[i], "/"), strings.Split(targetRoles[j], "/")
		if len(si) != len(sj) {
			return len(si) < len(sj)
		}
		return targetRoles[i] < targetRoles[j]
	})
	for _, role := range targetRoles {
		rn := data.RoleName(role)
		var parents []data.RoleName
		for anc := rn; anc != data.CanonicalTargetsRole; {
			anc = anc.Parent()
			if !builder.IsLoaded(anc) {
				parents = append(parents, anc)
			}
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if b, ok := stored[parents[i].String()]; ok {
				if err := builder.Load(parents[i], b, 1, true); err != nil {
					return fmt.Errorf("stored %s: %v", parents[i], err)
				}
			}
		}
		if err := builder.Load(rn, upload[role], 1, false); err != nil {
			return fmt.Errorf("ErrBadTargets: %v", err)
		}
	}

	if b, ok := upload[data.CanonicalSnapshotRole.String()]; ok {
		if err := builder.Load(data.CanonicalSnapshotRole, b, 1, false); err != nil {
			return fmt.Errorf("ErrBadSnapshot: %v", err)
		}
	} else {
		root, err := rootOf(loadedRoot)
		if err != nil {
			return err
		}
		if !holds(root, data.CanonicalSnapshotRole, held.Snapshot) {
			return fmt.Errorf("ErrBadHierarchy: no snapshot was included in update and server does not hold current snapshot key for repository")
		}
		if prev, ok := stored[data.CanonicalSnapshotRole.String()]; ok {
			var sn data.SignedSnapshot
			if err := json.Unmarshal(prev, &sn); err != nil {
				return err
			}
			if err := data.IsValidSnapshotStructure(sn.Signed); err != nil {
				return fmt.Errorf("ErrValidation: %v", err)
			}
		} else if !builder.IsLoaded(data.CanonicalTargetsRole) {
			return fmt.Errorf("ErrValidation: targets must be loaded first")
		}
	}
	root, err := rootOf(loadedRoot)
	if err != nil {
		return err
	}
	if !holds(root, data.CanonicalTimestampRole, held.Timestamp) {
		return fmt.Errorf("ErrBadRoot: no  timestamp keys exist on the server")
	}

	// UpdateMany: no stored version of a role may be at or above the new one.
	for role, v := range versions {
		if role == data.CanonicalTimestampRole {
			continue // ignored by validateUpdate
		}
		b, ok := stored[role.String()]
		if !ok {
			continue
		}
		var meta data.SignedMeta
		if err := json.Unmarshal(b, &meta); err != nil {
			return err
		}
		if meta.Signed.Version >= v {
			return fmt.Errorf("VERSION: %s version %d is not above the stored %d", role, v, meta.Signed.Version)
		}
	}
	return nil
}

// LoadTargets reports whether notary 0.7's builder accepts a targets file
// once it trusts root (on first use): the signatures over the canonical form
// it computes, the structure, the version and the expiry.
func LoadTargets(gun string, root, targets []byte) (err error) {
	silence()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("notary panics: %v", r)
		}
	}()
	builder := tuf.NewRepoBuilder(data.GUN(gun), nil, trustpinning.TrustPinConfig{})
	if err := builder.Load(data.CanonicalRootRole, root, 1, false); err != nil {
		return fmt.Errorf("root: %v", err)
	}
	return builder.Load(data.CanonicalTargetsRole, targets, 1, false)
}

// rootOf parses the root the builder loaded (raw: the uploaded root if
// any, else the stored one).
func rootOf(raw []byte) (*data.SignedRoot, error) {
	s := &data.Signed{}
	if err := json.Unmarshal(raw, s); err != nil {
		return nil, err
	}
	return data.RootFromSigned(s)
}

func holds(root *data.SignedRoot, role data.RoleName, held map[string]bool) bool {
	r, err := root.BuildBaseRole(role)
	if err != nil {
		return false
	}
	for id := range r.Keys {
		if held[id] {
			return true
		}
	}
	return false
}

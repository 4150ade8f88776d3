package tuf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf/cjson"
)

// envelope is the outer object of every metadata file.
type envelope struct {
	Signed     json.RawMessage `json:"signed"`
	Signatures []Signature     `json:"signatures"`
}

// Peek decodes just the envelope and the common fields, for routing and
// error reporting before a full parse.
func Peek(raw []byte) (Common, error) {
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return Common{}, fmt.Errorf("%w: %v", ErrInvalidMetadata, err)
	}
	if len(env.Signed) == 0 || bytes.Equal(env.Signed, []byte("null")) {
		return Common{}, fmt.Errorf("%w: no signed object", ErrInvalidMetadata)
	}
	var c Common
	if err := json.Unmarshal(env.Signed, &c); err != nil {
		return Common{}, fmt.Errorf("%w: %v", ErrInvalidMetadata, err)
	}
	return c, nil
}

// canonical returns the bytes Notary verifies signatures over: it decodes
// the signed value into a generic value (numbers as float64) and encodes it
// canonically. A value already in canonical form is its own encoding, which
// cjson.IsCanonical proves in one pass without re-encoding.
func canonical(signed []byte) ([]byte, error) {
	if cjson.IsCanonical(signed) {
		return signed, nil
	}
	return cjson.Canonicalize(signed)
}

func parse[T any](role string, raw []byte, wantType string, out *Meta[T]) error {
	if err := decode(role, raw, out); err != nil {
		return err
	}
	c := out.Common()
	if c.Type != wantType {
		return invalid(role, "_type is %q, want %q", c.Type, wantType)
	}
	if c.Version < 1 {
		return invalid(role, "version %d is below 1", c.Version)
	}
	// A missing expiry is the zero time, long expired: the expiry check
	// refuses it, as notary's does (a reader skips such a delegation).
	if len(out.Signatures) > MaxSignatures {
		return limit(role, "carries %d signatures, more than the limit of %d", len(out.Signatures), MaxSignatures)
	}
	// A signature without a key ID or bytes is not refused here: like any
	// other signature that does not verify, it counts for nothing (as in
	// notary, whose verdict on such a file is the same).
	return nil
}

// decode decodes a file into out: by the fast path (decode.go) when the
// file is in the shape Notary writes, else with encoding/json.
func decode[T any](role string, raw []byte, out *Meta[T]) error {
	out.Role = role
	out.Raw = raw
	if signed, sigs, ok := splitEnvelope(raw); ok {
		if decodeCanonical(signed, &out.Signed) {
			out.SignedRaw = signed
			out.Signatures = sigs
			out.canonical = signed // proven canonical by splitEnvelope
			return nil
		}
		var zero T
		out.Signed = zero
	}
	return decodeSlow(role, raw, out)
}

// decodeSlow decodes a file with encoding/json, as notary does.
func decodeSlow[T any](role string, raw []byte, out *Meta[T]) error {
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return invalid(role, "%v", err)
	}
	if len(env.Signed) == 0 || bytes.Equal(env.Signed, []byte("null")) {
		return invalid(role, "no signed object")
	}
	if err := json.Unmarshal(env.Signed, &out.Signed); err != nil {
		return invalid(role, "%v", err)
	}
	out.Role = role
	out.Raw = raw
	out.SignedRaw = env.Signed
	out.Signatures = env.Signatures
	out.canonical, out.canonErr = canonical(env.Signed)
	return nil
}

// ParseRoot parses root.json and checks its structure: every base role is
// defined with a threshold of at least 1 and keys that the file lists.
func ParseRoot(raw []byte) (*Meta[Root], error) {
	m := new(Meta[Root])
	if err := parse(RoleRoot, raw, TypeRoot, m); err != nil {
		return nil, err
	}
	if err := checkKeyMap(RoleRoot, m.Signed.Keys); err != nil {
		return nil, err
	}
	for _, name := range BaseRoles {
		r := m.Signed.Roles[name]
		if r == nil {
			return nil, invalid(RoleRoot, "role %s is not defined", name)
		}
		if err := checkRoleKeys(RoleRoot, name, r.KeyIDs, r.Threshold, m.Signed.Keys); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// checkKeyMap applies the rules every key map (root keys, delegation keys)
// obeys: at most MaxKeys entries, each a key whose content ID is the ID it
// is listed under — so that a key ID names one key, and one key cannot
// count twice towards a threshold under two IDs.
func checkKeyMap(file string, ks map[string]*keys.PublicKey) error {
	if len(ks) > MaxKeys {
		return limit(file, "lists %d keys, more than the limit of %d", len(ks), MaxKeys)
	}
	for id, k := range ks {
		if k == nil {
			return invalid(file, "key %s is null", id)
		}
		if k.ID() != id {
			return invalid(file, "key ID %s is not valid for key content (the key's ID is %s)", id, k.ID())
		}
	}
	return nil
}

func checkRoleKeys(file, name string, ids []string, threshold int, ks map[string]*keys.PublicKey) error {
	if threshold < 1 {
		return invalid(file, "role %s has threshold %d, must be at least 1", name, threshold)
	}
	if len(ids) > MaxRoleKeys {
		return limit(file, "role %s lists %d keys, more than the limit of %d", name, len(ids), MaxRoleKeys)
	}
	for _, id := range ids {
		if k, ok := ks[id]; !ok || k == nil {
			return invalid(file, "role %s lists key %s, which is not in the file", name, id)
		}
	}
	return nil
}

// ParseTargets parses targets.json or a delegation's file for role and
// checks its structure: delegated roles are valid direct children of role
// with thresholds of at least 1 and listed keys; target hashes are
// well-formed.
func ParseTargets(role string, raw []byte) (*Meta[Targets], error) {
	if !IsTargetsRole(role) {
		return nil, fmt.Errorf("%w: %q is not a targets role", ErrInvalidRole, role)
	}
	m := new(Meta[Targets])
	if err := parse(role, raw, TypeTargets, m); err != nil {
		return nil, err
	}
	if n := len(m.Signed.Delegations.Roles); n > MaxDelegations {
		return nil, limit(role, "delegates to %d roles, more than the limit of %d", n, MaxDelegations)
	}
	if err := checkKeyMap(role, m.Signed.Delegations.Keys); err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(m.Signed.Delegations.Roles))
	for _, d := range m.Signed.Delegations.Roles {
		if d == nil || !IsDelegation(d.Name) || path.Dir(d.Name) != role {
			name := ""
			if d != nil {
				name = d.Name
			}
			return nil, invalid(role, "delegation role %s invalid", name)
		}
		if seen[d.Name] {
			return nil, invalid(role, "delegation role %s listed twice", d.Name)
		}
		seen[d.Name] = true
		if err := checkRoleKeys(role, d.Name, d.KeyIDs, d.Threshold, m.Signed.Delegations.Keys); err != nil {
			return nil, err
		}
		if len(d.Paths) > MaxPaths {
			return nil, limit(role, "delegation role %s lists %d paths, more than the limit of %d", d.Name, len(d.Paths), MaxPaths)
		}
	}
	for name, fm := range m.Signed.Targets {
		if fm.Length < 0 {
			return nil, invalid(role, "target %q has negative length", name)
		}
		if err := CheckHashes(fm.Hashes); err != nil {
			return nil, invalid(role, "target %q: %v", name, err)
		}
	}
	return m, nil
}

// ParseSnapshot parses snapshot.json: it must carry sha256 hashes for root
// and targets, and name only valid roles.
func ParseSnapshot(raw []byte) (*Meta[Snapshot], error) {
	m := new(Meta[Snapshot])
	if err := parse(RoleSnapshot, raw, TypeSnapshot, m); err != nil {
		return nil, err
	}
	for _, name := range []string{RoleRoot, RoleTargets} {
		if err := requireSHA256(RoleSnapshot, name, m.Signed.Meta); err != nil {
			return nil, err
		}
	}
	for name, fm := range m.Signed.Meta {
		if !ValidRole(name) || name == RoleSnapshot || name == RoleTimestamp {
			return nil, invalid(RoleSnapshot, "%s is not a valid role", name)
		}
		if err := CheckHashes(fm.Hashes); err != nil {
			return nil, invalid(RoleSnapshot, "meta of %s: %v", name, err)
		}
	}
	return m, nil
}

// ParseTimestamp parses timestamp.json: it must carry the sha256 of the
// snapshot.
func ParseTimestamp(raw []byte) (*Meta[Timestamp], error) {
	m := new(Meta[Timestamp])
	if err := parse(RoleTimestamp, raw, TypeTimestamp, m); err != nil {
		return nil, err
	}
	if err := requireSHA256(RoleTimestamp, RoleSnapshot, m.Signed.Meta); err != nil {
		return nil, err
	}
	return m, nil
}

func requireSHA256(file, name string, meta map[string]FileMeta) error {
	fm, ok := meta[name]
	if !ok || len(fm.Hashes["sha256"]) == 0 {
		return invalid(file, "missing %s sha256 checksum information", name)
	}
	if err := CheckHashes(fm.Hashes); err != nil {
		return invalid(file, "meta of %s: %v", name, err)
	}
	return nil
}

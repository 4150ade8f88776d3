// Package tuf models The Update Framework metadata in the dialect Notary v1
// speaks: "_type" values Root/Targets/Snapshot/Timestamp, role-keyed meta,
// signatures with a base64 "sig" and a "method", x509 root keys, and prefix
// delegation paths.
//
// Invariants: parsing keeps the exact bytes it was given (Meta.Raw) and the
// bytes of the "signed" value (Meta.SignedRaw); signatures are verified over
// the canonical form of the signed value exactly as Notary computes it
// (package cjson: the value decoded, numbers as float64, re-encoded), never
// over the received bytes as such nor over a re-encoding of the parsed
// structs; every key map lists each key under its own content ID; files
// beyond the documented limits (MaxDelegations, MaxRoleKeys, MaxKeys,
// MaxPaths, MaxSignatures) are refused; the package is pure (no I/O, no
// clock: every time-dependent check takes now).
package tuf

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Base role names.
const (
	RoleRoot      = "root"
	RoleTargets   = "targets"
	RoleSnapshot  = "snapshot"
	RoleTimestamp = "timestamp"
)

// BaseRoles are the four roles every root must define.
var BaseRoles = []string{RoleRoot, RoleTargets, RoleSnapshot, RoleTimestamp}

// "_type" values of the Notary dialect (delegations are "Targets" too).
const (
	TypeRoot      = "Root"
	TypeTargets   = "Targets"
	TypeSnapshot  = "Snapshot"
	TypeTimestamp = "Timestamp"
)

// ErrInvalidMetadata reports metadata whose bytes or structure are wrong.
var ErrInvalidMetadata = errors.New("tuf: invalid metadata")

// ErrLimit reports metadata beyond one of the documented limits below; it
// always comes wrapped with ErrInvalidMetadata.
var ErrLimit = errors.New("tuf: limit exceeded")

// Limits on what one metadata file may define. Notary sets none; without
// them one upload or download could make a verifier parse and index
// unbounded numbers of keys and roles. They are far above what Notary and
// Docker write (one delegation per signer plus targets/releases, one key
// per signer, one more root key per root rotation) and are documented in
// docs/notary-compat.md.
const (
	// MaxDelegations is the most delegated roles one targets role lists.
	MaxDelegations = 1000
	// MaxRoleKeys is the most key IDs one role (base or delegated) lists.
	MaxRoleKeys = 100
	// MaxKeys is the most entries of one key map: root's keys, or a
	// targets role's delegation keys.
	MaxKeys = 1000
	// MaxPaths is the most path prefixes one delegation lists (checking
	// a role's targets against its paths costs targets × paths).
	MaxPaths = 100
	// MaxSignatures is the most signatures one file carries (each may cost
	// a signature verification).
	MaxSignatures = 256
)

// ErrInvalidRole reports a role name that is neither a base role nor a valid
// delegation name.
var ErrInvalidRole = errors.New("tuf: invalid role")

var delegationName = regexp.MustCompile(`^[-a-z0-9_/]+$`)

// IsDelegation reports whether name is a valid delegated role name:
// "targets/" followed by lowercase letters, digits, '-', '_' and '/', clean
// (no empty or dot segments, no trailing slash), shorter than 256 bytes.
func IsDelegation(name string) bool {
	return strings.HasPrefix(name, RoleTargets+"/") && len(name) < 256 &&
		delegationName.MatchString(name) && path.Clean(name) == name
}

// ValidRole reports whether name is a base role or a valid delegation.
func ValidRole(name string) bool {
	switch name {
	case RoleRoot, RoleTargets, RoleSnapshot, RoleTimestamp:
		return true
	}
	return IsDelegation(name)
}

// IsTargetsRole reports whether name is "targets" or a delegation.
func IsTargetsRole(name string) bool { return name == RoleTargets || IsDelegation(name) }

// Parent returns the role whose keys sign name: root for the base roles,
// the enclosing role for a delegation.
func Parent(name string) string {
	if IsDelegation(name) {
		return path.Dir(name)
	}
	return RoleRoot
}

// Depth counts the segments of a role name ("targets" 1, "targets/a" 2).
func Depth(name string) int { return strings.Count(name, "/") + 1 }

// PathAllowed reports whether a target name falls under one of the path
// prefixes of a delegation ("" allows every name), as Notary readers check.
func PathAllowed(paths []string, target string) bool {
	for _, p := range paths {
		if strings.HasPrefix(target, p) {
			return true
		}
	}
	return false
}

// IntersectPaths narrows child path prefixes to those covered by the parent
// prefixes, as Notary restricts nested delegations.
func IntersectPaths(parent, child []string) []string {
	var out []string
	for _, c := range child {
		if PathAllowed(parent, c) {
			out = append(out, c)
		}
	}
	return out
}

// limitError is invalid metadata that broke a limit: it is both
// ErrInvalidMetadata and ErrLimit.
type limitError struct{ role, msg string }

func (e *limitError) Error() string {
	return ErrInvalidMetadata.Error() + ": " + e.role + ": " + e.msg
}
func (e *limitError) Unwrap() []error { return []error{ErrInvalidMetadata, ErrLimit} }

func limit(role, format string, args ...any) error {
	return &limitError{role: role, msg: fmt.Sprintf(format, args...)}
}

func invalid(role, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidMetadata, role, fmt.Sprintf(format, args...))
}

// Package trust is the one verification state machine of Signet: it loads a
// repository's metadata in dependency order — trusted root (and each root
// rotation), then timestamp, snapshot, targets and delegations — and refuses
// anything the TUF specification and Notary's rules refuse. The server runs
// every upload through it; the client and the admission webhook run every
// download through it.
//
// Each Load method is one step. A step needs the steps it depends on:
// timestamp, snapshot and targets need a trusted root; a delegation needs its
// parent role; when the file that lists another's hashes is already loaded
// (timestamp → snapshot → targets roles) the hashes are checked. Errors are
// *StepError values naming the step (the role) that failed, wrapping the
// sentinel of the rule that failed. Loading costs time linear in the number
// of roles and delegations (indexes by role name); what one file or upload
// may define is bounded (package tuf's limits, MaxUploadRoles,
// MaxRootRotations).
//
// The package is pure: the time is given to New and never read from a clock.
package trust

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
)

// Sentinels for the rules a step can break. Every error wraps ErrVerify.
var (
	ErrVerify     = errors.New("trust: verification failed")
	ErrOrder      = fmt.Errorf("%w: step out of order", ErrVerify)
	ErrRootCert   = fmt.Errorf("%w: root certificate", ErrVerify)
	ErrSignatures = fmt.Errorf("%w: signatures", ErrVerify)
	// ErrThreshold is ErrSignatures because too few valid signatures were
	// found (Notary's ErrRoleThreshold): a client skips a delegation that
	// fails so, as notary does, where other signature errors fail the
	// whole update.
	ErrThreshold      = fmt.Errorf("%w: threshold not met", ErrSignatures)
	ErrExpired        = fmt.Errorf("%w: expired", ErrVerify)
	ErrRollback       = fmt.Errorf("%w: version rollback", ErrVerify)
	ErrHashMismatch   = fmt.Errorf("%w: hash mismatch", ErrVerify)
	ErrUnknownRole    = fmt.Errorf("%w: role not delegated", ErrVerify)
	ErrPathNotAllowed = fmt.Errorf("%w: target outside delegated paths", ErrVerify)
	ErrMalformed      = fmt.Errorf("%w: malformed metadata", ErrVerify)
	// ErrLimit is metadata beyond a documented limit (tuf.MaxDelegations,
	// tuf.MaxRoleKeys, tuf.MaxKeys, MaxUploadRoles, MaxRootRotations).
	ErrLimit = fmt.Errorf("%w: limit exceeded", ErrVerify)
)

// Limits of one verification run, besides the per-file limits of package
// tuf; docs/notary-compat.md lists them all.
const (
	// MaxUploadRoles is the most metadata files one upload may carry.
	MaxUploadRoles = 1000
	// MaxRootRotations is the most root versions a client follows in one
	// update (TUF's maximum number of root rotations; go-tuf and
	// python-tuf default to 256 as well). Notary sets none.
	MaxRootRotations = 256
)

// CheckUploadRoles refuses an upload of more than MaxUploadRoles files.
func CheckUploadRoles(n int) error {
	if n > MaxUploadRoles {
		return &StepError{Role: "upload", Err: &ruleError{rule: ErrLimit, msg: fmt.Sprintf("the upload holds %d metadata files, more than the limit of %d", n, MaxUploadRoles)}}
	}
	return nil
}

// StepError is the error of one step: the role being loaded and the cause.
type StepError struct {
	Role string
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("trust: %s: %v", e.Role, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// ruleError joins the rule sentinel with a message meant for people (and,
// on the server, for the client as the error detail).
type ruleError struct {
	rule error
	msg  string
}

func (e *ruleError) Error() string { return e.msg }
func (e *ruleError) Unwrap() error { return e.rule }

func fail(role string, rule error, format string, args ...any) error {
	return &StepError{Role: role, Err: &ruleError{rule: rule, msg: fmt.Sprintf(format, args...)}}
}

// Options tune the checks of a Repo.
type Options struct {
	// MinVersions are the lowest acceptable versions per role (the versions a
	// client has already trusted); a lower version is a rollback.
	MinVersions map[string]int
	// AllowExpired accepts expired metadata for the listed roles (the server
	// loads stored state this way, as Notary does).
	AllowExpired map[string]bool
	// EnforcePaths refuses a delegation that lists targets outside its
	// delegated paths (the server's rule); otherwise such targets are only
	// hidden from readers.
	EnforcePaths bool
	// RootPin, when not nil, is trust pinning: every root loaded narrows its
	// signing certificates to those the pin accepts (see RootPin and
	// SetRootPin).
	RootPin RootPin
}

// RootPin is trust pinning (notary's trust_pinning): it decides which of a
// root's certificates may sign it. internal/policy implements it.
type RootPin interface {
	// PinRoot gets the root's certificate keys that are valid for gun
	// (root key ID → key; see LoadRoot) and returns those the pinning
	// accepts: only they count towards the root's own threshold. first is
	// true when no root is trusted yet (trust on first use). An error
	// refuses the root; the message names what the pinning wanted.
	PinRoot(gun string, first bool, valid map[string]*keys.PublicKey) (map[string]*keys.PublicKey, error)
}

// Repo is the verification state of one repository (GUN).
type Repo struct {
	gun  string
	now  time.Time
	opts Options

	root      *tuf.Meta[tuf.Root]
	rootKeys  map[string]*keys.PublicKey // valid root certificate keys of root
	timestamp *tuf.Meta[tuf.Timestamp]
	snapshot  *tuf.Meta[tuf.Snapshot]
	targets   map[string]*tuf.Meta[tuf.Targets]
	// delegs indexes the delegations of each loaded targets role by name,
	// so that loading n delegations costs O(n), not O(n²).
	delegs map[string]map[string]*tuf.DelegatedRole
	// paths are the effective path prefixes of each loaded delegation,
	// computed once as it is installed (readers share a Repo).
	paths map[string][]string
	// skipped are delegations a reader refused and left out, and why.
	skipped map[string]error

	allowExpiredTargets bool
}

// New starts the verification of repository gun at time now.
func New(gun string, now time.Time, opts Options) *Repo {
	opts.MinVersions = maps.Clone(opts.MinVersions)
	opts.AllowExpired = maps.Clone(opts.AllowExpired)
	return &Repo{gun: gun, now: now, opts: opts, targets: map[string]*tuf.Meta[tuf.Targets]{}, delegs: map[string]map[string]*tuf.DelegatedRole{}, paths: map[string][]string{}}
}

// GUN returns the repository name.
func (r *Repo) GUN() string { return r.gun }

// Root returns the trusted root, or nil.
func (r *Repo) Root() *tuf.Meta[tuf.Root] { return r.root }

// Timestamp returns the loaded timestamp, or nil.
func (r *Repo) Timestamp() *tuf.Meta[tuf.Timestamp] { return r.timestamp }

// Snapshot returns the loaded snapshot, or nil.
func (r *Repo) Snapshot() *tuf.Meta[tuf.Snapshot] { return r.snapshot }

// Targets returns a loaded targets role, or nil.
func (r *Repo) Targets(role string) *tuf.Meta[tuf.Targets] { return r.targets[role] }

// TargetsRoles returns the names of the loaded targets roles.
func (r *Repo) TargetsRoles() []string {
	out := make([]string, 0, len(r.targets))
	for name := range r.targets {
		out = append(out, name)
	}
	return out
}

func (r *Repo) checkCommon(role string, c tuf.Common) error {
	if min := r.opts.MinVersions[role]; c.Version < min {
		return fail(role, ErrRollback, "%s version %d is lower than the trusted version %d", role, c.Version, min)
	}
	allowed := r.opts.AllowExpired[role] || (r.allowExpiredTargets && tuf.IsTargetsRole(role))
	if !allowed && !r.now.Before(c.Expires) {
		return fail(role, ErrExpired, "%s expired at %s", role, c.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

func malformed(role string, err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, tuf.ErrInvalidMetadata.Error()+": ")
	if errors.Is(err, tuf.ErrLimit) {
		return fail(role, ErrLimit, "%s", msg)
	}
	return fail(role, ErrMalformed, "%s", msg)
}

// setTargets installs a targets role and indexes its delegations.
func (r *Repo) setTargets(role string, m *tuf.Meta[tuf.Targets]) {
	r.targets[role] = m
	idx := make(map[string]*tuf.DelegatedRole, len(m.Signed.Delegations.Roles))
	for _, d := range m.Signed.Delegations.Roles {
		idx[d.Name] = d
	}
	r.delegs[role] = idx
	if tuf.IsDelegation(role) {
		r.paths[role] = r.Paths(role)
	}
}

// clearTargets forgets every targets role.
func (r *Repo) clearTargets() {
	clear(r.targets)
	clear(r.delegs)
	clear(r.paths)
}

// RoleKeys returns the key IDs, threshold and key set that sign role, as the
// loaded metadata defines them. ok is false when the role's parent is not
// loaded or does not delegate to it.
func (r *Repo) RoleKeys(role string) (ids []string, threshold int, ks map[string]*keys.PublicKey, ok bool) {
	if !tuf.IsDelegation(role) {
		if r.root == nil {
			return nil, 0, nil, false
		}
		rk := r.root.Signed.Roles[role]
		if rk == nil {
			return nil, 0, nil, false
		}
		return rk.KeyIDs, rk.Threshold, r.root.Signed.Keys, true
	}
	d := r.Delegation(role)
	if d == nil {
		return nil, 0, nil, false
	}
	return d.KeyIDs, d.Threshold, r.targets[tuf.Parent(role)].Signed.Delegations.Keys, true
}

// Delegation returns the delegation entry of role in its loaded parent.
func (r *Repo) Delegation(role string) *tuf.DelegatedRole {
	return r.delegs[tuf.Parent(role)][role]
}

// Paths returns the effective path prefixes of a targets role: everything
// for "targets", and for a delegation its paths narrowed by every ancestor's.
func (r *Repo) Paths(role string) []string {
	if role == tuf.RoleTargets {
		return []string{""}
	}
	if p, ok := r.paths[role]; ok {
		return p
	}
	d := r.Delegation(role)
	if d == nil {
		return nil
	}
	// The parent is loaded, so its paths are known: one intersection.
	return tuf.IntersectPaths(r.Paths(tuf.Parent(role)), d.Paths)
}

// SetAllowExpired changes whether expired metadata of role is accepted by
// the following steps (a client loads its cached root this way before it
// looks for a newer one).
func (r *Repo) SetAllowExpired(role string, allow bool) {
	if r.opts.AllowExpired == nil {
		r.opts.AllowExpired = map[string]bool{}
	}
	r.opts.AllowExpired[role] = allow
}

// SetRootPin changes the trust pinning the following root loads obey (nil:
// none). A client pins the roots it fetches when it has none trusted, and
// not the root it trusted before (as notary: the trusted root is what pins
// trust then).
func (r *Repo) SetRootPin(p RootPin) { r.opts.RootPin = p }

// RoleTarget returns a target exactly as one loaded targets role lists it
// (no walking into delegations), honouring that role's effective delegated
// paths: a name outside them is not returned.
func (r *Repo) RoleTarget(role, name string) (tuf.FileMeta, bool) {
	m := r.targets[role]
	if m == nil {
		return tuf.FileMeta{}, false
	}
	fm, ok := m.Signed.Targets[name]
	if !ok || !tuf.PathAllowed(r.Paths(role), name) {
		return tuf.FileMeta{}, false
	}
	return fm, true
}

// Skip records that a reader refused the delegation role (err) and left it
// out, as notary's client leaves out a delegation whose signatures do not
// meet its threshold or that expired: none of its targets is trusted and
// none of its delegations followed.
func (r *Repo) Skip(role string, err error) {
	if r.skipped == nil {
		r.skipped = map[string]error{}
	}
	r.skipped[role] = err
}

// Skipped returns the delegations left out (Skip) and why.
func (r *Repo) Skipped() map[string]error { return maps.Clone(r.skipped) }

// AllowExpiredTargets sets whether expired targets and delegations are
// accepted by the following steps (for a publisher renewing them).
func (r *Repo) AllowExpiredTargets(allow bool) { r.allowExpiredTargets = allow }

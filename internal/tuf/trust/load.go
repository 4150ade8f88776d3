package trust

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
)

// LoadRoot is step 1, and every root rotation after it. The first root is
// trusted on first use (or as Options.RootPin allows); a later root must
// carry a higher version and be signed by a threshold of the previous
// root's keys as well as by a threshold of its own.
//
// Root keys must be X.509 certificates (Notary's rule): the leaf is not a
// CA, its common name is the GUN (or a prefix ending in "*", see
// MatchesGUN), and it passes keys.CheckCertificate. Keys whose
// certificates fail are not counted. With a RootPin, only the certificates
// it accepts count towards the root's own threshold, as notary's
// ValidateRoot prunes them.
func (r *Repo) LoadRoot(raw []byte) error { return r.loadRoot(raw, 0) }

// LoadRootVersion is LoadRoot for one step of a root rotation walk: the
// root fetched as version n must be exactly version n, so that a server
// answering every n with the same (or any other) root cannot keep a client
// walking.
func (r *Repo) LoadRootVersion(raw []byte, n int) error { return r.loadRoot(raw, n) }

func (r *Repo) loadRoot(raw []byte, want int) error {
	m, err := tuf.ParseRoot(raw)
	if err != nil {
		return malformed(tuf.RoleRoot, err)
	}
	if want > 0 && m.Signed.Version != want {
		return fail(tuf.RoleRoot, ErrRollback, "root version %d was asked for, the server sent version %d", want, m.Signed.Version)
	}
	role := m.Signed.Roles[tuf.RoleRoot]
	valid, reasons := r.validRootKeys(m, role.KeyIDs, !r.opts.AllowExpired[tuf.RoleRoot])
	if len(valid) == 0 {
		return fail(tuf.RoleRoot, ErrRootCert, "could not validate the path to a trusted root: unable to retrieve valid leaf certificates%s", reasons)
	}
	if r.root != nil {
		prev := r.root
		if m.Signed.Version <= prev.Signed.Version && !(m.Signed.Version == prev.Signed.Version && string(m.Raw) == string(prev.Raw)) {
			return fail(tuf.RoleRoot, ErrRollback, "root version %d is not newer than the trusted version %d", m.Signed.Version, prev.Signed.Version)
		}
		prevRole := prev.Signed.Roles[tuf.RoleRoot]
		if err := tuf.VerifySignatures(m, prevRole.KeyIDs, prevRole.Threshold, r.rootKeys); err != nil {
			return fail(tuf.RoleRoot, ErrSignatures, "could not rotate trust to a new trusted root: root version %d is not signed by a threshold of the keys of root version %d", m.Signed.Version, prev.Signed.Version)
		}
	}
	signers := valid
	if r.opts.RootPin != nil {
		pinned, err := r.opts.RootPin.PinRoot(r.gun, r.root == nil, valid)
		if err == nil && len(pinned) == 0 {
			err = errors.New("no certificate of the root is pinned")
		}
		if err != nil {
			return fail(tuf.RoleRoot, ErrRootCert, "root certificates do not match the pinned trust: %v", err)
		}
		signers = pinned
	}
	// TUF 5.3.11: when a root rotates the timestamp or snapshot keys, the
	// trusted timestamp and snapshot are forgotten, so that versions pushed
	// ahead with a compromised online key (fast-forward) do not lock the
	// repository once the key is replaced.
	rotatedOnline := r.root != nil && (!sameKeys(r.root.Signed.Roles[tuf.RoleTimestamp], m.Signed.Roles[tuf.RoleTimestamp]) ||
		!sameKeys(r.root.Signed.Roles[tuf.RoleSnapshot], m.Signed.Roles[tuf.RoleSnapshot]))
	if err := tuf.VerifySignatures(m, role.KeyIDs, role.Threshold, signers); err != nil {
		return fail(tuf.RoleRoot, ErrSignatures, "could not validate the path to a trusted root: %v", err)
	}
	if err := r.checkCommon(tuf.RoleRoot, m.Signed.Common); err != nil {
		return err
	}
	if rotatedOnline {
		delete(r.opts.MinVersions, tuf.RoleTimestamp)
		delete(r.opts.MinVersions, tuf.RoleSnapshot)
	}
	r.root, r.rootKeys = m, valid
	// A new root invalidates everything signed under the old one.
	r.timestamp, r.snapshot = nil, nil
	r.clearTargets()
	return nil
}

func (r *Repo) validRootKeys(m *tuf.Meta[tuf.Root], ids []string, checkExpiry bool) (map[string]*keys.PublicKey, string) {
	valid := map[string]*keys.PublicKey{}
	var why []string
	for _, id := range ids {
		k := m.Signed.Keys[id]
		certs := k.Certificates()
		if len(certs) == 0 {
			why = append(why, fmt.Sprintf("key %s is a %s key, not a certificate", short(id), k.Type()))
			continue
		}
		leaf := certs[0]
		switch {
		case leaf.IsCA:
			why = append(why, fmt.Sprintf("certificate of key %s is a CA", short(id)))
			continue
		case !MatchesGUN(leaf.Subject.CommonName, r.gun):
			why = append(why, fmt.Sprintf("certificate of key %s is for %q, not %q", short(id), leaf.Subject.CommonName, r.gun))
			continue
		}
		if checkExpiry {
			if err := keys.CheckCertificate(leaf, r.now); err != nil {
				why = append(why, strings.TrimPrefix(err.Error(), "keys: "))
				continue
			}
		}
		valid[id] = k
	}
	if len(why) == 0 {
		return valid, ""
	}
	sort.Strings(why)
	return valid, " (" + strings.Join(why, "; ") + ")"
}

// sameKeys reports whether two role definitions list the same keys.
func sameKeys(a, b *tuf.RoleKeys) bool {
	if a == nil || b == nil {
		return a == b
	}
	if len(a.KeyIDs) != len(b.KeyIDs) {
		return false
	}
	for _, id := range a.KeyIDs {
		if !slices.Contains(b.KeyIDs, id) {
			return false
		}
	}
	return true
}

// MatchesGUN reports whether pattern names the repository gun: it is gun
// itself, or a prefix of it followed by one "*" ("example.com/team/*").
// Root certificates' common names are matched so, as are the GUN keys of
// notary's trust_pinning.certs.
func MatchesGUN(pattern, gun string) bool {
	if pattern == gun {
		return true
	}
	prefix, wild := strings.CutSuffix(pattern, "*")
	return wild && strings.HasPrefix(gun, prefix)
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (r *Repo) needRoot(role string) error {
	if r.root == nil {
		return fail(role, ErrOrder, "no trusted root is loaded")
	}
	return nil
}

// LoadTimestamp is step 2: signed by the root's timestamp keys, not
// expired, not rolled back; if a snapshot is already loaded it must match.
func (r *Repo) LoadTimestamp(raw []byte) error {
	const role = tuf.RoleTimestamp
	if err := r.needRoot(role); err != nil {
		return err
	}
	m, err := tuf.ParseTimestamp(raw)
	if err != nil {
		return malformed(role, err)
	}
	if err := verifyBase(r, role, m); err != nil {
		return err
	}
	if err := r.checkCommon(role, m.Signed.Common); err != nil {
		return err
	}
	if r.snapshot != nil {
		if err := m.Signed.Meta[tuf.RoleSnapshot].Matches(r.snapshot.Raw); err != nil {
			return fail(role, ErrHashMismatch, "snapshot does not match the timestamp: %v", err)
		}
	}
	r.timestamp = m
	return nil
}

// LoadSnapshot is step 3: signed by the root's snapshot keys, not expired,
// not rolled back, matching the timestamp if one is loaded, and listing the
// exact hashes of every targets role already loaded.
func (r *Repo) LoadSnapshot(raw []byte) error {
	const role = tuf.RoleSnapshot
	if err := r.needRoot(role); err != nil {
		return err
	}
	if r.timestamp != nil {
		if err := r.timestamp.Signed.Meta[role].Matches(raw); err != nil {
			return fail(role, ErrHashMismatch, "snapshot does not match the timestamp: %v", err)
		}
	}
	m, err := tuf.ParseSnapshot(raw)
	if err != nil {
		return malformed(role, err)
	}
	if err := verifyBase(r, role, m); err != nil {
		return err
	}
	if err := r.checkCommon(role, m.Signed.Common); err != nil {
		return err
	}
	if err := m.Signed.Meta[tuf.RoleRoot].Matches(r.root.Raw); err != nil {
		return fail(role, ErrHashMismatch, "snapshot does not list the trusted root: %v", err)
	}
	for name, t := range r.targets {
		fm, ok := m.Signed.Meta[name]
		if !ok {
			return fail(role, ErrHashMismatch, "snapshot does not list %s", name)
		}
		if err := fm.Matches(t.Raw); err != nil {
			return fail(role, ErrHashMismatch, "%s does not match the snapshot: %v", name, err)
		}
	}
	r.snapshot = m
	return nil
}

// LoadTargets is step 4 for "targets" and each delegation: signed by a
// threshold of the keys its parent (root, or the delegating role) names,
// not expired, not rolled back, and matching the snapshot if one is loaded.
// With Options.EnforcePaths a delegation listing a target outside its
// delegated paths is refused.
func (r *Repo) LoadTargets(role string, raw []byte) error {
	if !tuf.IsTargetsRole(role) {
		return fail(role, ErrUnknownRole, "%q is not a targets role", role)
	}
	if err := r.needRoot(role); err != nil {
		return err
	}
	if tuf.IsDelegation(role) && r.targets[tuf.Parent(role)] == nil {
		return fail(role, ErrOrder, "parent role %s is not loaded", tuf.Parent(role))
	}
	ids, threshold, ks, ok := r.RoleKeys(role)
	if !ok {
		return fail(role, ErrUnknownRole, "%s is not delegated by %s", role, tuf.Parent(role))
	}
	if r.snapshot != nil {
		fm, listed := r.snapshot.Signed.Meta[role]
		if !listed {
			return fail(role, ErrHashMismatch, "%s is not listed in the snapshot", role)
		}
		if err := fm.Matches(raw); err != nil {
			return fail(role, ErrHashMismatch, "%s does not match the snapshot: %v", role, err)
		}
	}
	m, err := tuf.ParseTargets(role, raw)
	if err != nil {
		return malformed(role, err)
	}
	// A delegation is checked for rollback before its signatures, as
	// notary's builder does (so a rolled-back delegation fails the update
	// rather than being skipped as one whose threshold is not met).
	if min := r.opts.MinVersions[role]; tuf.IsDelegation(role) && m.Signed.Version < min {
		return fail(role, ErrRollback, "%s version %d is lower than the trusted version %d", role, m.Signed.Version, min)
	}
	if err := tuf.VerifySignatures(m, ids, threshold, ks); err != nil {
		return signatureError(role, err)
	}
	if err := r.checkCommon(role, m.Signed.Common); err != nil {
		return err
	}
	if r.opts.EnforcePaths && tuf.IsDelegation(role) {
		paths := r.Paths(role)
		var outside []string
		for name := range m.Signed.Targets {
			if !tuf.PathAllowed(paths, name) {
				outside = append(outside, name)
			}
		}
		if len(outside) > 0 {
			sort.Strings(outside)
			if len(outside) > 5 {
				outside = append(outside[:5], "…")
			}
			return fail(role, ErrPathNotAllowed, "%s may only sign targets under %q, but lists %s", role, paths, strings.Join(outside, ", "))
		}
	}
	// Replacing a role invalidates what was loaded beneath it.
	if r.targets[role] != nil {
		r.forgetBelow(role)
	}
	r.setTargets(role, m)
	return nil
}

// forgetBelow forgets every targets role loaded beneath role.
func (r *Repo) forgetBelow(role string) {
	prefix := role + "/"
	for name := range r.targets {
		if strings.HasPrefix(name, prefix) {
			delete(r.targets, name)
			delete(r.delegs, name)
			delete(r.paths, name)
		}
	}
}

// verifyBase checks a timestamp or snapshot against the root's keys for it.
func verifyBase[T any](r *Repo, role string, m *tuf.Meta[T]) error {
	rk := r.root.Signed.Roles[role]
	if err := tuf.VerifySignatures(m, rk.KeyIDs, rk.Threshold, r.root.Signed.Keys); err != nil {
		return signatureError(role, err)
	}
	return nil
}

// signatureError classifies an error of tuf.VerifySignatures: too few valid
// signatures (ErrThreshold), a signed value without the canonical form
// notary verifies over (ErrMalformed), or a signature naming a key under a
// foreign ID (ErrSignatures).
func signatureError(role string, err error) error {
	switch {
	case errors.Is(err, tuf.ErrThreshold):
		return fail(role, ErrThreshold, "%v", err)
	case errors.Is(err, tuf.ErrInvalidMetadata):
		return malformed(role, err)
	default:
		return fail(role, ErrSignatures, "%v", err)
	}
}

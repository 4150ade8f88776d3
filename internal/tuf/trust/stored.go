package trust

import (
	"github.com/signet-trust/signet/internal/tuf"
)

// The Trust methods install metadata that the caller verified before — the
// server's own stored state, each file of which passed this state machine
// when it was uploaded — so that new uploads can be checked against it. They
// parse and check structure and hierarchy, but neither signatures nor
// expiry: stored state may have expired and must still anchor a rotation.

// TrustRoot installs a previously verified root as the trusted root.
func (r *Repo) TrustRoot(raw []byte) error {
	m, err := tuf.ParseRoot(raw)
	if err != nil {
		return malformed(tuf.RoleRoot, err)
	}
	r.TrustParsedRoot(m)
	return nil
}

// TrustParsedRoot is TrustRoot of a root already parsed by tuf.ParseRoot,
// which a caller may keep and hand to many Repos: m is only read.
func (r *Repo) TrustParsedRoot(m *tuf.Meta[tuf.Root]) {
	valid, _ := r.validRootKeys(m, m.Signed.Roles[tuf.RoleRoot].KeyIDs, false)
	r.root, r.rootKeys = m, valid
	r.timestamp, r.snapshot = nil, nil
	r.clearTargets()
}

// TrustTargets installs a previously verified targets role; its parent must
// be loaded (for a delegation) and must still delegate to it.
func (r *Repo) TrustTargets(role string, raw []byte) error {
	if err := r.needRoot(role); err != nil {
		return err
	}
	if tuf.IsDelegation(role) {
		if r.targets[tuf.Parent(role)] == nil {
			return fail(role, ErrOrder, "parent role %s is not loaded", tuf.Parent(role))
		}
		if r.Delegation(role) == nil {
			return fail(role, ErrUnknownRole, "%s is not delegated by %s", role, tuf.Parent(role))
		}
	}
	m, err := tuf.ParseTargets(role, raw)
	if err != nil {
		return malformed(role, err)
	}
	if r.targets[role] != nil {
		r.forgetBelow(role)
	}
	r.setTargets(role, m)
	return nil
}

// TrustSnapshot installs a previously verified snapshot.
func (r *Repo) TrustSnapshot(raw []byte) error {
	m, err := tuf.ParseSnapshot(raw)
	if err != nil {
		return malformed(tuf.RoleSnapshot, err)
	}
	r.snapshot = m
	return nil
}

// TrustTimestamp installs a previously verified timestamp.
func (r *Repo) TrustTimestamp(raw []byte) error {
	m, err := tuf.ParseTimestamp(raw)
	if err != nil {
		return malformed(tuf.RoleTimestamp, err)
	}
	r.timestamp = m
	return nil
}

// Message returns the part of a step error meant for people: the rule's
// message without package prefixes.
func Message(err error) string {
	if se, ok := err.(*StepError); ok {
		return se.Err.Error()
	}
	return err.Error()
}

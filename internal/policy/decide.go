package policy

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// Kinds of failed decisions.
var (
	// ErrNotSigned: the tag or digest is not signed as the policy requires
	// (signet verify exits 3).
	ErrNotSigned = errors.New("policy: not signed as required")
	// ErrNoTrustData: the repository, or every role the policy reads, has
	// nothing for the tag (signet verify exits 4).
	ErrNoTrustData = errors.New("policy: no trust data")
)

// Error is a failed decision: its Kind (ErrNotSigned or ErrNoTrustData)
// and a sentence naming what was missing.
type Error struct {
	Kind   error
	GUN    string
	Tag    string // the tag asked for, if any
	Digest string // the digest asked for, if any
	msg    string
}

func (e *Error) Error() string { return e.msg }
func (e *Error) Unwrap() error { return e.Kind }

// NoRepository is the decision for a repository the trust server does not
// have (client.ErrNoTrustData).
func NoRepository(gun string) error {
	return &Error{Kind: ErrNoTrustData, GUN: gun, msg: "no trust data for " + gun}
}

// View is a verified repository indexed for decisions: built once from
// what the client Reader verified, then read by any number of decisions
// (a webhook asks about many images per request). It is immutable and safe
// for concurrent use.
type View struct {
	gun string
	// roles: targets role → tag → target, only the names inside the
	// role's effective delegated paths (trust.Repo.RoleTarget).
	roles map[string]map[string]tuf.FileMeta
	// listed: every name some loaded role lists, inside its paths or not.
	listed map[string]bool
	// byDigest: digest → the names some role lists with it (inside its
	// paths), sorted.
	byDigest map[string][]string
	// names: every listed name, sorted.
	names []string
}

// NewView indexes the verified repository v.
func NewView(v *trust.Repo) *View {
	w := &View{gun: v.GUN(), roles: map[string]map[string]tuf.FileMeta{}, listed: map[string]bool{}, byDigest: map[string][]string{}}
	digestNames := map[string]map[string]bool{}
	for _, role := range v.TargetsRoles() {
		m := v.Targets(role)
		in := map[string]tuf.FileMeta{}
		for name := range m.Signed.Targets {
			w.listed[name] = true
			fm, ok := v.RoleTarget(role, name)
			if !ok {
				continue
			}
			in[name] = fm
			d := digestOf(fm)
			if digestNames[d] == nil {
				digestNames[d] = map[string]bool{}
			}
			digestNames[d][name] = true
		}
		w.roles[role] = in
	}
	for d, names := range digestNames {
		w.byDigest[d] = sortedKeys(names)
	}
	w.names = sortedKeys(w.listed)
	return w
}

// GUN returns the repository's name.
func (w *View) GUN() string { return w.gun }

// target returns the tag as role lists it, inside the role's paths.
func (w *View) target(role, tag string) (tuf.FileMeta, bool) {
	fm, ok := w.roles[role][tag]
	return fm, ok
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// digestOf is a target's digest as docker pins it: its sha256.
func digestOf(fm tuf.FileMeta) string { return "sha256:" + hex.EncodeToString(fm.Hashes["sha256"]) }

// Query asks about a tag, a digest, or both (IMAGE:TAG@DIGEST). Neither
// means DefaultTag.
type Query struct {
	Tag    string
	Digest string // "sha256:<hex>"
}

// Decision is what a verified repository says under a policy.
type Decision struct {
	GUN string
	// Tag is the tag a tag query resolved; Tags are the tags a digest query
	// found with the digest, sorted.
	Tag  string
	Tags []string
	// Digest and Size are what the tag resolves to (for several tags, the
	// last in order).
	Digest string
	Size   int64
	// Signers are the roles that sign it, sorted: the required signers'
	// roles that agree, or targets/releases or targets.
	Signers []string
	// Threshold is the number of required signers that had to agree (0
	// without required signers).
	Threshold int
	// Diverted lists the tags that targets/releases points elsewhere than
	// the required signers do (the hole of Docker Content Trust), with the
	// digest it gives; each is also a warning.
	Diverted []Diversion
	// Warnings are sentences for people, in tag order.
	Warnings []string
}

// Diversion is a tag that targets/releases resolves to another digest than
// the required signers sign.
type Diversion struct {
	Tag            string
	ReleasesDigest string
	SignersDigest  string
}

// resolution is one tag under the policy.
type resolution struct {
	fm      tuf.FileMeta
	signers []string
	divert  *Diversion
}

// Decide applies the policy to a query over a verified view. A tag query
// resolves that tag; a digest query succeeds when some tag, resolved by the
// same rules, has the digest (with a tag too, only that tag counts). The
// error is an *Error wrapping ErrNotSigned or ErrNoTrustData, or ErrInvalid
// for a policy that does not validate.
func (p Policy) Decide(w *View, q Query) (Decision, error) {
	if err := p.Validate(); err != nil {
		return Decision{}, err
	}
	if q.Tag == "" && q.Digest == "" {
		q.Tag = DefaultTag
	}
	d := Decision{GUN: w.gun, Signers: []string{}}
	if len(p.Signers) > 0 {
		d.Threshold = p.threshold()
	}
	if q.Digest == "" {
		r, err := p.resolve(w, q.Tag)
		if err != nil {
			return Decision{}, err
		}
		d.add(q.Tag, r)
		d.Tag = q.Tag
		return d, nil
	}
	candidates := w.byDigest[q.Digest]
	for _, tag := range candidates {
		if q.Tag != "" && tag != q.Tag {
			continue
		}
		r, err := p.resolve(w, tag)
		if err != nil || digestOf(r.fm) != q.Digest {
			continue
		}
		d.add(tag, r)
		d.Tags = append(d.Tags, tag)
	}
	if len(d.Tags) == 0 {
		return Decision{}, &Error{Kind: ErrNotSigned, GUN: w.gun, Tag: q.Tag, Digest: q.Digest,
			msg: fmt.Sprintf("no tag of %s signed %s has the digest %s", w.gun, p.how(), q.Digest)}
	}
	return d, nil
}

// add records a resolved tag.
func (d *Decision) add(tag string, r resolution) {
	d.Digest, d.Size = digestOf(r.fm), r.fm.Length
	for _, s := range r.signers {
		if !contains(d.Signers, s) {
			d.Signers = append(d.Signers, s)
		}
	}
	sort.Strings(d.Signers)
	if r.divert != nil {
		d.Diverted = append(d.Diverted, *r.divert)
		d.Warnings = append(d.Warnings, fmt.Sprintf("%s points %s:%s to %s, but the required signers sign %s; the signers' digest is used",
			ReleasesRole, d.GUN, tag, r.divert.ReleasesDigest, r.divert.SignersDigest))
	}
}

// how names the roles a digest must be signed by, for messages.
func (p Policy) how() string {
	switch {
	case len(p.Signers) > 0:
		return fmt.Sprintf("by %d of %s", p.threshold(), strings.Join(p.roles(), ", "))
	case p.Releases == ReleasesIgnored:
		return "by " + tuf.RoleTargets
	}
	return "by " + ReleasesRole + " or " + tuf.RoleTargets
}

// resolve resolves one tag. Without required signers: targets/releases,
// then targets (docker), or targets alone. With them: each signer's role
// on its own, and the one digest at least the threshold of them sign;
// targets/releases is then only compared.
func (p Policy) resolve(w *View, tag string) (resolution, error) {
	if len(p.Signers) == 0 {
		roles := []string{ReleasesRole, tuf.RoleTargets}
		what := "neither " + ReleasesRole + " nor " + tuf.RoleTargets + " signs it"
		if p.Releases == ReleasesIgnored {
			roles, what = []string{tuf.RoleTargets}, tuf.RoleTargets+" does not sign it"
		}
		for _, role := range roles {
			if fm, ok := w.target(role, tag); ok {
				return resolution{fm: fm, signers: []string{role}}, nil
			}
		}
		return resolution{}, &Error{Kind: ErrNoTrustData, GUN: w.gun, Tag: tag, msg: fmt.Sprintf("no trust data for %s:%s (%s)", w.gun, tag, what)}
	}
	threshold := p.threshold()
	byDigest := map[string][]string{}
	metas := map[string]tuf.FileMeta{}
	var missing []string
	for _, role := range p.roles() {
		fm, ok := w.target(role, tag)
		if !ok {
			missing = append(missing, role)
			continue
		}
		dg := digestOf(fm)
		if _, seen := metas[dg]; !seen {
			metas[dg] = fm
		}
		byDigest[dg] = append(byDigest[dg], role)
	}
	var winners []string
	for dg, roles := range byDigest {
		if len(roles) >= threshold {
			winners = append(winners, dg)
		}
	}
	if len(winners) != 1 {
		if len(byDigest) == 0 && !w.listed[tag] {
			return resolution{}, &Error{Kind: ErrNoTrustData, GUN: w.gun, Tag: tag, msg: fmt.Sprintf("no trust data for %s:%s", w.gun, tag)}
		}
		var parts []string
		for dg, roles := range byDigest {
			rs := append([]string(nil), roles...)
			sort.Strings(rs)
			parts = append(parts, fmt.Sprintf("%s signs %s", strings.Join(rs, ", "), dg))
		}
		sort.Strings(parts)
		if len(missing) > 0 {
			parts = append(parts, strings.Join(missing, ", ")+" do(es) not sign it")
		}
		what := "no digest is"
		if len(winners) > 1 {
			what = "more than one digest is"
		}
		return resolution{}, &Error{Kind: ErrNotSigned, GUN: w.gun, Tag: tag, msg: fmt.Sprintf("%s:%s is not signed as required: %s signed by %d of %s (%s)",
			w.gun, tag, what, threshold, strings.Join(p.roles(), ", "), strings.Join(parts, "; "))}
	}
	win := winners[0]
	signers := append([]string(nil), byDigest[win]...)
	sort.Strings(signers)
	r := resolution{fm: metas[win], signers: signers}
	if p.Releases == ReleasesIgnored {
		return r, nil
	}
	if rt, ok := w.target(ReleasesRole, tag); ok && digestOf(rt) != win {
		r.divert = &Diversion{Tag: tag, ReleasesDigest: digestOf(rt), SignersDigest: win}
		if p.Releases == ReleasesMustAgree {
			return resolution{}, &Error{Kind: ErrNotSigned, GUN: w.gun, Tag: tag, msg: fmt.Sprintf("%s:%s is not signed as required: %s points it to %s, but %s sign %s",
				w.gun, tag, ReleasesRole, digestOf(rt), strings.Join(signers, ", "), win)}
		}
	}
	return r, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

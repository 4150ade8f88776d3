// Package policy is Signet's verification policy: which roles of a
// verified Notary repository may say what a tag or digest is, how many
// named signers must agree, what targets/releases counts for, and how the
// first root of a repository is trusted (notary's trust_pinning). `signet
// verify`, the signing service and the admission webhook decide through
// it, so they never disagree about what is signed.
//
// Invariants: the package is pure — no I/O, no clock, no logging; time is
// an argument and files are read by the caller. It only reads metadata
// that internal/tuf/trust verified (a *trust.Repo), and builds on the state
// machine's rules (trust.MatchesGUN for GUN patterns, trust.Repo.RoleTarget
// for delegated paths) instead of copies of them. It is never more lenient
// than notary and docker: without required signers a tag resolves exactly
// as docker resolves it, and trust pinning keeps notary 0.7's semantics.
//
// Errors: a decision that fails wraps ErrNotSigned (signet verify exits 3)
// or ErrNoTrustData (exit 4) in an *Error whose message names what was
// missing; a policy that cannot be built wraps ErrInvalid.
package policy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/signet-trust/signet/internal/tuf"
)

// ReleasesRole is Docker's shared role: docker trust puts every signer's
// key in it, so any signer can re-point any tag there.
const ReleasesRole = "targets/releases"

// DefaultTag is the tag a query without tag or digest asks for, as docker.
const DefaultTag = "latest"

// SignerNamePattern is docker's rule for signer (and key) names.
var SignerNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_\-]*$`)

// Signer is a signer's name; the delegation targets/<name> is the role
// only that signer's keys sign. "releases" is never a signer.
type Signer string

// ParseSigner reads a signer name, with or without its "targets/" prefix
// and surrounding spaces.
func ParseSigner(s string) (Signer, error) {
	name := strings.TrimPrefix(strings.TrimSpace(s), "targets/")
	if name == "releases" || !SignerNamePattern.MatchString(name) {
		return "", &SignerError{Name: name}
	}
	return Signer(name), nil
}

// Role returns the signer's own role, targets/<name>.
func (s Signer) Role() string { return tuf.RoleTargets + "/" + string(s) }

// Releases says what targets/releases counts for.
type Releases int

const (
	// ReleasesDocker is docker's rule and the default: without required
	// signers a tag resolves from targets/releases, then targets; with
	// them targets/releases is only compared with the signers' digest, and
	// a difference is a warning.
	ReleasesDocker Releases = iota
	// ReleasesMustAgree is ReleasesDocker, except that with required
	// signers a targets/releases entry pointing the tag elsewhere fails the
	// decision (ErrNotSigned) instead of warning.
	ReleasesMustAgree
	// ReleasesIgnored never reads targets/releases: without required
	// signers only targets resolves a tag.
	ReleasesIgnored
)

func (r Releases) valid() bool { return r >= ReleasesDocker && r <= ReleasesIgnored }

// Policy is what a tag must satisfy. The zero Policy is docker's
// resolution.
type Policy struct {
	// Signers are the required signers; none means docker's resolution.
	Signers []Signer
	// Threshold is how many of Signers must sign the same digest; 0 means
	// all of them.
	Threshold int
	// Releases is what targets/releases counts for.
	Releases Releases
}

// Errors of building a policy.
var ErrInvalid = errors.New("policy: invalid policy")

// SignerError is a name that is not a signer name.
type SignerError struct{ Name string }

func (e *SignerError) Error() string {
	return fmt.Sprintf("%q is not a signer name (targets/releases is never a required signer)", e.Name)
}
func (e *SignerError) Unwrap() error { return ErrInvalid }

// ThresholdError is a threshold the signers cannot meet; Signers is the
// number of required signers (0: a threshold without signers).
type ThresholdError struct{ Threshold, Signers int }

func (e *ThresholdError) Error() string {
	if e.Signers == 0 {
		return "a threshold needs required signers"
	}
	return fmt.Sprintf("threshold %d must be between 1 and the %d required signer(s)", e.Threshold, e.Signers)
}
func (e *ThresholdError) Unwrap() error { return ErrInvalid }

// New builds a policy from signer names as a person writes them (each
// trimmed, "targets/" optional; empty names and repeats dropped, order
// kept), a threshold (0: all) and the releases rule. The first bad signer
// name is reported, then a bad threshold.
func New(signers []string, threshold int, releases Releases) (Policy, error) {
	p := Policy{Threshold: threshold, Releases: releases}
	seen := map[Signer]bool{}
	for _, s := range signers {
		if strings.TrimPrefix(strings.TrimSpace(s), "targets/") == "" {
			continue
		}
		sg, err := ParseSigner(s)
		if err != nil {
			return Policy{}, err
		}
		if !seen[sg] {
			seen[sg] = true
			p.Signers = append(p.Signers, sg)
		}
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// Validate checks a policy built by hand.
func (p Policy) Validate() error {
	seen := map[Signer]bool{}
	for _, s := range p.Signers {
		if _, err := ParseSigner(string(s)); err != nil || strings.HasPrefix(string(s), "targets/") {
			return &SignerError{Name: string(s)}
		}
		if seen[s] {
			return fmt.Errorf("%w: signer %s is listed twice", ErrInvalid, s)
		}
		seen[s] = true
	}
	switch {
	case len(p.Signers) == 0 && p.Threshold != 0:
		return &ThresholdError{Threshold: p.Threshold}
	case p.Threshold < 0 || p.Threshold > len(p.Signers):
		return &ThresholdError{Threshold: p.Threshold, Signers: len(p.Signers)}
	}
	if !p.Releases.valid() {
		return fmt.Errorf("%w: unknown releases rule %d", ErrInvalid, p.Releases)
	}
	return nil
}

// threshold is the number of signers that must agree.
func (p Policy) threshold() int {
	if p.Threshold == 0 {
		return len(p.Signers)
	}
	return p.Threshold
}

// roles lists the signers' roles, in order.
func (p Policy) roles() []string {
	out := make([]string, len(p.Signers))
	for i, s := range p.Signers {
		out[i] = s.Role()
	}
	return out
}

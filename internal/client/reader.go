package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/signet-trust/signet/internal/policy"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// Cache keeps verified metadata of one repository between runs (a trust
// directory's tuf/<gun>/metadata). Get returns nil, nil when a role is not
// cached.
type Cache interface {
	Get(role string) ([]byte, error)
	Put(role string, data []byte) error
}

// Reader downloads a repository's metadata and verifies it, in the order of
// the TUF client workflow, through the one state machine in tuf/trust. It
// holds no keys.
type Reader struct {
	Remote *Remote
	Cache  Cache
	Now    func() time.Time
	// Pinning is trust pinning (notary's trust_pinning, or root keys given
	// outright). As notary, it decides the roots this reader fetches while
	// it trusts no root of the repository (trust on first use, unless
	// pinned) or only an expired one; a root trusted before is what pins
	// trust otherwise. The zero value is trust on first use. A pinned CA
	// bundle is read (os.ReadFile) only when a root is checked against it.
	Pinning policy.Pinning
	// AllowExpiredSigned accepts expired targets roles and snapshot (whose
	// signatures must still verify). Only a publisher about to re-sign them
	// sets it: it is how expired metadata is renewed instead of locking the
	// repository.
	AllowExpiredSigned bool
	// Timeout bounds a whole Update, every download and root rotation of
	// it (zero: DefaultUpdateTimeout), so that no server can keep a client
	// busy longer, however slowly or endlessly it answers.
	Timeout time.Duration
	// SkipDelegation, when set, is told of every delegation the update
	// leaves out by notary's rule (expired, or lacking a threshold of valid
	// signatures: it is left out with every role it delegates, and the
	// update goes on; trust.Repo.Skipped lists them too).
	SkipDelegation func(role string, err error)
}

// errNoNewerRoot: the server's newest root is the one trusted already.
var errNoNewerRoot = errors.New("the server has no root newer")

// DefaultUpdateTimeout bounds an Update when Reader.Timeout is zero: enough
// to download the largest files the client accepts over a slow link.
const DefaultUpdateTimeout = 5 * time.Minute

// ErrNoTrustData reports a repository the server does not have.
var ErrNoTrustData = errors.New("client: no trust data: the repository has not been published on this trust server")

// Update brings the repository up to date and returns its verified state:
//  1. the cached root (or, the first time, the server's root, trusted on
//     first use or by pinning);
//  2. the timestamp; if it fails to verify, a newer root is looked for and
//     every intermediate root version is walked, each signed by the one
//     before, then the timestamp is tried again;
//  3. the snapshot the timestamp names (by hash and length);
//  4. targets and every delegation the snapshot lists, by hash; a
//     delegation not signed by its threshold, or expired, is left out as
//     notary leaves it out (trust.Repo.Skipped says which and why).
//
// Versions never go below the cached ones. Verified files are cached.
func (rd *Reader) Update(ctx context.Context) (*trust.Repo, error) {
	timeout := rd.Timeout
	if timeout <= 0 {
		timeout = DefaultUpdateTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	now := time.Now
	if rd.Now != nil {
		now = rd.Now
	}
	min := map[string]int{}
	cached := map[string][]byte{}
	for _, role := range []string{tuf.RoleRoot, tuf.RoleTimestamp, tuf.RoleSnapshot, tuf.RoleTargets} {
		b, err := rd.Cache.Get(role)
		if err != nil {
			return nil, err
		}
		if b == nil {
			continue
		}
		cached[role] = b
		if role == tuf.RoleTimestamp || role == tuf.RoleSnapshot {
			if c, err := tuf.Peek(b); err == nil {
				min[role] = c.Version
			}
		}
	}
	if err := rd.cachedDelegationVersions(cached[tuf.RoleTargets], min); err != nil {
		return nil, err
	}
	v := trust.New(rd.Remote.GUN(), now(), trust.Options{MinVersions: min})
	if rd.AllowExpiredSigned {
		v.SetAllowExpired(tuf.RoleSnapshot, true)
		v.AllowExpiredTargets(true)
	}

	// Step 1: the trusted root.
	rootFresh := false
	if b := cached[tuf.RoleRoot]; b != nil {
		v.SetAllowExpired(tuf.RoleRoot, true)
		err := v.LoadRoot(b)
		v.SetAllowExpired(tuf.RoleRoot, false)
		if err != nil {
			return nil, fmt.Errorf("the cached root of %s does not verify (delete the local trust data to start over): %w", rd.Remote.GUN(), err)
		}
	} else {
		b, err := rd.Remote.GetCurrent(ctx, tuf.RoleRoot, MaxMetadataSize)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrNoTrustData, rd.Remote.GUN())
		}
		if err != nil {
			return nil, err
		}
		if err := rd.pinned(v, now(), func() error { return v.LoadRoot(b) }); err != nil {
			return nil, err
		}
		if err := rd.Cache.Put(tuf.RoleRoot, b); err != nil {
			return nil, err
		}
		rootFresh = true
	}
	if !rootFresh && !now().Before(v.Root().Signed.Expires) {
		// The trusted root expired: the roots that replace it obey the
		// pinning again (notary bootstraps them with its trust pinning).
		if err := rd.pinned(v, now(), func() error { return rd.updateRoot(ctx, v) }); err != nil {
			return nil, err
		}
		rootFresh = true
	}

	// Steps 2–4; if they fail with the root we had, look for a newer root
	// (walking every intermediate version) and try once more.
	// Only a verification failure can be a root rotation; the server
	// not answering, or answering with an error, is reported as it is.
	files, err := rd.fetch(ctx, v)
	if err != nil && !rootFresh && errors.Is(err, trust.ErrVerify) {
		uerr := rd.updateRoot(ctx, v)
		switch {
		case errors.Is(uerr, errNoNewerRoot):
			return nil, err
		case uerr != nil:
			return nil, fmt.Errorf("%w (a newer root was looked for: %w)", err, uerr)
		}
		files, err = rd.fetch(ctx, v)
	}
	if err != nil {
		return nil, err
	}
	for role, b := range files {
		if err := rd.Cache.Put(role, b); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// ErrNoCache reports that the cache holds no complete verified copy of
// the repository.
var ErrNoCache = errors.New("client: no cached trust data")

// Cached verifies the repository from the cache alone, without the
// network: the cached root, timestamp, snapshot and every targets role the
// snapshot lists, through the same state machine and clock as Update, so
// metadata that expired since is refused. It is what a reader falls back
// to when the trust server cannot be reached, as notary does; the caller
// says that the data may be stale.
func (rd *Reader) Cached() (*trust.Repo, error) {
	now := time.Now
	if rd.Now != nil {
		now = rd.Now
	}
	get := func(role string) ([]byte, error) {
		b, err := rd.Cache.Get(role)
		if err == nil && b == nil {
			err = fmt.Errorf("%w of %s: no %s", ErrNoCache, rd.Remote.GUN(), role)
		}
		return b, err
	}
	v := trust.New(rd.Remote.GUN(), now(), trust.Options{})
	for _, step := range []struct {
		role string
		load func([]byte) error
	}{{tuf.RoleRoot, v.LoadRoot}, {tuf.RoleTimestamp, v.LoadTimestamp}, {tuf.RoleSnapshot, v.LoadSnapshot}} {
		b, err := get(step.role)
		if err != nil {
			return nil, err
		}
		if err := step.load(b); err != nil {
			return nil, fmt.Errorf("the cached %s of %s: %w", step.role, rd.Remote.GUN(), err)
		}
	}
	queue := []string{tuf.RoleTargets}
	for len(queue) > 0 {
		role := queue[0]
		queue = queue[1:]
		if _, listed := v.Snapshot().Signed.Meta[role]; !listed {
			continue
		}
		b, err := get(role)
		if err != nil {
			return nil, err
		}
		if err := v.LoadTargets(role, b); err != nil {
			return nil, fmt.Errorf("the cached %s of %s: %w", role, rd.Remote.GUN(), err)
		}
		for _, d := range v.Targets(role).Signed.Delegations.Roles {
			queue = append(queue, d.Name)
		}
	}
	return v, nil
}

// pinned runs load (loading roots into v) under the reader's trust
// pinning.
func (rd *Reader) pinned(v *trust.Repo, now time.Time, load func() error) error {
	rule := rd.Pinning.Rule(rd.Remote.GUN())
	if !rule.Pins() {
		return load()
	}
	var ca []byte
	if rule.Mode == policy.PinCA {
		b, err := os.ReadFile(rule.CAFile)
		if err != nil {
			return fmt.Errorf("trust pinning: reading the CA pinned for %s: %w", rule.Pattern, err)
		}
		ca = b
	}
	pin, err := rule.Pin(ca, now)
	if err != nil {
		return err
	}
	v.SetRootPin(pin)
	defer v.SetRootPin(nil)
	return load()
}

// cachedDelegationVersions adds the version of the cached targets and of
// every cached delegation reachable from it to min, so that a delegation,
// like the top-level roles, never goes below the version already trusted.
// (TUF's snapshot rollback check covers "all delegated targets metadata
// files"; Notary's snapshot meta carries no versions, so each role is
// checked against its cached copy, as the notary client does.) Without
// it, a holder of the snapshot and timestamp keys — the server itself,
// when it manages the snapshot as Docker sets up — could serve an older,
// validly signed targets/releases and bring back a revoked tag. Each
// cached file is parsed once, for its version and its delegations.
func (rd *Reader) cachedDelegationVersions(targets []byte, min map[string]int) error {
	var queue []string
	visit := func(role string, b []byte) {
		m, err := tuf.ParseTargets(role, b)
		if err != nil {
			// The cache holds verified files; one that no longer parses
			// sets no floor for the roles it delegates to, only its own
			// version if that can still be read.
			if c, err := tuf.Peek(b); err == nil {
				min[role] = c.Version
			}
			return
		}
		min[role] = m.Signed.Version
		for _, d := range m.Signed.Delegations.Roles {
			queue = append(queue, d.Name)
		}
	}
	if targets != nil {
		visit(tuf.RoleTargets, targets)
	}
	for len(queue) > 0 {
		role := queue[0]
		queue = queue[1:]
		if _, seen := min[role]; seen {
			continue
		}
		b, err := rd.Cache.Get(role)
		if err != nil {
			return err
		}
		if b == nil {
			continue
		}
		visit(role, b)
	}
	return nil
}

// fetch runs steps 2–4 of Update: timestamp, snapshot, targets roles.
func (rd *Reader) fetch(ctx context.Context, v *trust.Repo) (map[string][]byte, error) {
	ts, err := rd.Remote.GetCurrent(ctx, tuf.RoleTimestamp, MaxTimestampSize)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoTrustData, rd.Remote.GUN())
	}
	if err != nil {
		return nil, err
	}
	if err := v.LoadTimestamp(ts); err != nil {
		return nil, err
	}
	sm := v.Timestamp().Signed.Meta[tuf.RoleSnapshot]
	snap, err := rd.Remote.GetChecksum(ctx, tuf.RoleSnapshot, sm.Hashes["sha256"], sm.Length)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if err := v.LoadSnapshot(snap); err != nil {
		return nil, err
	}
	files := map[string][]byte{tuf.RoleTimestamp: ts, tuf.RoleSnapshot: snap}
	queue := []string{tuf.RoleTargets}
	for len(queue) > 0 {
		role := queue[0]
		queue = queue[1:]
		fm, listed := v.Snapshot().Signed.Meta[role]
		if !listed {
			continue // delegated but never published
		}
		b, err := rd.Remote.GetChecksum(ctx, role, fm.Hashes["sha256"], fm.Length)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", role, err)
		}
		if err := v.LoadTargets(role, b); err != nil {
			// As notary's client: a delegation not signed by its threshold,
			// or expired, is left out (its targets untrusted, its
			// delegations not followed); any other failure fails the update.
			if tuf.IsDelegation(role) && (errors.Is(err, trust.ErrThreshold) || errors.Is(err, trust.ErrExpired)) {
				v.Skip(role, err)
				if rd.SkipDelegation != nil {
					rd.SkipDelegation(role, err)
				}
				continue
			}
			return nil, err
		}
		files[role] = b
		for _, d := range v.Targets(role).Signed.Delegations.Roles {
			queue = append(queue, d.Name)
		}
	}
	return files, nil
}

// ErrTooManyRotations reports a server root more root rotations ahead of
// the trusted one than one update follows (trust.MaxRootRotations).
var ErrTooManyRotations = errors.New("client: too many root rotations")

// updateRoot fetches the newest root and walks every version between the
// trusted one and it, each of which must be exactly the version asked for
// and signed by its predecessor's keys (and its own). At most
// trust.MaxRootRotations versions are followed: a server claiming a root
// far ahead (an unsigned root.json of version 2^40, say) is refused before
// anything else is downloaded, and one answering every n.root.json with
// another version is refused at the first.
func (rd *Reader) updateRoot(ctx context.Context, v *trust.Repo) error {
	newest, err := rd.Remote.GetCurrent(ctx, tuf.RoleRoot, MaxMetadataSize)
	if err != nil {
		return fmt.Errorf("downloading the newest root: %w", err)
	}
	c, err := tuf.Peek(newest)
	if err != nil {
		return fmt.Errorf("the newest root: %w", err)
	}
	have := v.Root().Signed.Version
	if c.Version <= have {
		return fmt.Errorf("%w than version %d", errNoNewerRoot, have)
	}
	if c.Version-have > trust.MaxRootRotations {
		return fmt.Errorf("%w: the server's root is version %d, %d versions ahead of the trusted version %d; one update follows at most %d root rotations",
			ErrTooManyRotations, c.Version, c.Version-have, have, trust.MaxRootRotations)
	}
	for n := have + 1; n < c.Version; n++ {
		b, err := rd.Remote.GetVersion(ctx, tuf.RoleRoot, n, MaxMetadataSize)
		if err != nil {
			return fmt.Errorf("downloading root version %d: %w", n, err)
		}
		v.SetAllowExpired(tuf.RoleRoot, true) // intermediate roots may have expired
		err = v.LoadRootVersion(b, n)
		v.SetAllowExpired(tuf.RoleRoot, false)
		if err != nil {
			return err
		}
	}
	if err := v.LoadRootVersion(newest, c.Version); err != nil {
		return err
	}
	return rd.Cache.Put(tuf.RoleRoot, newest)
}

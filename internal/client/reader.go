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
	// SkipDelegation, when set, applies notary's rule to a delegation that
	// expired or lacks a threshold of valid signatures: it is left out,
	// with every role it delegates, and SkipDelegation is told why; the
	// update goes on. Without it such a delegation fails the update.
	// (Targets itself, and any other failure, always fail it.)
	SkipDelegation func(role string, err error)
}

// ErrNoTrustData reports a repository the server does not have.
var ErrNoTrustData = errors.New("client: no trust data: the repository has not been published on this trust server")

// Update brings the repository up to date and returns its verified state:
//  1. the cached root (or, the first time, the server's root, trusted on
//     first use or by pinning);
//  2. the timestamp; if it fails to verify, a newer root is looked for and
//     every intermediate root version is walked, each signed by the one
//     before, then the timestamp is tried again;
//  3. the snapshot the timestamp names (by hash and length);
//  4. targets and every delegation the snapshot lists, by hash.
//
// Versions never go below the cached ones. Verified files are cached.
func (rd *Reader) Update(ctx context.Context) (*trust.Repo, error) {
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
		if c, err := tuf.Peek(b); err == nil && role != tuf.RoleRoot {
			min[role] = c.Version
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
	files, err := rd.fetch(ctx, v)
	if err != nil && !rootFresh && !errors.Is(err, ErrNoTrustData) {
		if uerr := rd.updateRoot(ctx, v); uerr != nil {
			return nil, fmt.Errorf("%w (and no newer root fixes it: %v)", err, uerr)
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

// cachedDelegationVersions adds the version of every cached delegation
// reachable from the cached targets to min, so that a delegation, like the
// top-level roles, never goes below the version already trusted. (TUF's
// snapshot rollback check covers "all delegated targets metadata files";
// Notary's snapshot meta carries no versions, so each role is checked
// against its cached copy, as the notary client does.) Without it, a
// holder of the snapshot and timestamp keys — the server itself, when it
// manages the snapshot as Docker sets up — could serve an older, validly
// signed targets/releases and bring back a revoked tag.
func (rd *Reader) cachedDelegationVersions(targets []byte, min map[string]int) error {
	var queue []string
	children := func(role string, b []byte) {
		m, err := tuf.ParseTargets(role, b)
		if err != nil {
			return // the cache holds verified files; one that no longer parses sets no floor
		}
		for _, d := range m.Signed.Delegations.Roles {
			queue = append(queue, d.Name)
		}
	}
	if targets != nil {
		children(tuf.RoleTargets, targets)
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
		if c, err := tuf.Peek(b); err == nil {
			min[role] = c.Version
		}
		children(role, b)
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
			if rd.SkipDelegation != nil && tuf.IsDelegation(role) && (errors.Is(err, trust.ErrExpired) || errors.Is(err, trust.ErrSignatures)) {
				rd.SkipDelegation(role, err)
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

// updateRoot fetches the newest root and walks every version between the
// trusted one and it, each of which must be signed by its predecessor's
// keys (and its own).
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
		return fmt.Errorf("the server has no root newer than version %d", have)
	}
	for n := have + 1; n < c.Version; n++ {
		b, err := rd.Remote.GetVersion(ctx, tuf.RoleRoot, n, MaxMetadataSize)
		if err != nil {
			return fmt.Errorf("downloading root version %d: %w", n, err)
		}
		v.SetAllowExpired(tuf.RoleRoot, true) // intermediate roots may have expired
		err = v.LoadRoot(b)
		v.SetAllowExpired(tuf.RoleRoot, false)
		if err != nil {
			return err
		}
	}
	if err := v.LoadRoot(newest); err != nil {
		return err
	}
	return rd.Cache.Put(tuf.RoleRoot, newest)
}

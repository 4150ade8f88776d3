package client

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/client/changes"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// KeyStore gives access to the private keys a client holds.
type KeyStore interface {
	// Signer returns the signer of the key whose canonical key ID is id, or
	// ok=false when the key is not held.
	Signer(id string) (s crypto.Signer, ok bool, err error)
}

// RenewWithin is how close to expiry a targets role is re-signed by any
// publish, as notary renews roles within six months of expiry.
const RenewWithin = 182 * 24 * time.Hour

// Default lifetimes of the metadata a client signs, as notary's.
const (
	RootExpiry     = 10 * 365 * 24 * time.Hour
	TargetsExpiry  = 3 * 365 * 24 * time.Hour
	SnapshotExpiry = 3 * 365 * 24 * time.Hour
)

// Expiries are the lifetimes of the metadata a client signs. A zero field
// takes the default (RootExpiry, TargetsExpiry, SnapshotExpiry).
type Expiries struct {
	Root     time.Duration
	Targets  time.Duration // targets and every delegation
	Snapshot time.Duration
}

func (e Expiries) root() time.Duration     { return orDefault(e.Root, RootExpiry) }
func (e Expiries) targets() time.Duration  { return orDefault(e.Targets, TargetsExpiry) }
func (e Expiries) snapshot() time.Duration { return orDefault(e.Snapshot, SnapshotExpiry) }

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// renewWithin is how close to expiry a targets role is renewed: six
// months, or half its lifetime when that is shorter (so short-lived
// targets are not re-signed on every publish).
func (e Expiries) renewWithin() time.Duration {
	return min(RenewWithin, e.targets()/2)
}

// ErrNoKey reports that a role must be signed but its key is not held.
var ErrNoKey = errors.New("client: signing key not available")

// Working is a mutable copy of a repository's metadata, being changed and
// re-signed.
type Working struct {
	GUN      string
	Root     tuf.Root
	Targets  map[string]*tuf.Targets
	Snapshot *tuf.Snapshot // nil if never signed by the client
	// Raw holds the current bytes of each role, for snapshot meta.
	Raw map[string][]byte
	// Dirty names the roles to re-sign and upload.
	Dirty map[string]bool
	// ExtraRootSigners sign the root besides its own keys (the old root keys
	// during a root key rotation).
	ExtraRootSigners []tuf.Signer
	// Unpublished marks a repository initialised locally and never
	// uploaded: its cached root is uploaded as it is (unless changed).
	Unpublished bool
	// Expiry sets the lifetimes of what Sign signs.
	Expiry Expiries
}

// NewWorking copies the verified state of a repository.
func NewWorking(v *trust.Repo) (*Working, error) {
	w := &Working{GUN: v.GUN(), Targets: map[string]*tuf.Targets{}, Raw: map[string][]byte{}, Dirty: map[string]bool{}}
	root, err := tuf.ParseRoot(v.Root().Raw) // a private copy
	if err != nil {
		return nil, err
	}
	w.Root, w.Raw[tuf.RoleRoot] = root.Signed, root.Raw
	for _, role := range v.TargetsRoles() {
		m, err := tuf.ParseTargets(role, v.Targets(role).Raw)
		if err != nil {
			return nil, err
		}
		t := m.Signed
		w.Targets[role], w.Raw[role] = &t, m.Raw
	}
	if s := v.Snapshot(); s != nil {
		m, err := tuf.ParseSnapshot(s.Raw)
		if err != nil {
			return nil, err
		}
		snap := m.Signed
		w.Snapshot, w.Raw[tuf.RoleSnapshot] = &snap, m.Raw
	}
	return w, nil
}

func emptyTargets(now time.Time) *tuf.Targets {
	return &tuf.Targets{
		Common:      tuf.Common{Type: tuf.TypeTargets, Version: 0, Expires: now.Add(TargetsExpiry)},
		Targets:     map[string]tuf.FileMeta{},
		Delegations: tuf.Delegations{Keys: map[string]*keys.PublicKey{}, Roles: []*tuf.DelegatedRole{}},
	}
}

// delegation returns the entry of role in its parent, or nil.
func (w *Working) delegation(role string) *tuf.DelegatedRole {
	p := w.Targets[tuf.Parent(role)]
	if p == nil {
		return nil
	}
	for _, d := range p.Delegations.Roles {
		if d.Name == role {
			return d
		}
	}
	return nil
}

// targetsFor returns the targets object of role, creating an empty one for
// a delegated role that was never published.
func (w *Working) targetsFor(role string, now time.Time) (*tuf.Targets, error) {
	if t := w.Targets[role]; t != nil {
		return t, nil
	}
	if role == tuf.RoleTargets || w.delegation(role) == nil {
		return nil, fmt.Errorf("client: role %s does not exist in %s", role, w.GUN)
	}
	t := emptyTargets(now)
	w.Targets[role] = t
	return t, nil
}

// Apply applies staged changes in order. It stops at the first change that
// cannot apply and reports it; the Working copy is then not to be used.
func (w *Working) Apply(cs []changes.Change, now time.Time) error {
	for i, c := range cs {
		if err := w.apply(c, now); err != nil {
			return fmt.Errorf("change %d (%s %s %s %s): %w", i+1, c.Action, c.Type, c.Role, c.Path, err)
		}
	}
	return nil
}

func (w *Working) apply(c changes.Change, now time.Time) error {
	switch {
	case c.Role == changes.ScopeRoot && c.Type == changes.TypeRole:
		return w.applyRootRole(c)
	case c.Type == changes.TypeTarget:
		t, err := w.targetsFor(c.Role, now)
		if err != nil {
			return err
		}
		switch c.Action {
		case changes.ActionCreate, changes.ActionUpdate:
			fm, err := c.TargetMeta()
			if err != nil {
				return err
			}
			if tuf.IsDelegation(c.Role) {
				if d := w.delegation(c.Role); d != nil && !tuf.PathAllowed(w.effectivePaths(c.Role), c.Path) {
					return fmt.Errorf("target %q is outside the paths %q delegated to %s", c.Path, w.effectivePaths(c.Role), c.Role)
				}
			}
			t.Targets[c.Path] = fm
		case changes.ActionDelete:
			delete(t.Targets, c.Path)
		default:
			return fmt.Errorf("unsupported action %q", c.Action)
		}
		w.Dirty[c.Role] = true
		return nil
	case c.Type == changes.TypeDelegation:
		return w.applyDelegation(c, now)
	case c.Type == changes.TypeWitness:
		if c.Role != tuf.RoleTargets && w.delegation(c.Role) == nil {
			return fmt.Errorf("role %s does not exist", c.Role)
		}
		if _, err := w.targetsFor(c.Role, now); err != nil {
			return err
		}
		w.Dirty[c.Role] = true
		return nil
	}
	return fmt.Errorf("unsupported change type %q", c.Type)
}

func (w *Working) effectivePaths(role string) []string {
	if role == tuf.RoleTargets {
		return []string{""}
	}
	d := w.delegation(role)
	if d == nil {
		return nil
	}
	return tuf.IntersectPaths(w.effectivePaths(tuf.Parent(role)), d.Paths)
}

func (w *Working) applyRootRole(c changes.Change) error {
	rr, err := c.RootRole()
	if err != nil {
		return err
	}
	if !slices.Contains(tuf.BaseRoles, rr.Role) || len(rr.Keys) == 0 {
		return fmt.Errorf("invalid key rotation for role %q", rr.Role)
	}
	role := w.Root.Roles[rr.Role]
	if role == nil {
		role = &tuf.RoleKeys{Threshold: 1}
		w.Root.Roles[rr.Role] = role
	}
	role.KeyIDs = nil
	for _, k := range rr.Keys {
		w.Root.Keys[k.ID()] = k
		role.KeyIDs = append(role.KeyIDs, k.ID())
	}
	if role.Threshold > len(role.KeyIDs) {
		role.Threshold = len(role.KeyIDs)
	}
	w.pruneRootKeys()
	w.Dirty[tuf.RoleRoot] = true
	return nil
}

// pruneRootKeys drops keys no base role uses any more.
func (w *Working) pruneRootKeys() {
	used := map[string]bool{}
	for _, r := range w.Root.Roles {
		for _, id := range r.KeyIDs {
			used[id] = true
		}
	}
	for id := range w.Root.Keys {
		if !used[id] {
			delete(w.Root.Keys, id)
		}
	}
}

// canonicalIDs maps the canonical IDs of a delegation's keys to TUF IDs.
func canonicalIDs(ks map[string]*keys.PublicKey, ids []string) map[string]string {
	out := map[string]string{}
	for _, id := range ids {
		if k := ks[id]; k != nil {
			out[k.CanonicalID()] = id
		}
	}
	return out
}

func (w *Working) applyDelegation(c changes.Change, now time.Time) error {
	d, err := c.Delegation()
	if err != nil {
		return err
	}
	if strings.HasSuffix(c.Role, "/*") { // purge keys from every delegation
		if c.Action != changes.ActionUpdate {
			return fmt.Errorf("only update applies to %s", c.Role)
		}
		return w.purgeKeys(strings.TrimSuffix(c.Role, "/*"), d.RemoveKeys)
	}
	if !tuf.IsDelegation(c.Role) {
		return fmt.Errorf("%q is not a valid delegation name", c.Role)
	}
	parentName := tuf.Parent(c.Role)
	parent, err := w.targetsFor(parentName, now)
	if err != nil {
		return fmt.Errorf("parent role %s: %w", parentName, err)
	}
	entry := w.delegation(c.Role)
	switch c.Action {
	case changes.ActionCreate, changes.ActionUpdate:
		if entry == nil {
			entry = &tuf.DelegatedRole{Name: c.Role, Threshold: 1, KeyIDs: []string{}}
			parent.Delegations.Roles = append(parent.Delegations.Roles, entry)
		}
		for _, k := range d.AddKeys {
			parent.Delegations.Keys[k.ID()] = k
			if !slices.Contains(entry.KeyIDs, k.ID()) {
				entry.KeyIDs = append(entry.KeyIDs, k.ID())
			}
		}
		if len(d.RemoveKeys) > 0 {
			byCanonical := canonicalIDs(parent.Delegations.Keys, entry.KeyIDs)
			for _, rid := range d.RemoveKeys {
				id, ok := byCanonical[rid]
				if !ok {
					id = rid
				}
				entry.KeyIDs = slices.DeleteFunc(entry.KeyIDs, func(x string) bool { return x == id })
			}
		}
		if d.NewThreshold > 0 {
			entry.Threshold = d.NewThreshold
		}
		if len(entry.KeyIDs) < entry.Threshold {
			return fmt.Errorf("%w: %s would keep %d key(s) but needs %d signatures; add a key first or lower the threshold", ErrBelowThreshold, c.Role, len(entry.KeyIDs), entry.Threshold)
		}
		if d.ClearAllPaths {
			entry.Paths = nil
		}
		for _, p := range d.RemovePaths {
			entry.Paths = slices.DeleteFunc(entry.Paths, func(x string) bool { return x == p })
		}
		for _, p := range d.AddPaths {
			if !slices.Contains(entry.Paths, p) {
				entry.Paths = append(entry.Paths, p)
			}
		}
	case changes.ActionDelete:
		if entry == nil {
			return nil
		}
		parent.Delegations.Roles = slices.DeleteFunc(parent.Delegations.Roles, func(x *tuf.DelegatedRole) bool { return x.Name == c.Role })
		for role := range w.Targets {
			if role == c.Role || strings.HasPrefix(role, c.Role+"/") {
				delete(w.Targets, role)
				delete(w.Dirty, role)
			}
		}
	default:
		return fmt.Errorf("unsupported action %q", c.Action)
	}
	pruneDelegationKeys(parent)
	w.Dirty[parentName] = true
	return nil
}

// ErrBelowThreshold reports a delegation change that would leave a role
// with fewer keys than its threshold, locking it.
var ErrBelowThreshold = errors.New("client: the change would leave a role below its threshold")

func pruneDelegationKeys(t *tuf.Targets) {
	used := map[string]bool{}
	for _, d := range t.Delegations.Roles {
		for _, id := range d.KeyIDs {
			used[id] = true
		}
	}
	for id := range t.Delegations.Keys {
		if !used[id] {
			delete(t.Delegations.Keys, id)
		}
	}
}

func (w *Working) purgeKeys(under string, canonical []string) error {
	remove := map[string]bool{}
	for _, id := range canonical {
		remove[id] = true
	}
	for name, t := range w.Targets {
		if name != under && !strings.HasPrefix(name, under+"/") && under != tuf.RoleTargets {
			continue
		}
		changed := false
		for _, d := range t.Delegations.Roles {
			before := len(d.KeyIDs)
			d.KeyIDs = slices.DeleteFunc(d.KeyIDs, func(id string) bool {
				k := t.Delegations.Keys[id]
				return remove[id] || (k != nil && remove[k.CanonicalID()])
			})
			if len(d.KeyIDs) != before {
				changed = true
			}
		}
		if changed {
			pruneDelegationKeys(t)
			w.Dirty[name] = true
		}
	}
	return nil
}

// signersFor finds held keys among ids (listed in ks) for a role.
func signersFor(store KeyStore, ks map[string]*keys.PublicKey, ids []string) ([]tuf.Signer, error) {
	var out []tuf.Signer
	for _, id := range ids {
		k := ks[id]
		if k == nil {
			continue
		}
		s, ok, err := store.Signer(k.CanonicalID())
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, tuf.Signer{Key: k, Signer: s})
		}
	}
	return out, nil
}

// Sign re-signs every dirty role (version+1, fresh expiry) with the keys
// the store holds, parents before children, then the snapshot if the
// client holds its key. It returns the files to upload.
func (w *Working) Sign(store KeyStore, now time.Time) (map[string][]byte, error) {
	out := map[string][]byte{}
	if w.Unpublished && !w.Dirty[tuf.RoleRoot] {
		out[tuf.RoleRoot] = w.Raw[tuf.RoleRoot]
	}
	if w.Dirty[tuf.RoleRoot] {
		w.Root.Version++
		w.Root.Expires = now.Add(w.Expiry.root()).UTC()
		rk := w.Root.Roles[tuf.RoleRoot]
		signers, err := signersFor(store, w.Root.Keys, rk.KeyIDs)
		if err != nil {
			return nil, err
		}
		signers = append(signers, w.ExtraRootSigners...)
		if len(signers) < rk.Threshold {
			return nil, fmt.Errorf("%w: the root key of %s (key IDs %s) is needed to sign the root", ErrNoKey, w.GUN, shortIDs(w.Root.Keys, rk.KeyIDs))
		}
		b, err := tuf.Sign(&w.Root, dedupe(signers)...)
		if err != nil {
			return nil, err
		}
		out[tuf.RoleRoot], w.Raw[tuf.RoleRoot] = b, b
	}
	if err := w.resignOrphaned(store); err != nil {
		return nil, err
	}
	var dirty []string
	for role := range w.Dirty {
		if tuf.IsTargetsRole(role) {
			dirty = append(dirty, role)
		}
	}
	sort.Slice(dirty, func(i, j int) bool { return tuf.Depth(dirty[i]) > tuf.Depth(dirty[j]) }) // children first: no parent depends on child bytes
	for _, role := range dirty {
		t := w.Targets[role]
		if t == nil {
			continue
		}
		var ids []string
		var ks map[string]*keys.PublicKey
		threshold := 1
		if role == tuf.RoleTargets {
			rk := w.Root.Roles[tuf.RoleTargets]
			ids, ks, threshold = rk.KeyIDs, w.Root.Keys, rk.Threshold
		} else {
			d := w.delegation(role)
			if d == nil {
				return nil, fmt.Errorf("client: role %s is not delegated", role)
			}
			ids, ks, threshold = d.KeyIDs, w.Targets[tuf.Parent(role)].Delegations.Keys, d.Threshold
		}
		signers, err := signersFor(store, ks, ids)
		if err != nil {
			return nil, err
		}
		if len(signers) < threshold {
			return nil, fmt.Errorf("%w: no key for %s is held locally (it needs key IDs %s)", ErrNoKey, role, shortIDs(ks, ids))
		}
		t.Version++
		t.Expires = now.Add(w.Expiry.targets()).UTC()
		b, err := tuf.Sign(t, signers...)
		if err != nil {
			return nil, err
		}
		out[role], w.Raw[role] = b, b
	}
	// Snapshot, if the client holds the snapshot key.
	sk := w.Root.Roles[tuf.RoleSnapshot]
	signers, err := signersFor(store, w.Root.Keys, sk.KeyIDs)
	if err != nil {
		return nil, err
	}
	if len(signers) >= sk.Threshold && len(signers) > 0 && len(out) > 0 {
		snap := w.Snapshot
		if snap == nil {
			snap = &tuf.Snapshot{Common: tuf.Common{Type: tuf.TypeSnapshot}, Meta: map[string]tuf.FileMeta{}}
			w.Snapshot = snap
		}
		for role, b := range w.Raw {
			if role != tuf.RoleSnapshot && role != tuf.RoleTimestamp && (role == tuf.RoleRoot || w.Targets[role] != nil) {
				snap.Meta[role] = tuf.NewFileMeta(b)
			}
		}
		for role := range snap.Meta {
			if role != tuf.RoleRoot && w.Targets[role] == nil {
				delete(snap.Meta, role)
			}
		}
		snap.Version++
		snap.Expires = now.Add(w.Expiry.snapshot()).UTC()
		b, err := tuf.Sign(snap, signers...)
		if err != nil {
			return nil, err
		}
		out[tuf.RoleSnapshot], w.Raw[tuf.RoleSnapshot] = b, b
	}
	return out, nil
}

// ErrOrphanedRole reports a change to a delegation's keys or threshold
// after which the role's current metadata no longer verifies (it was
// signed only by keys that are removed) and no key held here can re-sign
// it. Publishing it would make every client reject the repository.
var ErrOrphanedRole = errors.New("client: the change would leave a role signed by none of its keys")

// resignOrphaned finds delegations whose keys or threshold a change in
// their (dirty) parent altered so that their current signatures no longer
// meet the new threshold. They are re-signed (as `witness` does) when the
// store holds enough of the remaining keys; otherwise the change is
// refused, since clients would reject the role and with it the repository.
func (w *Working) resignOrphaned(store KeyStore) error {
	var roles []string
	for role := range w.Targets {
		if tuf.IsDelegation(role) && !w.Dirty[role] && w.Dirty[tuf.Parent(role)] && w.Raw[role] != nil {
			roles = append(roles, role)
		}
	}
	sort.Strings(roles)
	var orphaned, remaining []string
	for _, role := range roles {
		d := w.delegation(role)
		if d == nil {
			continue
		}
		ks := w.Targets[tuf.Parent(role)].Delegations.Keys
		m, err := tuf.ParseTargets(role, w.Raw[role])
		if err != nil {
			return err
		}
		if tuf.VerifySignatures(m, d.KeyIDs, d.Threshold, ks) == nil {
			continue
		}
		signers, err := signersFor(store, ks, d.KeyIDs)
		if err != nil {
			return err
		}
		if len(signers) >= d.Threshold {
			w.Dirty[role] = true
			continue
		}
		orphaned = append(orphaned, role)
		remaining = append(remaining, fmt.Sprintf("%s: %s (threshold %d)", role, shortIDs(ks, d.KeyIDs), d.Threshold))
	}
	if len(orphaned) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s %s signed only by keys this change removes (or by too few for the threshold), and not enough of the remaining keys are held here (%s); "+
		"clients would reject the repository. Have the holder of a remaining key re-sign first (signet witness %s %s -p), then retry",
		ErrOrphanedRole, strings.Join(orphaned, " and "), map[bool]string{true: "is", false: "are"}[len(orphaned) == 1],
		strings.Join(remaining, "; "), w.GUN, strings.Join(orphaned, " "))
}

func dedupe(ss []tuf.Signer) []tuf.Signer {
	seen := map[string]bool{}
	var out []tuf.Signer
	for _, s := range ss {
		if !seen[s.Key.ID()] {
			seen[s.Key.ID()] = true
			out = append(out, s)
		}
	}
	return out
}

func shortIDs(ks map[string]*keys.PublicKey, ids []string) string {
	var out []string
	for _, id := range ids {
		if k := ks[id]; k != nil {
			id = k.CanonicalID()
		}
		if len(id) > 12 {
			id = id[:12]
		}
		out = append(out, id)
	}
	return strings.Join(out, ", ")
}

// Publisher applies changes to a repository and uploads the result.
type Publisher struct {
	Reader *Reader
	Keys   KeyStore
	Now    func() time.Time
	// Expiry sets the lifetimes of the metadata it signs (zero: defaults).
	Expiry Expiries
}

// Publish brings the repository up to date, applies cs, signs what changed
// and uploads it in one atomic request. A repository that was initialised
// locally but never published is read from the cache (see Initialize).
func (p *Publisher) Publish(ctx context.Context, cs []changes.Change) error {
	return p.PublishWith(ctx, cs, nil)
}

// PublishWith is Publish with a hook that adjusts the working copy after
// the changes are applied and before signing (to add the old root keys to a
// root rotation, say).
func (p *Publisher) PublishWith(ctx context.Context, cs []changes.Change, adjust func(*Working) error) error {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	w, err := p.Working(ctx)
	if err != nil {
		return err
	}
	if err := w.Apply(cs, now()); err != nil {
		return err
	}
	if adjust != nil {
		if err := adjust(w); err != nil {
			return err
		}
	}
	files, err := w.Sign(p.Keys, now())
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return nil
	}
	if err := p.Reader.Remote.Publish(ctx, files); err != nil {
		return err
	}
	// Refresh the cache from the server's new state.
	_, err = p.Reader.Update(ctx)
	return err
}

// Working returns the current state of the repository to change: the
// server's, verified; or for a repository initialised but never published,
// the locally cached one (with root, targets and snapshot marked to upload).
func (p *Publisher) Working(ctx context.Context) (*Working, error) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	rd := *p.Reader
	rd.AllowExpiredSigned = true
	v, err := rd.Update(ctx)
	if err == nil {
		w, err := NewWorking(v)
		if err != nil {
			return nil, err
		}
		w.Expiry = p.Expiry
		// Renew what has expired (or is about to): this publish re-signs it.
		soon := now().Add(p.Expiry.renewWithin())
		for role, t := range w.Targets {
			if t.Expires.Before(soon) {
				w.Dirty[role] = true
			}
		}
		return w, nil
	}
	if !errors.Is(err, ErrNoTrustData) {
		return nil, err
	}
	rootB, cerr := p.Reader.Cache.Get(tuf.RoleRoot)
	targetsB, terr := p.Reader.Cache.Get(tuf.RoleTargets)
	if cerr != nil || terr != nil || rootB == nil || targetsB == nil {
		return nil, fmt.Errorf("%w; initialise it first (signet init %s)", err, p.Reader.Remote.GUN())
	}
	lv := trust.New(p.Reader.Remote.GUN(), time.Now(), trust.Options{})
	if err := lv.LoadRoot(rootB); err != nil {
		return nil, fmt.Errorf("local root: %w", err)
	}
	if err := lv.TrustTargets(tuf.RoleTargets, targetsB); err != nil {
		return nil, fmt.Errorf("local targets: %w", err)
	}
	if snapB, _ := p.Reader.Cache.Get(tuf.RoleSnapshot); snapB != nil {
		if err := lv.TrustSnapshot(snapB); err != nil {
			return nil, fmt.Errorf("local snapshot: %w", err)
		}
	}
	w, err := NewWorking(lv)
	if err != nil {
		return nil, err
	}
	w.Dirty[tuf.RoleTargets] = true
	w.Unpublished = true
	w.Expiry = p.Expiry
	return w, nil
}

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
	"github.com/signet-trust/signet/internal/printable"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// KeyStore gives access to the private keys a client holds.
type KeyStore interface {
	// Signer returns the signer of the key whose canonical key ID is id, or
	// ok=false when the key is not held. Reaching a key may block (a
	// passphrase prompt, a hardware token), hence ctx.
	Signer(ctx context.Context, id string) (s crypto.Signer, ok bool, err error)
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
			r, _ := changes.Encode(c)
			return fmt.Errorf("change %d (%s %s %s %s): %w", i+1, r.Action, r.Type, r.Scope, printable.Quote(r.Path), err)
		}
	}
	return nil
}

func (w *Working) apply(c changes.Change, now time.Time) error {
	switch c := c.(type) {
	case changes.AddTarget:
		t, err := w.targetsFor(c.Role, now)
		if err != nil {
			return err
		}
		if tuf.IsDelegation(c.Role) && !tuf.PathAllowed(w.effectivePaths(c.Role), c.Name) {
			return fmt.Errorf("target %q is outside the paths %q delegated to %s", c.Name, w.effectivePaths(c.Role), c.Role)
		}
		t.Targets[c.Name] = c.Meta
		w.Dirty[c.Role] = true
	case changes.RemoveTarget:
		t, err := w.targetsFor(c.Role, now)
		if err != nil {
			return err
		}
		delete(t.Targets, c.Name)
		w.Dirty[c.Role] = true
	case changes.AddDelegation:
		return w.changeDelegation(c.Role, now, c.Threshold, c.Keys, nil, c.Paths, nil, false)
	case changes.UpdateDelegation:
		return w.changeDelegation(c.Role, now, c.Threshold, c.AddKeys, c.RemoveKeys, c.AddPaths, c.RemovePaths, c.ClearPaths)
	case changes.RemoveDelegation:
		return w.removeDelegation(c.Role, now)
	case changes.PurgeKeys:
		w.purgeKeys(c.Under, c.KeyIDs)
	case changes.RotateKey:
		return w.rotateKey(c.Role, c.Keys)
	case changes.Witness:
		if c.Role != tuf.RoleTargets && w.delegation(c.Role) == nil {
			return fmt.Errorf("role %s does not exist", c.Role)
		}
		if _, err := w.targetsFor(c.Role, now); err != nil {
			return err
		}
		w.Dirty[c.Role] = true
	default:
		return fmt.Errorf("unsupported change %T", c)
	}
	return nil
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

// rotateKey replaces the keys of a base role, as notary's
// ReplaceBaseKeys: the replaced keys leave the root's key list when no
// other role uses them — except root keys, which notary keeps listed (a
// rotated root.json holds the old root certificate beside the new one,
// only the new one in the root role). Replacing the targets key re-signs
// targets with the new one.
func (w *Working) rotateKey(roleName string, ks []*keys.PublicKey) error {
	if !slices.Contains(tuf.BaseRoles, roleName) || len(ks) == 0 {
		return fmt.Errorf("invalid key rotation for role %q", roleName)
	}
	role := w.Root.Roles[roleName]
	if role == nil {
		role = &tuf.RoleKeys{Threshold: 1}
		w.Root.Roles[roleName] = role
	}
	replaced := role.KeyIDs
	role.KeyIDs = nil
	for _, k := range ks {
		w.Root.Keys[k.ID()] = k
		if !slices.Contains(role.KeyIDs, k.ID()) {
			role.KeyIDs = append(role.KeyIDs, k.ID())
		}
	}
	if role.Threshold > len(role.KeyIDs) {
		role.Threshold = len(role.KeyIDs)
	}
	if roleName != tuf.RoleRoot {
		used := map[string]bool{}
		for _, r := range w.Root.Roles {
			for _, id := range r.KeyIDs {
				used[id] = true
			}
		}
		for _, id := range replaced {
			if !used[id] {
				delete(w.Root.Keys, id)
			}
		}
	}
	w.Dirty[tuf.RoleRoot] = true
	if roleName == tuf.RoleTargets && w.Targets[tuf.RoleTargets] != nil {
		w.Dirty[tuf.RoleTargets] = true
	}
	return nil
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

// delegatingParent returns the role that delegates to role, and its
// targets object to change.
func (w *Working) delegatingParent(role string, now time.Time) (string, *tuf.Targets, error) {
	if !tuf.IsDelegation(role) {
		return "", nil, fmt.Errorf("%q is not a valid delegation name", role)
	}
	name := tuf.Parent(role)
	parent, err := w.targetsFor(name, now)
	if err != nil {
		return "", nil, fmt.Errorf("parent role %s: %w", name, err)
	}
	return name, parent, nil
}

// changeDelegation creates the delegation role (threshold 1) if it does
// not exist, then adds and removes keys (removed by canonical or TUF key
// ID), sets the threshold (when not 0) and changes the paths. A change
// that leaves fewer keys than the threshold is refused.
func (w *Working) changeDelegation(role string, now time.Time, threshold int, addKeys []*keys.PublicKey, removeKeys, addPaths, removePaths []string, clearPaths bool) error {
	parentName, parent, err := w.delegatingParent(role, now)
	if err != nil {
		return err
	}
	entry := w.delegation(role)
	if entry == nil {
		entry = &tuf.DelegatedRole{Name: role, Threshold: 1, KeyIDs: []string{}}
		parent.Delegations.Roles = append(parent.Delegations.Roles, entry)
	}
	for _, k := range addKeys {
		parent.Delegations.Keys[k.ID()] = k
		if !slices.Contains(entry.KeyIDs, k.ID()) {
			entry.KeyIDs = append(entry.KeyIDs, k.ID())
		}
	}
	if len(removeKeys) > 0 {
		byCanonical := canonicalIDs(parent.Delegations.Keys, entry.KeyIDs)
		for _, rid := range removeKeys {
			id, ok := byCanonical[rid]
			if !ok {
				id = rid
			}
			entry.KeyIDs = slices.DeleteFunc(entry.KeyIDs, func(x string) bool { return x == id })
		}
	}
	if threshold > 0 {
		entry.Threshold = threshold
	}
	if len(entry.KeyIDs) < entry.Threshold {
		return fmt.Errorf("%w: %s would keep %d key(s) but needs %d signatures; add a key first or lower the threshold", ErrBelowThreshold, role, len(entry.KeyIDs), entry.Threshold)
	}
	if clearPaths {
		entry.Paths = nil
	}
	for _, p := range removePaths {
		entry.Paths = slices.DeleteFunc(entry.Paths, func(x string) bool { return x == p })
	}
	for _, p := range addPaths {
		if !slices.Contains(entry.Paths, p) {
			entry.Paths = append(entry.Paths, p)
		}
	}
	pruneDelegationKeys(parent)
	w.Dirty[parentName] = true
	return nil
}

// removeDelegation deletes a delegation and every role below it.
func (w *Working) removeDelegation(role string, now time.Time) error {
	parentName, parent, err := w.delegatingParent(role, now)
	if err != nil {
		return err
	}
	if w.delegation(role) == nil {
		return nil
	}
	parent.Delegations.Roles = slices.DeleteFunc(parent.Delegations.Roles, func(x *tuf.DelegatedRole) bool { return x.Name == role })
	for r := range w.Targets {
		if r == role || strings.HasPrefix(r, role+"/") {
			delete(w.Targets, r)
			delete(w.Dirty, r)
		}
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

// purgeKeys removes keys (canonical or TUF IDs) from every delegation
// under a role.
func (w *Working) purgeKeys(under string, canonical []string) {
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
}

// signersFor finds held keys among ids (listed in ks) for a role.
func signersFor(ctx context.Context, store KeyStore, ks map[string]*keys.PublicKey, ids []string) ([]tuf.Signer, error) {
	var out []tuf.Signer
	for _, id := range ids {
		k := ks[id]
		if k == nil {
			continue
		}
		s, ok, err := store.Signer(ctx, k.CanonicalID())
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
func (w *Working) Sign(ctx context.Context, store KeyStore, now time.Time) (map[string][]byte, error) {
	out := map[string][]byte{}
	if w.Unpublished && !w.Dirty[tuf.RoleRoot] {
		out[tuf.RoleRoot] = w.Raw[tuf.RoleRoot]
	}
	if w.Dirty[tuf.RoleRoot] {
		w.Root.Version++
		w.Root.Expires = now.Add(w.Expiry.root()).UTC()
		rk := w.Root.Roles[tuf.RoleRoot]
		signers, err := signersFor(ctx, store, w.Root.Keys, rk.KeyIDs)
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
	if err := w.resignOrphaned(ctx, store); err != nil {
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
		signers, err := signersFor(ctx, store, ks, ids)
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
	signers, err := signersFor(ctx, store, w.Root.Keys, sk.KeyIDs)
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
func (w *Working) resignOrphaned(ctx context.Context, store KeyStore) error {
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
		signers, err := signersFor(ctx, store, ks, d.KeyIDs)
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

func (p *Publisher) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Publish brings the repository up to date, applies cs, signs what changed
// and uploads it in one atomic request. A repository that was initialised
// locally but never published is read from the cache (see Initialize).
func (p *Publisher) Publish(ctx context.Context, cs []changes.Change) error {
	w, err := p.Working(ctx)
	if err != nil {
		return err
	}
	now := p.now()
	if err := w.Apply(cs, now); err != nil {
		return err
	}
	return p.upload(ctx, w, now)
}

// upload signs what changed in w, uploads it and refreshes the cache from
// the server's new state.
func (p *Publisher) upload(ctx context.Context, w *Working, now time.Time) error {
	files, err := w.Sign(ctx, p.Keys, now)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return nil
	}
	if err := p.Reader.Remote.Publish(ctx, files); err != nil {
		return err
	}
	_, err = p.Reader.Update(ctx)
	return err
}

// RotateRoot replaces the root key and publishes the new root, as `notary
// key rotate GUN root` does: the current root keys held in the key store
// sign it beside the new key, the new key gets a self-signed certificate
// for the GUN valid for RootExpiry, and the new root.json lists it as the
// only root key while keeping the old certificates among its keys (notary
// 0.7's shape). newKey is asked for the new key only once a current root
// key is found held, so no key is made for a rotation that cannot be
// signed; it must differ from the current root key. cs (the staged
// changes) are applied after the rotation and published with it.
func (p *Publisher) RotateRoot(ctx context.Context, newKey func(context.Context) (crypto.Signer, error), cs ...changes.Change) error {
	w, err := p.Working(ctx)
	if err != nil {
		return err
	}
	var old []tuf.Signer
	for _, id := range w.Root.Roles[tuf.RoleRoot].KeyIDs {
		k := w.Root.Keys[id]
		s, ok, err := p.Keys.Signer(ctx, k.CanonicalID())
		if err != nil {
			return err
		}
		if ok {
			old = append(old, tuf.Signer{Key: k, Signer: s})
		}
	}
	if len(old) == 0 {
		return fmt.Errorf("%w: the current root key of %s is needed to sign the rotation", ErrNoKey, w.GUN)
	}
	signer, err := newKey(ctx)
	if err != nil {
		return err
	}
	pub, err := keys.FromCrypto(signer.Public())
	if err != nil {
		return err
	}
	for _, o := range old {
		if o.Key.CanonicalID() == pub.ID() {
			return fmt.Errorf("key %s is already the root key of %s; rotate to a new key", pub.ID(), w.GUN)
		}
	}
	now := p.now()
	cert, err := keys.NewRootCertificate(signer, w.GUN, now, now.Add(RootExpiry))
	if err != nil {
		return err
	}
	rootKey, err := keys.FromCertificate(cert)
	if err != nil {
		return err
	}
	if err := w.Apply(append([]changes.Change{changes.RotateKey{Role: tuf.RoleRoot, Keys: []*keys.PublicKey{rootKey}}}, cs...), now); err != nil {
		return err
	}
	w.ExtraRootSigners = old
	return p.upload(ctx, w, now)
}

// Working returns the current state of the repository to change: the
// server's, verified; or for a repository initialised but never published,
// the locally cached one (with root, targets and snapshot marked to upload).
func (p *Publisher) Working(ctx context.Context) (*Working, error) {
	now := p.now
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
	lv := trust.New(p.Reader.Remote.GUN(), now(), trust.Options{})
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

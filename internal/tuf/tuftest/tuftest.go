// Package tuftest builds signed Notary-dialect repositories for tests and
// rewrites them into the broken forms negative tests need (a "swizzler").
// It is imported only from _test.go files.
package tuftest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
)

// Key is a test signing key.
type Key = tuf.Signer

// NewKey makes an ECDSA P-256 key.
func NewKey(t testing.TB) Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keys.FromCrypto(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return Key{Key: pub, Signer: priv}
}

// NewRootKey makes an ECDSA P-256 key wrapped in a self-signed certificate
// for gun, valid from now-1h for ten years, as Notary makes root keys.
func NewRootKey(t testing.TB, gun string, now time.Time) Key {
	t.Helper()
	return NewRootKeyValid(t, gun, now.Add(-time.Hour), now.AddDate(10, 0, 0))
}

// NewRootKeyValid is NewRootKey with explicit validity dates.
func NewRootKeyValid(t testing.TB, gun string, notBefore, notAfter time.Time) Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := keys.NewRootCertificate(priv, gun, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keys.FromCertificate(cert)
	if err != nil {
		t.Fatal(err)
	}
	return Key{Key: pub, Signer: priv}
}

// Repo is a repository under construction: role objects and their keys.
// Fields may be changed freely before signing.
type Repo struct {
	t   testing.TB
	GUN string
	Now time.Time

	Root      tuf.Root
	Targets   map[string]*tuf.Targets // "targets" and delegations
	Snapshot  tuf.Snapshot
	Timestamp tuf.Timestamp

	// Keys holds the signing keys of each role (root, targets, snapshot,
	// timestamp, and delegations).
	Keys map[string][]Key

	// Signed holds the last signed bytes of each role.
	Signed map[string][]byte
}

// NewRepo makes a repository with fresh keys for the four base roles,
// version 1 everywhere and Notary's default expiries.
func NewRepo(t testing.TB, gun string, now time.Time) *Repo {
	t.Helper()
	r := &Repo{t: t, GUN: gun, Now: now, Targets: map[string]*tuf.Targets{}, Keys: map[string][]Key{}, Signed: map[string][]byte{}}
	r.Keys[tuf.RoleRoot] = []Key{NewRootKey(t, gun, now)}
	for _, role := range []string{tuf.RoleTargets, tuf.RoleSnapshot, tuf.RoleTimestamp} {
		r.Keys[role] = []Key{NewKey(t)}
	}
	r.Root = tuf.Root{
		Common: tuf.Common{Type: tuf.TypeRoot, Version: 1, Expires: now.AddDate(10, 0, 0)},
		Keys:   map[string]*keys.PublicKey{},
		Roles:  map[string]*tuf.RoleKeys{},
	}
	for _, role := range tuf.BaseRoles {
		r.SetRoleKeys(role, r.Keys[role]...)
	}
	r.Targets[tuf.RoleTargets] = NewTargets(now.AddDate(3, 0, 0))
	r.Snapshot = tuf.Snapshot{Common: tuf.Common{Type: tuf.TypeSnapshot, Version: 1, Expires: now.AddDate(3, 0, 0)}, Meta: map[string]tuf.FileMeta{}}
	r.Timestamp = tuf.Timestamp{Common: tuf.Common{Type: tuf.TypeTimestamp, Version: 1, Expires: now.AddDate(0, 0, 14)}, Meta: map[string]tuf.FileMeta{}}
	return r
}

// NewTargets returns an empty targets object, version 1.
func NewTargets(expires time.Time) *tuf.Targets {
	return &tuf.Targets{
		Common:      tuf.Common{Type: tuf.TypeTargets, Version: 1, Expires: expires},
		Targets:     map[string]tuf.FileMeta{},
		Delegations: tuf.Delegations{Keys: map[string]*keys.PublicKey{}, Roles: []*tuf.DelegatedRole{}},
	}
}

// SetRoleKeys makes the root list exactly these keys for a base role, with
// threshold 1, and records them as the role's signing keys.
func (r *Repo) SetRoleKeys(role string, ks ...Key) {
	rk := &tuf.RoleKeys{Threshold: 1}
	for _, k := range ks {
		r.Root.Keys[k.Key.ID()] = k.Key
		rk.KeyIDs = append(rk.KeyIDs, k.Key.ID())
	}
	r.Root.Roles[role] = rk
	r.Keys[role] = ks
}

// Delegate adds (or replaces) a delegation of parent to name with fresh key
// and the given paths, and an empty targets object for it.
func (r *Repo) Delegate(name string, paths []string, ks ...Key) Key {
	if len(ks) == 0 {
		ks = []Key{NewKey(r.t)}
	}
	parent := r.Targets[tuf.Parent(name)]
	d := &tuf.DelegatedRole{Name: name, Threshold: 1, Paths: paths}
	for _, k := range ks {
		parent.Delegations.Keys[k.Key.ID()] = k.Key
		d.KeyIDs = append(d.KeyIDs, k.Key.ID())
	}
	parent.Delegations.Roles = slices.DeleteFunc(parent.Delegations.Roles, func(x *tuf.DelegatedRole) bool { return x.Name == name })
	parent.Delegations.Roles = append(parent.Delegations.Roles, d)
	r.Keys[name] = ks
	if r.Targets[name] == nil {
		r.Targets[name] = NewTargets(r.Now.AddDate(3, 0, 0))
	}
	return ks[0]
}

// AddTarget lists a target in a targets role with a sha256 hash of data.
func (r *Repo) AddTarget(role, name string, data []byte) {
	fm := tuf.NewFileMeta(data)
	delete(fm.Hashes, "sha512")
	r.Targets[role].Targets[name] = fm
}

// Sign signs the object of role with the role's keys (or the keys given),
// stores and returns the bytes. A role whose keys are all held elsewhere
// (a server key with no Signer here) is left unsigned and nil returned.
func (r *Repo) Sign(role string, with ...Key) []byte {
	r.t.Helper()
	if len(with) == 0 {
		for _, k := range r.Keys[role] {
			if k.Signer != nil {
				with = append(with, k)
			}
		}
		if len(with) == 0 {
			return nil
		}
	}
	var obj any
	switch role {
	case tuf.RoleRoot:
		obj = &r.Root
	case tuf.RoleSnapshot:
		obj = &r.Snapshot
	case tuf.RoleTimestamp:
		obj = &r.Timestamp
	default:
		obj = r.Targets[role]
	}
	b, err := tuf.Sign(obj, with...)
	if err != nil {
		r.t.Fatal(err)
	}
	r.Signed[role] = b
	return b
}

// SignSnapshot lists the last signed bytes of root and every targets role
// in the snapshot, then signs it.
func (r *Repo) SignSnapshot() []byte {
	for role, b := range r.Signed {
		if b != nil && role != tuf.RoleSnapshot && role != tuf.RoleTimestamp {
			r.Snapshot.Meta[role] = tuf.NewFileMeta(b)
		}
	}
	return r.Sign(tuf.RoleSnapshot)
}

// SignTimestamp lists the last signed snapshot and signs the timestamp.
func (r *Repo) SignTimestamp() []byte {
	if r.Signed[tuf.RoleSnapshot] == nil {
		return nil
	}
	r.Timestamp.Meta = map[string]tuf.FileMeta{tuf.RoleSnapshot: tuf.NewFileMeta(r.Signed[tuf.RoleSnapshot])}
	return r.Sign(tuf.RoleTimestamp)
}

// SignAll signs root, every targets role (parents first), snapshot and
// timestamp.
func (r *Repo) SignAll() {
	r.Sign(tuf.RoleRoot)
	roles := slices.Collect(maps.Keys(r.Targets))
	slices.SortFunc(roles, func(a, b string) int { return tuf.Depth(a) - tuf.Depth(b) })
	for _, role := range roles {
		r.Sign(role)
	}
	r.SignSnapshot()
	r.SignTimestamp()
}

// Bump increments the version of a role's object.
func (r *Repo) Bump(role string) {
	switch role {
	case tuf.RoleRoot:
		r.Root.Version++
	case tuf.RoleSnapshot:
		r.Snapshot.Version++
	case tuf.RoleTimestamp:
		r.Timestamp.Version++
	default:
		r.Targets[role].Version++
	}
}

// Signer turns a crypto.Signer and its metadata key into a Key.
func Signer(pub *keys.PublicKey, s crypto.Signer) Key { return Key{Key: pub, Signer: s} }

// Swizzle decodes a signed file, lets edit change the signed object (as
// generic JSON), and re-encodes it keeping the original signatures, which
// then no longer match.
func Swizzle(t testing.TB, file []byte, edit func(signed map[string]any)) []byte {
	t.Helper()
	var env struct {
		Signed     map[string]any  `json:"signed"`
		Signatures json.RawMessage `json:"signatures"`
	}
	if err := json.Unmarshal(file, &env); err != nil {
		t.Fatal(err)
	}
	edit(env.Signed)
	out, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

package trust_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

const gun = "example.com/test/app"

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func newRepo(t *testing.T) *tuftest.Repo {
	r := tuftest.NewRepo(t, gun, now)
	r.Delegate("targets/releases", []string{""})
	r.AddTarget("targets/releases", "v1", []byte("one"))
	r.SignAll()
	return r
}

func loadAll(v *trust.Repo, r *tuftest.Repo) error {
	steps := []func() error{
		func() error { return v.LoadRoot(r.Signed["root"]) },
		func() error { return v.LoadTimestamp(r.Signed["timestamp"]) },
		func() error { return v.LoadSnapshot(r.Signed["snapshot"]) },
		func() error { return v.LoadTargets("targets", r.Signed["targets"]) },
		func() error { return v.LoadTargets("targets/releases", r.Signed["targets/releases"]) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

func TestLoadValidRepository(t *testing.T) {
	r := newRepo(t)
	v := trust.New(gun, now, trust.Options{})
	if err := loadAll(v, r); err != nil {
		t.Fatalf("valid repository refused: %v", err)
	}
	if got := v.Targets("targets/releases").Signed.Targets["v1"].Length; got != 3 {
		t.Errorf("v1 length %d", got)
	}
}

func wantStep(t *testing.T, err error, role string, rule error, msgPart string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want %v at step %s", rule, role)
	}
	var se *trust.StepError
	if !errors.As(err, &se) || se.Role != role {
		t.Fatalf("error %v does not name step %s", err, role)
	}
	if !errors.Is(err, rule) || !errors.Is(err, trust.ErrVerify) {
		t.Fatalf("error %v is not %v", err, rule)
	}
	if !strings.Contains(err.Error(), msgPart) {
		t.Fatalf("error %q does not say %q", err, msgPart)
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name    string
		attack  func(t *testing.T, r *tuftest.Repo)
		opts    trust.Options
		role    string
		rule    error
		msgPart string
	}{
		{"root for another GUN", func(t *testing.T, r *tuftest.Repo) {
			r.SetRoleKeys("root", tuftest.NewRootKey(t, "example.com/other", now))
			r.SignAll()
		}, trust.Options{}, "root", trust.ErrRootCert, `is for "example.com/other"`},
		{"root certificate expired", func(t *testing.T, r *tuftest.Repo) {
			r.SetRoleKeys("root", tuftest.NewRootKeyValid(t, gun, now.AddDate(-2, 0, 0), now.AddDate(0, 0, -1)))
			r.SignAll()
		}, trust.Options{}, "root", trust.ErrRootCert, "expired"},
		{"root key not a certificate", func(t *testing.T, r *tuftest.Repo) {
			r.SetRoleKeys("root", tuftest.NewKey(t))
			r.SignAll()
		}, trust.Options{}, "root", trust.ErrRootCert, "unable to retrieve valid leaf certificates"},
		{"root signed by another key", func(t *testing.T, r *tuftest.Repo) {
			r.Sign("root", tuftest.NewRootKey(t, gun, now))
		}, trust.Options{}, "root", trust.ErrSignatures, "threshold"},
		{"root expired", func(t *testing.T, r *tuftest.Repo) {
			r.Root.Expires = now.Add(-time.Second)
			r.SignAll()
		}, trust.Options{}, "root", trust.ErrExpired, "expired"},
		{"root tampered after signing", func(t *testing.T, r *tuftest.Repo) {
			r.Signed["root"] = tuftest.Swizzle(t, r.Signed["root"], func(s map[string]any) { s["version"] = 7 })
		}, trust.Options{}, "root", trust.ErrSignatures, "threshold"},
		{"timestamp by snapshot key", func(t *testing.T, r *tuftest.Repo) {
			r.Sign("timestamp", r.Keys["snapshot"]...)
		}, trust.Options{}, "timestamp", trust.ErrSignatures, "threshold for timestamp"},
		{"timestamp freeze", func(t *testing.T, r *tuftest.Repo) {
			r.Timestamp.Expires = now.Add(-time.Minute)
			r.SignTimestamp()
		}, trust.Options{}, "timestamp", trust.ErrExpired, "timestamp expired"},
		{"timestamp rollback", func(t *testing.T, r *tuftest.Repo) {}, trust.Options{MinVersions: map[string]int{"timestamp": 2}}, "timestamp", trust.ErrRollback, "lower than the trusted version 2"},
		{"snapshot not the one timestamped (mix and match)", func(t *testing.T, r *tuftest.Repo) {
			r.Bump("snapshot")
			r.Sign("snapshot")
		}, trust.Options{}, "snapshot", trust.ErrHashMismatch, "does not match the timestamp"},
		{"snapshot rollback", func(t *testing.T, r *tuftest.Repo) {}, trust.Options{MinVersions: map[string]int{"snapshot": 3}}, "snapshot", trust.ErrRollback, "snapshot version 1"},
		{"targets not the one in snapshot", func(t *testing.T, r *tuftest.Repo) {
			r.AddTarget("targets", "evil", []byte("x"))
			r.Sign("targets")
		}, trust.Options{}, "targets", trust.ErrHashMismatch, "does not match the snapshot"},
		{"targets signed by delegation key", func(t *testing.T, r *tuftest.Repo) {
			r.Sign("targets", r.Keys["targets/releases"]...)
			r.SignSnapshot()
			r.SignTimestamp()
		}, trust.Options{}, "targets", trust.ErrSignatures, "threshold for targets"},
		{"targets expired", func(t *testing.T, r *tuftest.Repo) {
			r.Targets["targets"].Expires = now.Add(-time.Hour)
			r.SignAll()
		}, trust.Options{}, "targets", trust.ErrExpired, "targets expired"},
		{"delegation signed by another delegate", func(t *testing.T, r *tuftest.Repo) {
			r.Delegate("targets/alice", []string{""})
			r.Sign("targets")
			r.Sign("targets/releases", r.Keys["targets/alice"]...)
			r.SignSnapshot()
			r.SignTimestamp()
		}, trust.Options{}, "targets/releases", trust.ErrSignatures, "threshold for targets/releases"},
		{"delegate outside its paths", func(t *testing.T, r *tuftest.Repo) {
			r.Delegate("targets/releases", []string{"team/"}, r.Keys["targets/releases"]...)
			r.SignAll()
		}, trust.Options{EnforcePaths: true}, "targets/releases", trust.ErrPathNotAllowed, `lists v1`},
		{"below threshold of two", func(t *testing.T, r *tuftest.Repo) {
			k1, k2 := tuftest.NewKey(t), tuftest.NewKey(t)
			r.Delegate("targets/releases", []string{""}, k1, k2)
			r.Targets["targets"].Delegations.Roles[0].Threshold = 2
			r.Sign("targets")
			r.Sign("targets/releases", k1, k1)
			r.SignSnapshot()
			r.SignTimestamp()
		}, trust.Options{}, "targets/releases", trust.ErrSignatures, "threshold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRepo(t)
			tt.attack(t, r)
			err := loadAll(trust.New(gun, now, tt.opts), r)
			wantStep(t, err, tt.role, tt.rule, tt.msgPart)
		})
	}
}

func TestThresholdTwoMet(t *testing.T) {
	r := newRepo(t)
	k1, k2 := tuftest.NewKey(t), tuftest.NewKey(t)
	r.Delegate("targets/releases", []string{""}, k1, k2)
	r.Targets["targets"].Delegations.Roles[0].Threshold = 2
	r.Sign("targets")
	r.Sign("targets/releases", k1, k2)
	r.SignSnapshot()
	r.SignTimestamp()
	if err := loadAll(trust.New(gun, now, trust.Options{}), r); err != nil {
		t.Fatal(err)
	}
}

func TestOrder(t *testing.T) {
	r := newRepo(t)
	v := trust.New(gun, now, trust.Options{})
	wantStep(t, v.LoadTargets("targets", r.Signed["targets"]), "targets", trust.ErrOrder, "no trusted root")
	if err := v.LoadRoot(r.Signed["root"]); err != nil {
		t.Fatal(err)
	}
	wantStep(t, v.LoadTargets("targets/releases", r.Signed["targets/releases"]), "targets/releases", trust.ErrOrder, "parent role targets")
	if err := v.LoadTargets("targets", r.Signed["targets"]); err != nil {
		t.Fatal(err)
	}
	wantStep(t, v.LoadTargets("targets/nobody", r.Signed["targets/releases"]), "targets/nobody", trust.ErrUnknownRole, "not delegated")
}

func TestRootRotation(t *testing.T) {
	r := newRepo(t)
	old := r.Keys["root"]
	newKey := tuftest.NewRootKey(t, gun, now)

	t.Run("chain", func(t *testing.T) {
		v := trust.New(gun, now, trust.Options{})
		if err := v.LoadRoot(r.Signed["root"]); err != nil {
			t.Fatal(err)
		}
		v1 := r.Signed["root"]
		r.SetRoleKeys("root", newKey)
		r.Bump("root")
		onlyNew := r.Sign("root", newKey)
		wantStep(t, v.LoadRoot(onlyNew), "root", trust.ErrSignatures, "could not rotate trust")
		both := r.Sign("root", append(old, newKey)...)
		if err := v.LoadRoot(both); err != nil {
			t.Fatalf("rotation signed by old and new refused: %v", err)
		}
		wantStep(t, v.LoadRoot(v1), "root", trust.ErrRollback, "not newer")
		if v.Timestamp() != nil || len(v.TargetsRoles()) != 0 {
			t.Error("state signed under the old root survived rotation")
		}
	})
}

func TestPathsNarrowedByParent(t *testing.T) {
	r := newRepo(t)
	r.Delegate("targets/team", []string{"team/"})
	r.Delegate("targets/team/a", []string{"team/a/", "other/"})
	r.AddTarget("targets/team/a", "other/x", []byte("x"))
	r.SignAll()
	v := trust.New(gun, now, trust.Options{EnforcePaths: true})
	for _, step := range []func() error{
		func() error { return v.LoadRoot(r.Signed["root"]) },
		func() error { return v.LoadTargets("targets", r.Signed["targets"]) },
		func() error { return v.LoadTargets("targets/team", r.Signed["targets/team"]) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if got := v.Paths("targets/team/a"); len(got) != 1 || got[0] != "team/a/" {
		t.Fatalf("paths %q, want only team/a/", got)
	}
	wantStep(t, v.LoadTargets("targets/team/a", r.Signed["targets/team/a"]), "targets/team/a", trust.ErrPathNotAllowed, "other/x")
	_ = tuf.RoleRoot
}

func TestMatchesGUN(t *testing.T) {
	for _, tc := range []struct {
		pattern, gun string
		want         bool
	}{
		{gun, gun, true},
		{"example.com/test/*", gun, true},
		{"example.com/*", gun, true},
		{"*", gun, true},
		{"example.com/test/app*", gun, true},
		{"example.com/test/ap", gun, false}, // a prefix without "*"
		{"example.com/other/*", gun, false}, // another namespace
		{"example.com/test/app/x", gun, false},
		{"example.com/test/**", gun, false}, // one "*" only: the prefix keeps the other
		{"", gun, false},
	} {
		if got := trust.MatchesGUN(tc.pattern, tc.gun); got != tc.want {
			t.Errorf("MatchesGUN(%q, %q) = %v, want %v", tc.pattern, tc.gun, got, tc.want)
		}
	}
}

// pinIDs pins the root key IDs it holds; on first use only, when firstOnly.
type pinIDs struct {
	ids       map[string]bool
	firstOnly bool
	calls     []bool
}

func (p *pinIDs) PinRoot(g string, first bool, valid map[string]*keys.PublicKey) (map[string]*keys.PublicKey, error) {
	p.calls = append(p.calls, first)
	if g != gun {
		return nil, errors.New("wrong GUN")
	}
	if p.firstOnly && !first {
		return valid, nil
	}
	out := map[string]*keys.PublicKey{}
	for id, k := range valid {
		if p.ids[id] {
			out[id] = k
		}
	}
	return out, nil
}

// TestRootPin: only pinned certificates count towards the root's threshold
// (notary's ValidateRoot prunes the others before it checks signatures), a
// pin that accepts nothing refuses the root, and the pin is asked on every
// root load with first telling trust on first use from a rotation.
func TestRootPin(t *testing.T) {
	r := newRepo(t)
	pinned, other := r.Keys["root"][0], tuftest.NewRootKey(t, gun, now)
	r.SetRoleKeys("root", pinned, other)
	r.SignAll()
	pin := &pinIDs{ids: map[string]bool{pinned.Key.ID(): true}}

	v := trust.New(gun, now, trust.Options{RootPin: pin})
	if err := loadAll(v, r); err != nil {
		t.Fatalf("root signed by the pinned key refused: %v", err)
	}
	if len(pin.calls) != 1 || !pin.calls[0] {
		t.Fatalf("pin calls %v, want one first-use call", pin.calls)
	}

	// Signed only by the key that is not pinned: the threshold of 1 is met
	// by a valid certificate, but not by a pinned one.
	onlyOther := tuftest.NewRepo(t, gun, now)
	onlyOther.SetRoleKeys("root", pinned, other)
	onlyOther.Sign("root", other)
	v = trust.New(gun, now, trust.Options{RootPin: pin})
	wantStep(t, v.LoadRoot(onlyOther.Signed["root"]), "root", trust.ErrSignatures, "could not validate the path to a trusted root")

	// Nothing pinned matches.
	v = trust.New(gun, now, trust.Options{RootPin: &pinIDs{ids: map[string]bool{}}})
	wantStep(t, v.LoadRoot(r.Signed["root"]), "root", trust.ErrRootCert, "pinned trust")
	if v.Root() != nil {
		t.Fatal("a refused root was trusted")
	}

	// Rotation: the pin is asked again, with first unset; SetRootPin(nil)
	// loads the next root unpinned.
	v = trust.New(gun, now, trust.Options{RootPin: pin})
	if err := v.LoadRoot(r.Signed["root"]); err != nil {
		t.Fatal(err)
	}
	next := tuftest.NewRootKey(t, gun, now)
	r.SetRoleKeys("root", next)
	r.Bump("root")
	r.Sign("root", pinned, next)
	wantStep(t, v.LoadRoot(r.Signed["root"]), "root", trust.ErrRootCert, "pinned trust")
	if got := pin.calls[len(pin.calls)-1]; got {
		t.Fatal("a rotation was asked as trust on first use")
	}
	v.SetRootPin(nil)
	if err := v.LoadRoot(r.Signed["root"]); err != nil {
		t.Fatalf("unpinned rotation refused: %v", err)
	}
}

func TestRoleTarget(t *testing.T) {
	r := newRepo(t)
	r.Delegate("targets/team", []string{"team/"})
	r.AddTarget("targets/team", "team/app", []byte("app"))
	r.AddTarget("targets/team", "other", []byte("outside"))
	r.SignAll()
	v := trust.New(gun, now, trust.Options{})
	if err := loadAll(v, r); err != nil {
		t.Fatal(err)
	}
	if err := v.LoadTargets("targets/team", r.Signed["targets/team"]); err != nil {
		t.Fatal(err)
	}
	if fm, ok := v.RoleTarget("targets/team", "team/app"); !ok || fm.Length != 3 {
		t.Errorf("team/app: %+v %v", fm, ok)
	}
	if _, ok := v.RoleTarget("targets/team", "other"); ok {
		t.Error("a target outside the delegated paths was returned")
	}
	if _, ok := v.RoleTarget("targets", "v1"); ok {
		t.Error("RoleTarget walked into a delegation")
	}
	if _, ok := v.RoleTarget("targets/none", "v1"); ok {
		t.Error("a role that is not loaded listed a target")
	}
}

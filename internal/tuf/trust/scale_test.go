package trust_test

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// delegationUpload is what one upload of n delegations holds, as the server
// validates it: targets delegating to groups of at most tuf.MaxDelegations
// roles each (targets/gNNN), each group delegating to its share of the n
// leaves (targets/gNNN/sNNNNNN), and every file of the tree.
type delegationUpload struct {
	root  []byte
	roles []string
	files map[string][]byte
}

func newDelegationUpload(t testing.TB, n int) *delegationUpload {
	t.Helper()
	r := tuftest.NewRepo(t, gun, now)
	k := tuftest.NewKey(t)
	u := &delegationUpload{files: map[string][]byte{}}
	delegate := func(parent *tuf.Targets, name string) {
		parent.Delegations.Keys[k.Key.ID()] = k.Key
		parent.Delegations.Roles = append(parent.Delegations.Roles, &tuf.DelegatedRole{Name: name, KeyIDs: []string{k.Key.ID()}, Threshold: 1, Paths: []string{""}})
		u.roles = append(u.roles, name)
	}
	groups := map[string]*tuf.Targets{}
	for i := range n {
		group := fmt.Sprintf("targets/g%03d", i/tuf.MaxDelegations)
		if groups[group] == nil {
			groups[group] = tuftest.NewTargets(now.AddDate(1, 0, 0))
			delegate(r.Targets[tuf.RoleTargets], group)
		}
		delegate(groups[group], fmt.Sprintf("%s/s%06d", group, i))
	}
	u.root = r.Sign(tuf.RoleRoot)
	u.files[tuf.RoleTargets] = r.Sign(tuf.RoleTargets)
	u.roles = append(u.roles, tuf.RoleTargets)
	sign := func(tg *tuf.Targets) []byte {
		b, err := tuf.Sign(tg, k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	leaf := sign(tuftest.NewTargets(now.AddDate(1, 0, 0)))
	for _, role := range u.roles {
		if u.files[role] != nil {
			continue
		}
		if g := groups[role]; g != nil {
			u.files[role] = sign(g)
		} else {
			u.files[role] = leaf
		}
	}
	return u
}

// cpuTime is the CPU time this process has used: unlike the wall clock, it
// does not grow when other processes on a shared machine take the CPU.
func cpuTime(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// load validates the upload as the server does (parents first, paths
// enforced) and returns the CPU time it took.
func (u *delegationUpload) load(t testing.TB) time.Duration {
	t.Helper()
	start := cpuTime(t)
	v := trust.New(gun, now, trust.Options{EnforcePaths: true})
	if err := v.LoadRoot(u.root); err != nil {
		t.Fatal(err)
	}
	roles := slices.Clone(u.roles)
	slices.SortFunc(roles, func(a, b string) int {
		if d := tuf.Depth(a) - tuf.Depth(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	for _, role := range roles {
		if err := v.LoadTargets(role, u.files[role]); err != nil {
			t.Fatal(err)
		}
	}
	return cpuTime(t) - start
}

// Finding 3 of issue 10: validating n delegations costs O(n). Before the
// fix (a scan of the parent's delegations per role, string building per
// loaded role) 1,000 took 0.1 s of CPU and 8,000 1.3 s, 13 times as much
// for 8 times the roles, and 16,000 about 37 times as much; linear is 16
// times. CPU time is measured, and the bound leaves room for noise but not
// for quadratic growth.
func TestDelegationValidationIsLinear(t *testing.T) {
	best := func(u *delegationUpload) time.Duration {
		return min(u.load(t), u.load(t))
	}
	small, large := newDelegationUpload(t, 1000), newDelegationUpload(t, 16000)
	ts, tl := best(small), best(large)
	ratio := float64(tl) / float64(ts)
	t.Logf("1,000 delegations: %v; 16,000: %v; ratio %.1f (linear: 16)", ts, tl, ratio)
	if ratio > 24 {
		t.Fatalf("16,000 delegations took %.1f times as long as 1,000: super-linear", ratio)
	}
}

// BenchmarkLoadDelegations reports the cost per delegation of one upload
// of n delegations (run with -benchtime=1x for the sizes).
func BenchmarkLoadDelegations(b *testing.B) {
	for _, n := range []int{2000, 16000, 40000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			u := newDelegationUpload(b, n)
			b.ResetTimer()
			for range b.N {
				u.load(b)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delegation")
		})
	}
}

package client_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// BenchmarkListTargets10000 is the client's own work in `signet list` of
// the client benchmark's repository (bench/run.sh: 10,000 tags in the
// targets role, sha256 only, as notaryload setup publishes them): verify
// root, timestamp, snapshot and a targets.json of about 1.5 MB through the
// state machine, then list the targets. The network, the cache and the
// output are not in it.
//
//	go test -run '^$' -bench ListTargets10000 -benchmem ./internal/client
func BenchmarkListTargets10000(b *testing.B) {
	const n = 10000
	now := time.Now()
	r := tuftest.NewRepo(b, "example.com/bench/tags10000", now)
	for i := range n {
		tag := fmt.Sprintf("v1.%d.0", i)
		r.AddTarget(tuf.RoleTargets, tag, []byte("manifest of example.com/bench/tags10000:"+tag))
	}
	r.SignAll()
	root, ts, snap, targets := r.Signed[tuf.RoleRoot], r.Signed[tuf.RoleTimestamp], r.Signed[tuf.RoleSnapshot], r.Signed[tuf.RoleTargets]
	b.SetBytes(int64(len(targets)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		v := trust.New(r.GUN, now, trust.Options{})
		for _, step := range []struct {
			load func([]byte) error
			raw  []byte
		}{{v.LoadRoot, root}, {v.LoadTimestamp, ts}, {v.LoadSnapshot, snap}, {func(b []byte) error { return v.LoadTargets(tuf.RoleTargets, b) }, targets}} {
			if err := step.load(step.raw); err != nil {
				b.Fatal(err)
			}
		}
		if got := client.ListTargets(v); len(got) != n {
			b.Fatalf("listed %d targets, want %d", len(got), n)
		}
	}
}

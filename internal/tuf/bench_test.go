package tuf_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// bigTargets signs a targets file listing n targets (about 200 bytes each
// once signed), the shape of a busy Docker repository.
func bigTargets(b *testing.B, n int) ([]byte, tuftest.Key) {
	r := tuftest.NewRepo(b, "example.com/bench/app", time.Now())
	for i := range n {
		r.AddTarget(tuf.RoleTargets, fmt.Sprintf("tag-%06d", i), []byte(fmt.Sprint(i)))
	}
	return r.Sign(tuf.RoleTargets), r.Keys[tuf.RoleTargets][0]
}

// BenchmarkVerifyTargets is what the upload path and the client pay per
// targets file: parse it, then verify its signature over the canonical form
// Notary computes.
func BenchmarkVerifyTargets(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			raw, k := bigTargets(b, n)
			ks := map[string]*keys.PublicKey{k.Key.ID(): k.Key}
			ids := []string{k.Key.ID()}
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				m, err := tuf.ParseTargets(tuf.RoleTargets, raw)
				if err != nil {
					b.Fatal(err)
				}
				if err := tuf.VerifySignatures(m, ids, 1, ks); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

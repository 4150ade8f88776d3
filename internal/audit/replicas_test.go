package audit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/audit/audittest"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

// TestReplicasPostgres runs two logs on two store handles of one
// PostgreSQL database, appending concurrently on both; the integrator
// leader is stopped in the middle so the other takes over. The result is
// one consistent log without gaps holding every append exactly once.
func TestReplicasPostgres(t *testing.T) {
	url := e2etest.PostgresDB(t, "signet_audit_replicas_")
	key := newKey(t)
	stores := []audit.Store{openStore(t, url).AuditLog(), openStore(t, url).AuditLog()}
	logs := make([]*audit.Log, 2)
	stops := make([]func(), 2)
	for i := range logs {
		logs[i] = newLog(t, stores[i], key, func(c *audit.Config) {
			c.Holder = []string{"replica-a", "replica-b"}[i]
			c.LeaseTTL = 600 * time.Millisecond
			c.MaxBatch = 64 // many batches, so both integrate
		})
		stops[i] = run(t, logs[i])
	}

	var (
		mu       sync.Mutex
		appended []audit.Appended
		stopped  atomic.Int32
		wg       sync.WaitGroup
	)
	stopped.Store(-1)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for r := range 2 {
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 250 {
					a, err := logs[r].Append(ctx, event(r*100000+w*1000+i))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					appended = append(appended, a)
					n := len(appended)
					mu.Unlock()
					if n == 1000 {
						// Stop whichever replica leads now.
						for j, l := range logs {
							if l.Status().Leader && stopped.CompareAndSwap(-1, int32(j)) {
								go stops[j]()
							}
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	s := stopped.Load()
	if s < 0 {
		t.Fatal("no replica was leading at the 1000th append")
	}
	survivor := logs[1-s]
	awaitAll(t, survivor, appended)

	for i, l := range logs {
		t.Logf("replica %d: integrated %d entries in %d batches", i, l.Status().Integrated, l.Status().Batches)
	}
	if logs[s].Status().Integrated == 0 || survivor.Status().Integrated == 0 {
		t.Fatal("the integrator lease did not move from the stopped leader to the other replica")
	}
	// (The stopped replica may not have counted a batch whose commit raced
	// with its stop; the log itself is checked below.)
	if got := logs[0].Status().Integrated + logs[1].Status().Integrated; got > int64(len(appended)) {
		t.Fatalf("the replicas integrated %d entries, %d were appended", got, len(appended))
	}

	srv := serve(t, stores[1-s], survivor.VerifierKey())
	r, err := audittest.Verify(t.Context(), srv.Client(), srv.URL+"/audit/", survivor.VerifierKey(), nil)
	if err != nil {
		t.Fatalf("outside verifier: %v", err)
	}
	if r.Size != int64(len(appended)) {
		t.Fatalf("log of %d entries, %d appended", r.Size, len(appended))
	}
	inLog := map[audit.Hash]int{}
	for _, e := range r.Entries {
		inLog[audit.LeafHash(e)]++
	}
	for _, a := range appended {
		if inLog[a.LeafHash] != 1 {
			t.Fatalf("entry %s is in the log %d times", a.Entry, inLog[a.LeafHash])
		}
	}
	if err := survivor.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
}

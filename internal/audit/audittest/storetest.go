package audittest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
)

// RunStore runs the audit.Store conformance suite. open returns a new,
// empty store each time (a fresh database).
func RunStore(t *testing.T, open func(t *testing.T) audit.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s audit.Store)
	}{
		{"Empty", testEmpty},
		{"AddPending", testAddPending},
		{"IntegrateWrites", testIntegrateWrites},
		{"IntegrateNothing", testIntegrateNothing},
		{"IntegrateError", testIntegrateError},
		{"IntegrateLimit", testIntegrateLimit},
		{"IntegrateContract", testIntegrateContract},
		{"TilesGrow", testTilesGrow},
		{"Checkpoint", testCheckpoint},
		{"CheckpointWithBatch", testCheckpointWithBatch},
		{"Lease", testLease},
		{"LeaseExpiry", testLeaseExpiry},
		{"Concurrent", testConcurrent},
		{"ContextCanceled", testContextCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func testEmpty(t *testing.T, s audit.Store) {
	ctx := t.Context()
	st, err := s.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != 0 || st.Root != audit.EmptyRoot || st.Checkpoint != nil || st.CheckpointSize != 0 {
		t.Fatalf("new store state = %+v, want empty tree without checkpoint", st)
	}
	if _, err := s.Tile(ctx, 0, 0); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("Tile of an empty store: %v, want ErrNotFound", err)
	}
	if es, err := s.Entries(ctx, 0, 10); err != nil || len(es) != 0 {
		t.Fatalf("Entries of an empty store = %d, %v", len(es), err)
	}
	if _, err := s.IndexOf(ctx, 1); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("IndexOf of an empty store: %v, want ErrNotFound", err)
	}
	if n, err := s.PendingCount(ctx); err != nil || n != 0 {
		t.Fatalf("PendingCount = %d, %v", n, err)
	}
	if ids, err := s.AddPending(ctx, nil); err != nil || len(ids) != 0 {
		t.Fatalf("AddPending(nil) = %v, %v", ids, err)
	}
}

func entry(i int) []byte { return fmt.Appendf(nil, `{"n":%d,"bin":"\u0000\u00ff"}`, i) }

func addPending(t *testing.T, s audit.Store, entries ...[]byte) []int64 {
	t.Helper()
	ids, err := s.AddPending(t.Context(), entries)
	if err != nil {
		t.Fatalf("AddPending: %v", err)
	}
	if len(ids) != len(entries) {
		t.Fatalf("AddPending returned %d IDs for %d entries", len(ids), len(entries))
	}
	return ids
}

func testAddPending(t *testing.T, s audit.Store) {
	a := addPending(t, s, entry(0), entry(1), entry(2))
	b := addPending(t, s, entry(3), []byte{})
	all := append(a, b...)
	for i := 1; i < len(all); i++ {
		if all[i] <= all[i-1] {
			t.Fatalf("append IDs %v do not grow in order", all)
		}
	}
	if n, err := s.PendingCount(t.Context()); err != nil || n != 5 {
		t.Fatalf("PendingCount = %d, %v, want 5", n, err)
	}
	// Taken in ID order, byte for byte.
	var got []audit.Pending
	integrate(t, s, 100, func(st audit.TreeState, p []audit.Pending) *audit.Batch {
		got = p
		return nil
	})
	if len(got) != 5 {
		t.Fatalf("took %d pending entries, want 5", len(got))
	}
	want := [][]byte{entry(0), entry(1), entry(2), entry(3), {}}
	for i, p := range got {
		if p.ID != all[i] || !bytes.Equal(p.Data, want[i]) {
			t.Fatalf("pending %d = (%d, %q), want (%d, %q)", i, p.ID, p.Data, all[i], want[i])
		}
	}
}

// integrate runs one integration whose batch fn computes from the state
// and the pending entries.
func integrate(t *testing.T, s audit.Store, limit int, fn func(audit.TreeState, []audit.Pending) *audit.Batch) bool {
	t.Helper()
	wrote, err := s.Integrate(t.Context(), limit, func(_ context.Context, st audit.TreeState, p []audit.Pending, _ func(int, uint64) ([]byte, error)) (*audit.Batch, error) {
		return fn(st, p), nil
	})
	if err != nil {
		t.Fatalf("Integrate: %v", err)
	}
	return wrote
}

// simpleBatch integrates every pending entry, with a fake root and one
// level-0 tile of leaf hashes (the store does not check hashes).
func simpleBatch(st audit.TreeState, p []audit.Pending) *audit.Batch {
	b := &audit.Batch{Size: st.Size + uint64(len(p))}
	for i, e := range p {
		b.Entries = append(b.Entries, audit.Entry{Index: st.Size + uint64(i), AppendID: e.ID, Data: e.Data})
	}
	b.Root = sha256.Sum256(fmt.Appendf(nil, "root %d", b.Size))
	return b
}

func testIntegrateWrites(t *testing.T, s audit.Store) {
	ctx := t.Context()
	ids := addPending(t, s, entry(0), entry(1), entry(2))
	var seen audit.TreeState
	wrote := integrate(t, s, 10, func(st audit.TreeState, p []audit.Pending) *audit.Batch {
		seen = st
		b := simpleBatch(st, p)
		b.Tiles = []audit.TileData{{Level: 0, Index: 0, Hashes: bytes.Repeat([]byte{7}, 3*audit.HashSize)}}
		return b
	})
	if !wrote {
		t.Fatal("Integrate reported nothing written")
	}
	if seen.Size != 0 {
		t.Fatalf("integration saw size %d, want 0", seen.Size)
	}
	st, err := s.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != 3 || st.Root != sha256.Sum256([]byte("root 3")) {
		t.Fatalf("state after integration = %d %s", st.Size, st.Root)
	}
	es, err := s.Entries(ctx, 0, 10)
	if err != nil || len(es) != 3 {
		t.Fatalf("Entries = %d, %v", len(es), err)
	}
	for i, e := range es {
		if e.Index != uint64(i) || e.AppendID != ids[i] || !bytes.Equal(e.Data, entry(i)) {
			t.Fatalf("entry %d = %+v", i, e)
		}
		if idx, err := s.IndexOf(ctx, ids[i]); err != nil || idx != uint64(i) {
			t.Fatalf("IndexOf(%d) = %d, %v, want %d", ids[i], idx, err, i)
		}
	}
	if es, err := s.Entries(ctx, 1, 1); err != nil || len(es) != 1 || es[0].Index != 1 {
		t.Fatalf("Entries(1, 1) = %+v, %v", es, err)
	}
	tile, err := s.Tile(ctx, 0, 0)
	if err != nil || !bytes.Equal(tile, bytes.Repeat([]byte{7}, 3*audit.HashSize)) {
		t.Fatalf("Tile(0, 0) = %x, %v", tile, err)
	}
	if n, err := s.PendingCount(ctx); err != nil || n != 0 {
		t.Fatalf("PendingCount after integration = %d, %v", n, err)
	}
	// The next integration starts from the new size.
	addPending(t, s, entry(3))
	integrate(t, s, 10, func(st audit.TreeState, p []audit.Pending) *audit.Batch {
		seen = st
		return simpleBatch(st, p)
	})
	if seen.Size != 3 || seen.Root != sha256.Sum256([]byte("root 3")) {
		t.Fatalf("second integration saw %d %s", seen.Size, seen.Root)
	}
	if idx, err := s.IndexOf(ctx, ids[2]+1000); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("IndexOf(unknown) = %d, %v", idx, err)
	}
}

func testIntegrateNothing(t *testing.T, s audit.Store) {
	addPending(t, s, entry(0), entry(1))
	if integrate(t, s, 10, func(audit.TreeState, []audit.Pending) *audit.Batch { return nil }) {
		t.Fatal("Integrate reported a write for a nil batch")
	}
	checkUnchanged(t, s, 2)
}

// checkUnchanged checks that nothing was integrated and pending entries
// are all still there.
func checkUnchanged(t *testing.T, s audit.Store, pending int64) {
	t.Helper()
	ctx := t.Context()
	if n, err := s.PendingCount(ctx); err != nil || n != pending {
		t.Fatalf("PendingCount = %d, %v, want %d", n, err, pending)
	}
	st, err := s.State(ctx)
	if err != nil || st.Size != 0 || st.Root != audit.EmptyRoot {
		t.Fatalf("state = %+v, %v, want the empty tree", st, err)
	}
	if es, err := s.Entries(ctx, 0, 100); err != nil || len(es) != 0 {
		t.Fatalf("Entries = %d, %v, want none", len(es), err)
	}
	if _, err := s.Tile(ctx, 0, 0); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("Tile(0, 0): %v, want ErrNotFound", err)
	}
}

func testIntegrateError(t *testing.T, s audit.Store) {
	addPending(t, s, entry(0), entry(1))
	boom := errors.New("boom")
	_, err := s.Integrate(t.Context(), 10, func(context.Context, audit.TreeState, []audit.Pending, func(int, uint64) ([]byte, error)) (*audit.Batch, error) {
		return nil, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Integrate: %v, want the function's error", err)
	}
	checkUnchanged(t, s, 2)
}

func testIntegrateLimit(t *testing.T, s audit.Store) {
	ids := addPending(t, s, entry(0), entry(1), entry(2), entry(3), entry(4))
	var took []int64
	integrate(t, s, 2, func(st audit.TreeState, p []audit.Pending) *audit.Batch {
		for _, e := range p {
			took = append(took, e.ID)
		}
		return simpleBatch(st, p)
	})
	if len(took) != 2 || took[0] != ids[0] || took[1] != ids[1] {
		t.Fatalf("limit 2 took %v, want the first two of %v", took, ids)
	}
	if n, _ := s.PendingCount(t.Context()); n != 3 {
		t.Fatalf("PendingCount = %d, want 3", n)
	}
}

func testIntegrateContract(t *testing.T, s audit.Store) {
	addPending(t, s, entry(0), entry(1), entry(2))
	bad := map[string]func(*audit.Batch){
		"drops an entry": func(b *audit.Batch) { b.Entries = b.Entries[:2]; b.Size-- },
		"gap in indexes": func(b *audit.Batch) { b.Entries[1].Index = 7 },
		"swapped append IDs": func(b *audit.Batch) {
			b.Entries[0].AppendID, b.Entries[1].AppendID = b.Entries[1].AppendID, b.Entries[0].AppendID
		},
		"wrong size": func(b *audit.Batch) { b.Size = 99 },
		"odd tile":   func(b *audit.Batch) { b.Tiles = []audit.TileData{{Level: 0, Index: 0, Hashes: []byte{1, 2, 3}}} },
	}
	for name, mutate := range bad {
		_, err := s.Integrate(t.Context(), 10, func(_ context.Context, st audit.TreeState, p []audit.Pending, _ func(int, uint64) ([]byte, error)) (*audit.Batch, error) {
			b := simpleBatch(st, p)
			mutate(b)
			return b, nil
		})
		if err == nil {
			t.Errorf("a batch that %s was written", name)
		}
		checkUnchanged(t, s, 3)
	}
}

func testTilesGrow(t *testing.T, s audit.Store) {
	ctx := t.Context()
	for round := 1; round <= 3; round++ {
		addPending(t, s, entry(round))
		integrate(t, s, 10, func(st audit.TreeState, p []audit.Pending) *audit.Batch {
			b := simpleBatch(st, p)
			b.Tiles = []audit.TileData{
				{Level: 0, Index: 0, Hashes: bytes.Repeat([]byte{byte(round)}, round*audit.HashSize)},
				{Level: 1, Index: 5, Hashes: bytes.Repeat([]byte{0xaa}, audit.HashSize)},
			}
			return b
		})
		got, err := s.Tile(ctx, 0, 0)
		if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{byte(round)}, round*audit.HashSize)) {
			t.Fatalf("round %d: Tile(0, 0) = %d bytes, %v", round, len(got), err)
		}
	}
	if got, err := s.Tile(ctx, 1, 5); err != nil || len(got) != audit.HashSize {
		t.Fatalf("Tile(1, 5) = %d bytes, %v", len(got), err)
	}
	if _, err := s.Tile(ctx, 1, 0); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("Tile(1, 0): %v, want ErrNotFound", err)
	}
}

func testCheckpoint(t *testing.T, s audit.Store) {
	ctx := t.Context()
	put := func(size uint64, note string, want bool) {
		t.Helper()
		got, err := s.PutCheckpoint(ctx, size, []byte(note))
		if err != nil {
			t.Fatalf("PutCheckpoint(%d): %v", size, err)
		}
		if got != want {
			t.Fatalf("PutCheckpoint(%d) stored = %v, want %v", size, got, want)
		}
	}
	put(0, "cp0", true)
	put(0, "cp0 again", false) // not greater
	put(1, "cp1", false)       // beyond the tree
	addPending(t, s, entry(0), entry(1))
	integrate(t, s, 10, simpleBatch)
	put(2, "cp2", true)
	put(1, "cp1", false) // older
	st, err := s.State(ctx)
	if err != nil || string(st.Checkpoint) != "cp2" || st.CheckpointSize != 2 {
		t.Fatalf("state = %+v, %v, want checkpoint cp2 of size 2", st, err)
	}
}

// testCheckpointWithBatch: a batch carrying its checkpoint stores both in
// one transaction.
func testCheckpointWithBatch(t *testing.T, s audit.Store) {
	ctx := t.Context()
	if ok, err := s.PutCheckpoint(ctx, 0, []byte("cp0")); err != nil || !ok {
		t.Fatalf("PutCheckpoint(0) = %v, %v", ok, err)
	}
	addPending(t, s, entry(0), entry(1))
	integrate(t, s, 10, func(st audit.TreeState, p []audit.Pending) *audit.Batch {
		b := simpleBatch(st, p)
		b.Checkpoint = []byte("cp2")
		return b
	})
	st, err := s.State(ctx)
	if err != nil || st.Size != 2 || string(st.Checkpoint) != "cp2" || st.CheckpointSize != 2 {
		t.Fatalf("state = %+v, %v, want size 2 with checkpoint cp2 of size 2", st, err)
	}

	// A batch without a checkpoint leaves the stored one as it is.
	addPending(t, s, entry(2))
	integrate(t, s, 10, simpleBatch)
	if st, err = s.State(ctx); err != nil || st.Size != 3 || string(st.Checkpoint) != "cp2" || st.CheckpointSize != 2 {
		t.Fatalf("state = %+v, %v, want size 3 with checkpoint cp2 of size 2", st, err)
	}
}

func testLease(t *testing.T, s audit.Store) {
	ctx := t.Context()
	acquire := func(holder string, want bool) {
		t.Helper()
		got, err := s.AcquireLease(ctx, holder, time.Minute)
		if err != nil {
			t.Fatalf("AcquireLease(%s): %v", holder, err)
		}
		if got != want {
			t.Fatalf("AcquireLease(%s) = %v, want %v", holder, got, want)
		}
	}
	acquire("a", true)
	acquire("b", false)
	acquire("a", true) // renewal
	if err := s.ReleaseLease(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	acquire("b", false) // b's release did not free a's lease
	if err := s.ReleaseLease(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	acquire("b", true)
	acquire("a", false)
	if _, err := s.AcquireLease(ctx, "", time.Minute); err == nil {
		t.Fatal("AcquireLease without a holder succeeded")
	}
}

func testLeaseExpiry(t *testing.T, s audit.Store) {
	ctx := t.Context()
	// Long enough that b's first try comes before it ends on a loaded
	// machine, short enough to wait out.
	if ok, err := s.AcquireLease(ctx, "a", 2*time.Second); err != nil || !ok {
		t.Fatalf("AcquireLease(a) = %v, %v", ok, err)
	}
	if ok, _ := s.AcquireLease(ctx, "b", time.Minute); ok {
		t.Fatal("b took a live lease")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := s.AcquireLease(ctx, "b", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b never took the expired lease")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok, _ := s.AcquireLease(ctx, "a", time.Minute); ok {
		t.Fatal("a took the lease back from b")
	}
}

// testConcurrent appends and integrates from many goroutines at once:
// every appended entry ends up integrated exactly once, at consecutive
// indexes.
func testConcurrent(t *testing.T, s audit.Store) {
	ctx := t.Context()
	const appenders, perAppender = 4, 25
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		want = map[int64][]byte{}
		errs = make(chan error, 100)
	)
	for a := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perAppender {
				e := entry(a*1000 + i)
				ids, err := s.AddPending(ctx, [][]byte{e})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				want[ids[0]] = e
				mu.Unlock()
			}
		}()
	}
	stop := make(chan struct{})
	var iwg sync.WaitGroup
	for range 2 {
		iwg.Add(1)
		go func() {
			defer iwg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				wrote, err := s.Integrate(ctx, 7, func(_ context.Context, st audit.TreeState, p []audit.Pending, _ func(int, uint64) ([]byte, error)) (*audit.Batch, error) {
					if len(p) == 0 {
						return nil, nil
					}
					return simpleBatch(st, p), nil
				})
				if err != nil {
					errs <- err
					return
				}
				if !wrote {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	// Drain what is left, then stop the integrators.
	for {
		n, err := s.PendingCount(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	iwg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st, err := s.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != appenders*perAppender {
		t.Fatalf("tree size %d, want %d", st.Size, appenders*perAppender)
	}
	es, err := s.Entries(ctx, 0, int(st.Size)+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != int(st.Size) {
		t.Fatalf("%d entries for size %d", len(es), st.Size)
	}
	for i, e := range es {
		if e.Index != uint64(i) {
			t.Fatalf("entry %d has index %d", i, e.Index)
		}
		w, ok := want[e.AppendID]
		if !ok || !bytes.Equal(w, e.Data) {
			t.Fatalf("entry %d (append %d) is not what was appended", i, e.AppendID)
		}
		delete(want, e.AppendID)
	}
	if len(want) != 0 {
		t.Fatalf("%d appended entries were not integrated", len(want))
	}
}

func testContextCanceled(t *testing.T, s audit.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.AddPending(ctx, [][]byte{entry(0)}); err == nil {
		t.Error("AddPending with a canceled context succeeded")
	}
	if _, err := s.Integrate(ctx, 1, func(context.Context, audit.TreeState, []audit.Pending, func(int, uint64) ([]byte, error)) (*audit.Batch, error) {
		return nil, nil
	}); err == nil {
		t.Error("Integrate with a canceled context succeeded")
	}
	if _, err := s.State(ctx); err == nil {
		t.Error("State with a canceled context succeeded")
	}
	if n, err := s.PendingCount(t.Context()); err != nil || n != 0 {
		t.Fatalf("PendingCount = %d, %v, want 0", n, err)
	}
}

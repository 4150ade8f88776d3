package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/signet-trust/signet/internal/store"
)

// The suite's snapshots and timestamps name the files they refer to in
// their data as "… refs:<sha256>,<sha256>"; refsOf reads them back.
func refsData(gun, role string, version int, refs ...string) []byte {
	return fmt.Appendf(nil, "%s %s v%d refs:%s", gun, role, version, strings.Join(refs, ","))
}

var errUnreadable = errors.New("storetest: unreadable metadata")

func refsOf(role string, data []byte) ([]string, error) {
	if role != "snapshot" && role != "timestamp" {
		return nil, fmt.Errorf("storetest: Referenced called for %s", role)
	}
	_, list, ok := strings.Cut(string(data), "refs:")
	if !ok {
		return nil, errUnreadable
	}
	if list == "" {
		return nil, nil
	}
	return strings.Split(list, ","), nil
}

func retention(keep int) store.Retention {
	return store.Retention{KeepVersions: keep, Referenced: refsOf}
}

// pruneAll runs a whole pass with batches of limit and returns the files
// removed and the number of calls.
func pruneAll(t *testing.T, s store.MetaStore, p store.Retention, limit int) (deleted, calls int) {
	t.Helper()
	from := ""
	for {
		next, n, err := s.PruneVersions(t.Context(), p, from, limit)
		if err != nil {
			t.Fatalf("PruneVersions(from %q, limit %d): %v", from, limit, err)
		}
		if n > limit {
			t.Fatalf("PruneVersions(limit %d) removed %d files", limit, n)
		}
		deleted += n
		calls++
		if next == "" {
			return deleted, calls
		}
		if next < from {
			t.Fatalf("PruneVersions went backwards: from %q, next %q", from, next)
		}
		if calls > 10000 {
			t.Fatal("PruneVersions does not finish its pass")
		}
		from = next
	}
}

// history stores versions 1..n of a repository in which snapshot v lists
// targets v and timestamp v lists snapshot v, except that the newest
// snapshot refers to targets version pinned (an old one) and delegation
// v1. It returns the files by role and version.
func history(t *testing.T, s store.MetaStore, gun string, n, pinned int) map[string]map[int]store.File {
	t.Helper()
	out := map[string]map[int]store.File{}
	keep := func(f store.File) {
		if out[f.Role] == nil {
			out[f.Role] = map[int]store.File{}
		}
		out[f.Role][f.Version] = f
	}
	for v := 1; v <= n; v++ {
		var batch []store.File
		if v <= 3 {
			batch = append(batch, file(gun, "root", v, meta(gun, "root", v)))
		}
		if v == 1 {
			batch = append(batch, file(gun, "targets/releases", 1, meta(gun, "targets/releases", 1)))
		}
		tf := file(gun, "targets", v, meta(gun, "targets", v))
		ref := tf.SHA256
		if v == n {
			ref = out["targets"][pinned].SHA256
		}
		sf := file(gun, "snapshot", v, refsData(gun, "snapshot", v, ref, sum(meta(gun, "targets/releases", 1))))
		ts := file(gun, "timestamp", v, refsData(gun, "timestamp", v, sf.SHA256))
		batch = append(batch, tf, sf, ts)
		update(t, s, gun, batch...)
		for _, f := range batch {
			keep(f)
		}
	}
	return out
}

func present(t *testing.T, s store.MetaStore, f store.File) bool {
	t.Helper()
	got, err := s.GetVersion(t.Context(), f.GUN, f.Role, f.Version)
	if errors.Is(err, store.ErrNotFound) {
		if _, err := s.GetChecksum(t.Context(), f.GUN, f.Role, f.SHA256); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s v%d: gone by version but GetChecksum says %v", f.Role, f.Version, err)
		}
		return false
	}
	if err != nil {
		t.Fatalf("GetVersion(%s v%d): %v", f.Role, f.Version, err)
	}
	checkFile(t, fmt.Sprintf("%s v%d after pruning", f.Role, f.Version), got, f)
	byHash, err := s.GetChecksum(t.Context(), f.GUN, f.Role, f.SHA256)
	if err != nil {
		t.Fatalf("%s v%d: kept, but GetChecksum: %v", f.Role, f.Version, err)
	}
	checkFile(t, "GetChecksum after pruning", byHash, f)
	return true
}

// testPruneKeeps checks what a pass keeps: the newest KeepVersions of each
// role, every root, whatever the current snapshot and timestamp refer to,
// and the whole changefeed.
func testPruneKeeps(t *testing.T, s store.MetaStore) {
	const gun, n, keep, pinned = "example.com/prune", 8, 2, 3
	files := history(t, s, gun, n, pinned)
	other := history(t, s, "example.com/prune-other", 2, 1) // nothing to prune
	before := changes(t, s, "", 0, 1000)

	deleted, _ := pruneAll(t, s, retention(keep), 1000)
	want := 0
	for role, byVersion := range files {
		for v, f := range byVersion {
			keepIt := role == "root" || v > len(byVersion)-keep ||
				(role == "targets" && v == pinned) || role == "targets/releases"
			if !keepIt {
				want++
			}
			if got := present(t, s, f); got != keepIt {
				t.Errorf("%s v%d: present = %v, want %v", role, v, got, keepIt)
			}
		}
	}
	if deleted != want {
		t.Errorf("PruneVersions reported %d files removed, want %d", deleted, want)
	}
	for _, byVersion := range other {
		for _, f := range byVersion {
			if !present(t, s, f) {
				t.Errorf("other GUN lost %s v%d", f.Role, f.Version)
			}
		}
	}
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		checkFile(t, "current "+role, getCurrent(t, s, gun, role), files[role][len(files[role])])
	}
	after := changes(t, s, "", 0, 1000)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the changefeed changed:\nbefore %+v\nafter  %+v", before, after)
	}
	// A second pass finds nothing.
	if deleted, _ := pruneAll(t, s, retention(keep), 1000); deleted != 0 {
		t.Fatalf("a second pass removed %d files", deleted)
	}
	// Keeping one version leaves the pinned targets and the current files.
	pruneAll(t, s, retention(1), 1000)
	for _, f := range []store.File{files["targets"][pinned], files["targets"][n], files["snapshot"][n], files["timestamp"][n], files["root"][1]} {
		if !present(t, s, f) {
			t.Errorf("keep 1: %s v%d was removed", f.Role, f.Version)
		}
	}
	if present(t, s, files["targets"][n-1]) {
		t.Error("keep 1: targets v7 is still there")
	}
}

// testPruneBatches checks that a pass in small batches removes what one
// big batch would, never more than the limit per call.
func testPruneBatches(t *testing.T, s store.MetaStore) {
	const guns, n = 7, 6
	for i := range guns {
		history(t, s, fmt.Sprintf("example.com/batch/%02d", i), n, n)
	}
	deleted, calls := pruneAll(t, s, retention(1), 4)
	// Per GUN: targets 1..5, snapshot 1..5, timestamp 1..5 go.
	if want := guns * 3 * (n - 1); deleted != want {
		t.Fatalf("removed %d files in %d calls, want %d", deleted, calls, want)
	}
	if calls < deleted/4 {
		t.Fatalf("%d calls for %d files with limit 4", calls, deleted)
	}
}

// testPruneUnreadable checks that a GUN whose current snapshot cannot be
// read is left whole and reported, and the others are pruned.
func testPruneUnreadable(t *testing.T, s store.MetaStore) {
	const bad, good = "example.com/unreadable", "example.com/readable"
	for v := 1; v <= 3; v++ {
		update(t, s, bad, file(bad, "snapshot", v, meta(bad, "snapshot", v)))
	}
	history(t, s, good, 3, 3)
	next, deleted, err := s.PruneVersions(t.Context(), retention(1), "", 1000)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("PruneVersions: err = %v, want one naming %s", err, bad)
	}
	if next != "" || deleted != 6 {
		t.Fatalf("PruneVersions: next %q, removed %d; want \"\", 6", next, deleted)
	}
	for v := 1; v <= 3; v++ {
		getVersion(t, s, bad, "snapshot", v)
	}
}

func testPruneBadPolicy(t *testing.T, s store.MetaStore) {
	if _, _, err := s.PruneVersions(t.Context(), retention(0), "", 10); err == nil {
		t.Error("KeepVersions 0 accepted")
	}
	if _, _, err := s.PruneVersions(t.Context(), store.Retention{KeepVersions: 1}, "", 10); err == nil {
		t.Error("a policy without Referenced accepted")
	}
	if _, _, err := s.PruneVersions(t.Context(), retention(1), "", 0); err == nil {
		t.Error("limit 0 accepted")
	}
}

// testPruneConcurrentUpdates prunes while publishes go on: every publish
// succeeds, and the files the final snapshot and timestamp name are there.
func testPruneConcurrentUpdates(t *testing.T, s store.MetaStore) {
	const gun, n = "example.com/prune-race", 40
	var (
		wg   sync.WaitGroup
		last [3]store.File
		stop = make(chan struct{})
	)
	wg.Go(func() {
		defer close(stop)
		for v := 1; v <= n; v++ {
			tf := file(gun, "targets", v, meta(gun, "targets", v))
			sf := file(gun, "snapshot", v, refsData(gun, "snapshot", v, tf.SHA256))
			ts := file(gun, "timestamp", v, refsData(gun, "timestamp", v, sf.SHA256))
			if err := s.UpdateMany(t.Context(), gun, []store.File{tf, sf, ts}); err != nil {
				t.Errorf("UpdateMany v%d: %v", v, err)
				return
			}
			last = [3]store.File{tf, sf, ts}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := s.PruneVersions(t.Context(), retention(1), "", 5); err != nil {
				t.Errorf("PruneVersions: %v", err)
				return
			}
		}
	})
	wg.Wait()
	for _, f := range last {
		if !present(t, s, f) {
			t.Errorf("the current %s is gone", f.Role)
		}
	}
}

// Package storetest is the conformance suite of the store contracts: every
// store.MetaStore implementation runs it from its tests.
//
// The open function passed to RunMetaStore is called once
// per subtest and must return a new, empty store; it arranges its own
// cleanup with t.Cleanup. Subtests run one after another.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/store"
)

// base is the time the suite's expiries are computed from; a round number
// of microseconds, the precision stores must keep.
var base = time.Date(2031, 5, 17, 9, 30, 0, 123456000, time.UTC)

// RunMetaStore runs the MetaStore conformance suite.
func RunMetaStore(t *testing.T, open func(t *testing.T) store.MetaStore) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.MetaStore)
	}{
		{"RoundTripBytes", testRoundTripBytes},
		{"RoundTripLarge", testRoundTripLarge},
		{"NoAliasing", testNoAliasing},
		{"CurrentIsHighest", testCurrentIsHighest},
		{"GetVersion", testGetVersion},
		{"GetChecksum", testGetChecksum},
		{"NotFound", testNotFound},
		{"EmptyBatch", testEmptyBatch},
		{"OldVersionRefused", testOldVersionRefused},
		{"EqualVersionRefused", testEqualVersionRefused},
		{"BatchAtomic", testBatchAtomic},
		{"BatchDuplicateVersion", testBatchDuplicateVersion},
		{"MultipleRoles", testMultipleRoles},
		{"GUNIsolation", testGUNIsolation},
		{"DelegationRoles", testDelegationRoles},
		{"Changefeed", testChangefeed},
		{"ChangefeedPerGUN", testChangefeedPerGUN},
		{"ChangefeedTimestampsOnly", testChangefeedTimestampsOnly},
		{"DeleteNothing", testDeleteNothing},
		{"DeleteRecreate", testDeleteRecreate},
		{"Expiring", testExpiring},
		{"ExpiringLimit", testExpiringLimit},
		{"ConcurrentSameVersion", testConcurrentSameVersion},
		{"ConcurrentBatches", testConcurrentBatches},
		{"ConcurrentGUNs", testConcurrentGUNs},
		{"ContextCanceled", testMetaContextCanceled},
		{"PruneKeeps", testPruneKeeps},
		{"PruneBatches", testPruneBatches},
		{"PruneUnreadable", testPruneUnreadable},
		{"PruneBadPolicy", testPruneBadPolicy},
		{"PruneConcurrentUpdates", testPruneConcurrentUpdates},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// file builds a File whose SHA256 matches data.
func file(gun, role string, version int, data []byte) store.File {
	return store.File{
		GUN:     gun,
		Role:    role,
		Version: version,
		Data:    data,
		SHA256:  sum(data),
		Expires: base.Add(time.Duration(version) * time.Hour),
	}
}

// meta is a small metadata-like payload unique to its arguments.
func meta(gun, role string, version int) []byte {
	return fmt.Appendf(nil, `{"signed":{"_type":%q,"gun":%q,"version":%d},"signatures":[]}`, role, gun, version)
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func update(t *testing.T, s store.MetaStore, gun string, files ...store.File) {
	t.Helper()
	if err := s.UpdateMany(t.Context(), gun, files); err != nil {
		t.Fatalf("UpdateMany(%q, %d files): %v", gun, len(files), err)
	}
}

// put stores one version of a role with generated data and returns it.
func put(t *testing.T, s store.MetaStore, gun, role string, version int) store.File {
	t.Helper()
	f := file(gun, role, version, meta(gun, role, version))
	update(t, s, gun, f)
	return f
}

func checkFile(t *testing.T, what string, got, want store.File) {
	t.Helper()
	if got.GUN != want.GUN || got.Role != want.Role || got.Version != want.Version {
		t.Fatalf("%s: got %q %q v%d, want %q %q v%d", what, got.GUN, got.Role, got.Version, want.GUN, want.Role, want.Version)
	}
	if !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("%s: data differs: got %d bytes (sha256 %s), want %d bytes (sha256 %s)",
			what, len(got.Data), sum(got.Data), len(want.Data), sum(want.Data))
	}
	if got.SHA256 != want.SHA256 {
		t.Fatalf("%s: SHA256 = %q, want %q", what, got.SHA256, want.SHA256)
	}
	if !got.Expires.Equal(want.Expires) {
		t.Fatalf("%s: Expires = %v, want %v", what, got.Expires, want.Expires)
	}
	if got.CreatedAt.IsZero() {
		t.Fatalf("%s: CreatedAt not set", what)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v, want one wrapping %v", what, err, target)
	}
}

func wantNotFound(t *testing.T, s store.MetaStore, gun, role string) {
	t.Helper()
	_, err := s.GetCurrent(t.Context(), gun, role)
	wantErr(t, fmt.Sprintf("GetCurrent(%q, %q)", gun, role), err, store.ErrNotFound)
}

func getCurrent(t *testing.T, s store.MetaStore, gun, role string) store.File {
	t.Helper()
	f, err := s.GetCurrent(t.Context(), gun, role)
	if err != nil {
		t.Fatalf("GetCurrent(%q, %q): %v", gun, role, err)
	}
	return f
}

func getVersion(t *testing.T, s store.MetaStore, gun, role string, version int) store.File {
	t.Helper()
	f, err := s.GetVersion(t.Context(), gun, role, version)
	if err != nil {
		t.Fatalf("GetVersion(%q, %q, %d): %v", gun, role, version, err)
	}
	return f
}

func changes(t *testing.T, s store.MetaStore, gun string, changeID int64, records int) []store.Change {
	t.Helper()
	cs, err := s.Changes(t.Context(), gun, changeID, records)
	if err != nil {
		t.Fatalf("Changes(%q, %d, %d): %v", gun, changeID, records, err)
	}
	return cs
}

func ids(cs []store.Change) []int64 {
	out := make([]int64, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func testRoundTripBytes(t *testing.T, s store.MetaStore) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	payloads := map[string][]byte{
		"json":        []byte("{\"signed\":{\"_type\":\"Root\"},\"signatures\":[{\"keyid\":\"ab\",\"method\":\"ecdsa\",\"sig\":\"c2ln\"}]}\n"),
		"every-byte":  all,
		"nul-edges":   {0, 0, 'x', 0, 0},
		"invalid-utf": {0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x82},
		"crlf-space":  []byte(" \r\n\t {} \r\n "),
		"backslashes": []byte(`\x00\\'";--`),
		"one-byte":    {0x80},
	}
	version := 0
	var stored []store.File
	for name, data := range payloads {
		version++
		gun := "example.com/bytes/" + name
		f := file(gun, "targets", version, bytes.Clone(data))
		update(t, s, gun, f)
		stored = append(stored, f)
	}
	for _, f := range stored {
		checkFile(t, "GetVersion", getVersion(t, s, f.GUN, f.Role, f.Version), f)
		checkFile(t, "GetCurrent", getCurrent(t, s, f.GUN, f.Role), f)
		got, err := s.GetChecksum(t.Context(), f.GUN, f.Role, f.SHA256)
		if err != nil {
			t.Fatalf("GetChecksum: %v", err)
		}
		checkFile(t, "GetChecksum", got, f)
	}
}

func testRoundTripLarge(t *testing.T, s store.MetaStore) {
	rng := rand.New(rand.NewChaCha8([32]byte{'s', 'i', 'g', 'n', 'e', 't'}))
	data := make([]byte, 5<<20+7)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	f := file("example.com/large", "targets/releases", 1, data)
	update(t, s, f.GUN, f)
	checkFile(t, "GetCurrent", getCurrent(t, s, f.GUN, f.Role), f)
	got, err := s.GetChecksum(t.Context(), f.GUN, f.Role, f.SHA256)
	if err != nil {
		t.Fatalf("GetChecksum: %v", err)
	}
	checkFile(t, "GetChecksum", got, f)
}

// testNoAliasing checks that the store neither keeps the caller's slice
// nor hands out its own.
func testNoAliasing(t *testing.T, s store.MetaStore) {
	const gun = "example.com/alias"
	data := meta(gun, "root", 1)
	orig := bytes.Clone(data)
	update(t, s, gun, file(gun, "root", 1, data))
	for i := range data {
		data[i] = 'X'
	}
	got := getCurrent(t, s, gun, "root")
	if !bytes.Equal(got.Data, orig) {
		t.Fatalf("stored data changed with the caller's slice: %q", got.Data)
	}
	for i := range got.Data {
		got.Data[i] = 'Y'
	}
	if again := getCurrent(t, s, gun, "root"); !bytes.Equal(again.Data, orig) {
		t.Fatalf("stored data changed with a returned slice: %q", again.Data)
	}
}

func testCurrentIsHighest(t *testing.T, s store.MetaStore) {
	const gun = "example.com/current"
	var last store.File
	for _, v := range []int{1, 2, 5, 10, 11} {
		last = put(t, s, gun, "targets", v)
		checkFile(t, fmt.Sprintf("GetCurrent after v%d", v), getCurrent(t, s, gun, "targets"), last)
	}
	// Other roles of the GUN do not change it.
	put(t, s, gun, "snapshot", 40)
	put(t, s, gun, "targets/releases", 50)
	checkFile(t, "GetCurrent", getCurrent(t, s, gun, "targets"), last)
}

func testGetVersion(t *testing.T, s store.MetaStore) {
	const gun = "example.com/version"
	var files []store.File
	for v := 1; v <= 4; v++ {
		files = append(files, put(t, s, gun, "snapshot", v))
	}
	for _, f := range files {
		checkFile(t, "GetVersion", getVersion(t, s, gun, "snapshot", f.Version), f)
	}
	for _, v := range []int{0, 5, -1} {
		_, err := s.GetVersion(t.Context(), gun, "snapshot", v)
		wantErr(t, fmt.Sprintf("GetVersion(v%d)", v), err, store.ErrNotFound)
	}
}

func testGetChecksum(t *testing.T, s store.MetaStore) {
	const gun = "example.com/checksum"
	t1 := put(t, s, gun, "targets", 1)
	t2 := put(t, s, gun, "targets", 2)
	sn := put(t, s, gun, "snapshot", 1)
	for _, f := range []store.File{t1, t2, sn} {
		got, err := s.GetChecksum(t.Context(), gun, f.Role, f.SHA256)
		if err != nil {
			t.Fatalf("GetChecksum(%s v%d): %v", f.Role, f.Version, err)
		}
		checkFile(t, "GetChecksum", got, f)
	}
	// The checksum of one role does not find a file of another role or GUN.
	_, err := s.GetChecksum(t.Context(), gun, "snapshot", t1.SHA256)
	wantErr(t, "GetChecksum with the checksum of another role", err, store.ErrNotFound)
	_, err = s.GetChecksum(t.Context(), "example.com/other", "targets", t1.SHA256)
	wantErr(t, "GetChecksum in another GUN", err, store.ErrNotFound)
	_, err = s.GetChecksum(t.Context(), gun, "targets", sum([]byte("never stored")))
	wantErr(t, "GetChecksum of unknown data", err, store.ErrNotFound)
}

func testNotFound(t *testing.T, s store.MetaStore) {
	ctx := t.Context()
	wantNotFound(t, s, "example.com/none", "root")
	put(t, s, "example.com/some", "root", 1)
	wantNotFound(t, s, "example.com/some", "targets")
	wantNotFound(t, s, "example.com/none", "root")
	_, err := s.GetVersion(ctx, "example.com/some", "root", 2)
	wantErr(t, "GetVersion of a missing version", err, store.ErrNotFound)
	_, err = s.GetVersion(ctx, "example.com/some", "targets", 1)
	wantErr(t, "GetVersion of a missing role", err, store.ErrNotFound)
	_, err = s.GetChecksum(ctx, "example.com/none", "root", sum(nil))
	wantErr(t, "GetChecksum in a missing GUN", err, store.ErrNotFound)
}

func testEmptyBatch(t *testing.T, s store.MetaStore) {
	const gun = "example.com/empty"
	if err := s.UpdateMany(t.Context(), gun, nil); err != nil {
		t.Fatalf("UpdateMany with no files: %v", err)
	}
	wantNotFound(t, s, gun, "root")
	if cs := changes(t, s, "", 0, 100); len(cs) != 0 {
		t.Fatalf("an empty batch added changes: %+v", cs)
	}
}

func testOldVersionRefused(t *testing.T, s store.MetaStore) {
	const gun = "example.com/old"
	v5 := put(t, s, gun, "targets", 5)
	for _, v := range []int{1, 4} {
		err := s.UpdateMany(t.Context(), gun, []store.File{file(gun, "targets", v, []byte("older"))})
		wantErr(t, fmt.Sprintf("UpdateMany(v%d after v5)", v), err, store.ErrOldVersion)
		_, err = s.GetVersion(t.Context(), gun, "targets", v)
		wantErr(t, "GetVersion of a refused version", err, store.ErrNotFound)
	}
	checkFile(t, "GetCurrent", getCurrent(t, s, gun, "targets"), v5)
	v6 := put(t, s, gun, "targets", 6)
	checkFile(t, "GetCurrent", getCurrent(t, s, gun, "targets"), v6)
}

func testEqualVersionRefused(t *testing.T, s store.MetaStore) {
	const gun = "example.com/equal"
	orig := put(t, s, gun, "timestamp", 3)
	err := s.UpdateMany(t.Context(), gun, []store.File{file(gun, "timestamp", 3, []byte("same version, other bytes"))})
	wantErr(t, "UpdateMany of an equal version", err, store.ErrOldVersion)
	// Even byte-identical data is refused: versions only grow.
	err = s.UpdateMany(t.Context(), gun, []store.File{orig})
	wantErr(t, "UpdateMany of the stored file again", err, store.ErrOldVersion)
	checkFile(t, "GetVersion", getVersion(t, s, gun, "timestamp", 3), orig)
	if cs := changes(t, s, gun, 0, 100); len(cs) != 1 {
		t.Fatalf("refused timestamps added changes: %+v", cs)
	}
}

func testBatchAtomic(t *testing.T, s store.MetaStore) {
	const gun = "example.com/atomic"
	root := put(t, s, gun, "root", 1)
	tg := put(t, s, gun, "targets", 1)
	before := changes(t, s, "", 0, 100)

	// Stale root at the start, middle or end of the batch: nothing stored.
	fresh := []store.File{
		file(gun, "targets", 2, meta(gun, "targets", 2)),
		file(gun, "snapshot", 1, meta(gun, "snapshot", 1)),
		file(gun, "targets/releases", 1, meta(gun, "targets/releases", 1)),
		file(gun, "timestamp", 1, meta(gun, "timestamp", 1)),
	}
	stale := file(gun, "root", 1, []byte("stale root"))
	for pos := 0; pos <= len(fresh); pos++ {
		batch := slices.Insert(slices.Clone(fresh), pos, stale)
		err := s.UpdateMany(t.Context(), gun, batch)
		wantErr(t, fmt.Sprintf("UpdateMany with a stale file at %d", pos), err, store.ErrOldVersion)

		checkFile(t, "root", getCurrent(t, s, gun, "root"), root)
		checkFile(t, "targets", getCurrent(t, s, gun, "targets"), tg)
		_, err = s.GetVersion(t.Context(), gun, "targets", 2)
		wantErr(t, "GetVersion(targets v2)", err, store.ErrNotFound)
		for _, role := range []string{"snapshot", "targets/releases", "timestamp"} {
			wantNotFound(t, s, gun, role)
		}
		for _, f := range fresh {
			_, err := s.GetChecksum(t.Context(), gun, f.Role, f.SHA256)
			wantErr(t, "GetChecksum of a file of a refused batch", err, store.ErrNotFound)
		}
		if after := changes(t, s, "", 0, 100); len(after) != len(before) {
			t.Fatalf("a refused batch added changes: %+v", after)
		}
	}
	// The same batch without the stale file goes through whole.
	update(t, s, gun, fresh...)
	for _, f := range fresh {
		checkFile(t, "GetCurrent", getCurrent(t, s, gun, f.Role), f)
	}
}

func testBatchDuplicateVersion(t *testing.T, s store.MetaStore) {
	const gun = "example.com/dup"
	a := file(gun, "snapshot", 1, []byte("a"))
	b := file(gun, "snapshot", 1, []byte("b"))
	ts := file(gun, "timestamp", 1, meta(gun, "timestamp", 1))
	err := s.UpdateMany(t.Context(), gun, []store.File{a, ts, b})
	wantErr(t, "UpdateMany with one version twice", err, store.ErrOldVersion)
	wantNotFound(t, s, gun, "snapshot")
	wantNotFound(t, s, gun, "timestamp")
	if cs := changes(t, s, "", 0, 100); len(cs) != 0 {
		t.Fatalf("a refused batch added changes: %+v", cs)
	}
}

func testMultipleRoles(t *testing.T, s store.MetaStore) {
	const gun = "docker.io/library/alpine"
	batch := []store.File{
		file(gun, "root", 1, meta(gun, "root", 1)),
		file(gun, "targets", 2, meta(gun, "targets", 2)),
		file(gun, "targets/releases", 1, meta(gun, "targets/releases", 1)),
		file(gun, "snapshot", 2, meta(gun, "snapshot", 2)),
		file(gun, "timestamp", 1, meta(gun, "timestamp", 1)),
	}
	update(t, s, gun, batch...)
	for _, f := range batch {
		checkFile(t, "GetCurrent("+f.Role+")", getCurrent(t, s, gun, f.Role), f)
	}
	cs := changes(t, s, gun, 0, 100)
	if len(cs) != 1 {
		t.Fatalf("changes after one batch with one timestamp: %+v", cs)
	}
	ts := batch[4]
	if c := cs[0]; c.GUN != gun || c.Version != 1 || c.SHA256 != ts.SHA256 || c.Category != store.CategoryUpdate {
		t.Fatalf("change = %+v, want update of timestamp v1 %s", c, ts.SHA256)
	}
	// The next publish: some roles only.
	next := []store.File{
		file(gun, "targets/releases", 2, meta(gun, "targets/releases", 2)),
		file(gun, "snapshot", 3, meta(gun, "snapshot", 3)),
		file(gun, "timestamp", 2, meta(gun, "timestamp", 2)),
	}
	update(t, s, gun, next...)
	for _, f := range next {
		checkFile(t, "GetCurrent("+f.Role+")", getCurrent(t, s, gun, f.Role), f)
	}
	checkFile(t, "GetCurrent(root)", getCurrent(t, s, gun, "root"), batch[0])
	checkFile(t, "GetCurrent(targets)", getCurrent(t, s, gun, "targets"), batch[1])
}

func testGUNIsolation(t *testing.T, s store.MetaStore) {
	// Names that a prefix match, a LIKE pattern or a case-folding
	// comparison would confuse with "a/b".
	guns := []string{"a/b", "a/bc", "a/b/c", "a/", "a", "a/b ", "a_b", "a%b", "axb"}
	files := map[string]store.File{}
	for _, gun := range guns {
		files[gun] = put(t, s, gun, "targets", 1)
		put(t, s, gun, "timestamp", 1)
	}
	for _, gun := range guns {
		checkFile(t, "GetCurrent("+gun+")", getCurrent(t, s, gun, "targets"), files[gun])
	}
	for _, gone := range []string{"a/b", "a_b", "a%b"} {
		ok, err := s.Delete(t.Context(), gone)
		if err != nil || !ok {
			t.Fatalf("Delete(%q) = %v, %v; want true, nil", gone, ok, err)
		}
		wantNotFound(t, s, gone, "targets")
		wantNotFound(t, s, gone, "timestamp")
		delete(files, gone)
		for gun, f := range files {
			checkFile(t, fmt.Sprintf("GetCurrent(%q) after Delete(%q)", gun, gone), getCurrent(t, s, gun, "targets"), f)
			getCurrent(t, s, gun, "timestamp")
		}
	}
	// Updates of one GUN do not count against another.
	put(t, s, "a/bc", "targets", 2)
	put(t, s, "a/b", "targets", 1)
}

func testDelegationRoles(t *testing.T, s store.MetaStore) {
	const gun = "example.com/delegations"
	roles := []string{"targets", "targets/releases", "targets/releases/qa", "targets/rel", "targets/r%", "targets/r_leases"}
	files := map[string]store.File{}
	for i, role := range roles {
		files[role] = put(t, s, gun, role, 10-i) // versions unrelated across roles
	}
	for _, role := range roles {
		checkFile(t, "GetCurrent("+role+")", getCurrent(t, s, gun, role), files[role])
		checkFile(t, "GetVersion("+role+")", getVersion(t, s, gun, role, files[role].Version), files[role])
	}
	wantNotFound(t, s, gun, "targets/")
	wantNotFound(t, s, gun, "targets/releases/")
	wantNotFound(t, s, gun, "targets/re")
	// A new version of a delegation does not touch its parent or children.
	next := put(t, s, gun, "targets/releases", 20)
	checkFile(t, "GetCurrent(targets/releases)", getCurrent(t, s, gun, "targets/releases"), next)
	checkFile(t, "GetCurrent(targets/releases/qa)", getCurrent(t, s, gun, "targets/releases/qa"), files["targets/releases/qa"])
	checkFile(t, "GetCurrent(targets)", getCurrent(t, s, gun, "targets"), files["targets"])
}

func checkChange(t *testing.T, got store.Change, gun string, version int, sha, category string) {
	t.Helper()
	if got.GUN != gun || got.Version != version || got.SHA256 != sha || got.Category != category {
		t.Fatalf("change %d = {GUN:%q Version:%d SHA256:%q Category:%q}, want {%q %d %q %q}",
			got.ID, got.GUN, got.Version, got.SHA256, got.Category, gun, version, sha, category)
	}
	if got.ID <= 0 {
		t.Fatalf("change ID %d, want > 0", got.ID)
	}
	if got.CreatedAt.IsZero() {
		t.Fatalf("change %d: CreatedAt not set", got.ID)
	}
}

func wantIDs(t *testing.T, what string, got []store.Change, want ...int64) {
	t.Helper()
	if g := ids(got); !slices.Equal(g, want) && !(len(g) == 0 && len(want) == 0) {
		t.Fatalf("%s: IDs %v, want %v", what, g, want)
	}
}

func testChangefeed(t *testing.T, s store.MetaStore) {
	if cs := changes(t, s, "", 0, 100); len(cs) != 0 {
		t.Fatalf("changes of an empty store: %+v", cs)
	}
	if cs := changes(t, s, "", -1, -100); len(cs) != 0 {
		t.Fatalf("changes of an empty store, backwards: %+v", cs)
	}
	g1, g2 := "example.com/feed/one", "example.com/feed/two"
	a := put(t, s, g1, "timestamp", 1)
	b := put(t, s, g2, "timestamp", 1)
	put(t, s, g1, "targets", 2) // not a timestamp: no record
	c := put(t, s, g1, "timestamp", 2)
	if ok, err := s.Delete(t.Context(), g2); err != nil || !ok {
		t.Fatalf("Delete(%q) = %v, %v", g2, ok, err)
	}

	all := changes(t, s, "", 0, 100)
	if len(all) != 4 {
		t.Fatalf("changes: %+v, want 4", all)
	}
	checkChange(t, all[0], g1, 1, a.SHA256, store.CategoryUpdate)
	checkChange(t, all[1], g2, 1, b.SHA256, store.CategoryUpdate)
	checkChange(t, all[2], g1, 2, c.SHA256, store.CategoryUpdate)
	checkChange(t, all[3], g2, 0, "", store.CategoryDeletion)
	id := ids(all)
	for i := 1; i < len(id); i++ {
		if id[i] <= id[i-1] {
			t.Fatalf("change IDs not ascending: %v", id)
		}
	}

	// Forwards: after changeID, ascending, at most records.
	wantIDs(t, "Changes(0, 2)", changes(t, s, "", 0, 2), id[0], id[1])
	wantIDs(t, "Changes(0, 1)", changes(t, s, "", 0, 1), id[0])
	wantIDs(t, "Changes(id0, 2)", changes(t, s, "", id[0], 2), id[1], id[2])
	wantIDs(t, "Changes(id1, 100)", changes(t, s, "", id[1], 100), id[2], id[3])
	wantIDs(t, "Changes(id3, 100)", changes(t, s, "", id[3], 100))
	wantIDs(t, "Changes(id3+1000, 100)", changes(t, s, "", id[3]+1000, 100))
	// Backwards: before changeID, still ascending, at most -records.
	wantIDs(t, "Changes(-1, -2)", changes(t, s, "", -1, -2), id[2], id[3])
	wantIDs(t, "Changes(-1, -100)", changes(t, s, "", -1, -100), id...)
	wantIDs(t, "Changes(id3, -2)", changes(t, s, "", id[3], -2), id[1], id[2])
	wantIDs(t, "Changes(id2, -100)", changes(t, s, "", id[2], -100), id[0], id[1])
	wantIDs(t, "Changes(id2, -1)", changes(t, s, "", id[2], -1), id[1])
	wantIDs(t, "Changes(id0, -100)", changes(t, s, "", id[0], -100))
	// As the reference does, change ID -1 reads backwards whatever the
	// sign of records, and reading backwards from 0 starts at the newest.
	wantIDs(t, "Changes(-1, 3)", changes(t, s, "", -1, 3), id[1], id[2], id[3])
	wantIDs(t, "Changes(0, -2)", changes(t, s, "", 0, -2), id[2], id[3])
	// CreatedAt does not go backwards.
	for i := 1; i < len(all); i++ {
		if all[i].CreatedAt.Before(all[i-1].CreatedAt) {
			t.Fatalf("change %d created before change %d", all[i].ID, all[i-1].ID)
		}
	}
}

func testChangefeedPerGUN(t *testing.T, s store.MetaStore) {
	g1, g2, g3 := "a/b", "a/bc", "a"
	var want = map[string][]store.Change{}
	for v := 1; v <= 3; v++ {
		for _, gun := range []string{g1, g2, g3} {
			f := put(t, s, gun, "timestamp", v)
			want[gun] = append(want[gun], store.Change{GUN: gun, Version: v, SHA256: f.SHA256, Category: store.CategoryUpdate})
		}
	}
	if ok, err := s.Delete(t.Context(), g1); err != nil || !ok {
		t.Fatalf("Delete(%q) = %v, %v", g1, ok, err)
	}
	want[g1] = append(want[g1], store.Change{GUN: g1, Category: store.CategoryDeletion})
	put(t, s, g1, "timestamp", 1)
	want[g1] = append(want[g1], store.Change{GUN: g1, Version: 1, SHA256: sum(meta(g1, "timestamp", 1)), Category: store.CategoryUpdate})

	all := changes(t, s, "", 0, 100)
	if len(all) != 11 {
		t.Fatalf("changes: %d, want 11", len(all))
	}
	for gun, w := range want {
		got := changes(t, s, gun, 0, 100)
		if len(got) != len(w) {
			t.Fatalf("Changes(%q): %d records, want %d: %+v", gun, len(got), len(w), got)
		}
		for i := range w {
			checkChange(t, got[i], w[i].GUN, w[i].Version, w[i].SHA256, w[i].Category)
		}
		id := ids(got)
		// Paging within one GUN.
		wantIDs(t, "Changes("+gun+", id0, 2)", changes(t, s, gun, id[0], 2), id[1], id[2])
		wantIDs(t, "Changes("+gun+", -1, -2)", changes(t, s, gun, -1, -2), id[len(id)-2:]...)
		wantIDs(t, "Changes("+gun+", idLast, -1)", changes(t, s, gun, id[len(id)-1], -1), id[len(id)-2])
	}
	if got := changes(t, s, "a/", 0, 100); len(got) != 0 {
		t.Fatalf("Changes of a GUN never written: %+v", got)
	}
}

func testChangefeedTimestampsOnly(t *testing.T, s store.MetaStore) {
	const gun = "example.com/feed/roles"
	for _, role := range []string{"root", "targets", "snapshot", "targets/releases", "timestamp/x"} {
		put(t, s, gun, role, 1)
	}
	if cs := changes(t, s, "", 0, 100); len(cs) != 0 {
		t.Fatalf("non-timestamp files added changes: %+v", cs)
	}
	// Two timestamps in one batch add two records.
	update(t, s, gun,
		file(gun, "timestamp", 1, meta(gun, "timestamp", 1)),
		file(gun, "timestamp", 2, meta(gun, "timestamp", 2)))
	cs := changes(t, s, gun, 0, 100)
	if len(cs) != 2 {
		t.Fatalf("changes after two timestamps: %+v", cs)
	}
	checkChange(t, cs[0], gun, 1, sum(meta(gun, "timestamp", 1)), store.CategoryUpdate)
	checkChange(t, cs[1], gun, 2, sum(meta(gun, "timestamp", 2)), store.CategoryUpdate)
}

func testDeleteNothing(t *testing.T, s store.MetaStore) {
	put(t, s, "a/bc", "timestamp", 1)
	for _, gun := range []string{"a/b", "a", "", "a/bc/"} {
		ok, err := s.Delete(t.Context(), gun)
		if err != nil || ok {
			t.Fatalf("Delete(%q) of nothing = %v, %v; want false, nil", gun, ok, err)
		}
	}
	if cs := changes(t, s, "", 0, 100); len(cs) != 1 {
		t.Fatalf("deleting nothing added changes: %+v", cs)
	}
	getCurrent(t, s, "a/bc", "timestamp")
}

func testDeleteRecreate(t *testing.T, s store.MetaStore) {
	const gun = "example.com/recreate"
	var old []store.File
	for v := 1; v <= 3; v++ {
		old = append(old, put(t, s, gun, "root", v), put(t, s, gun, "timestamp", v))
	}
	ok, err := s.Delete(t.Context(), gun)
	if err != nil || !ok {
		t.Fatalf("Delete = %v, %v; want true, nil", ok, err)
	}
	for _, f := range old {
		_, err := s.GetVersion(t.Context(), gun, f.Role, f.Version)
		wantErr(t, "GetVersion after Delete", err, store.ErrNotFound)
		_, err = s.GetChecksum(t.Context(), gun, f.Role, f.SHA256)
		wantErr(t, "GetChecksum after Delete", err, store.ErrNotFound)
	}
	wantNotFound(t, s, gun, "root")
	if ok, err := s.Delete(t.Context(), gun); err != nil || ok {
		t.Fatalf("second Delete = %v, %v; want false, nil", ok, err)
	}

	// Re-created from version 1 with new bytes.
	root := file(gun, "root", 1, []byte(`{"signed":{"_type":"Root","version":1},"new":true}`))
	ts := file(gun, "timestamp", 1, []byte(`{"signed":{"_type":"Timestamp","version":1},"new":true}`))
	update(t, s, gun, root, ts)
	checkFile(t, "GetCurrent(root)", getCurrent(t, s, gun, "root"), root)
	checkFile(t, "GetVersion(timestamp 1)", getVersion(t, s, gun, "timestamp", 1), ts)
	_, err = s.GetVersion(t.Context(), gun, "root", 2)
	wantErr(t, "GetVersion(root 2) after re-creation", err, store.ErrNotFound)

	cs := changes(t, s, gun, 0, 100)
	if len(cs) != 5 {
		t.Fatalf("changes: %+v, want 3 updates, a deletion, an update", cs)
	}
	checkChange(t, cs[3], gun, 0, "", store.CategoryDeletion)
	checkChange(t, cs[4], gun, 1, ts.SHA256, store.CategoryUpdate)

	if ok, err := s.Delete(t.Context(), gun); err != nil || !ok {
		t.Fatalf("Delete of the re-created GUN = %v, %v; want true, nil", ok, err)
	}
}

func expiringAt(gun, role string, version int, expires time.Time) store.File {
	f := file(gun, role, version, meta(gun, role, version))
	f.Expires = expires
	return f
}

func checkExpiring(t *testing.T, got []store.File, want ...store.File) {
	t.Helper()
	key := func(f store.File) string { return fmt.Sprintf("%s %s v%d", f.GUN, f.Role, f.Version) }
	var g, w []string
	for _, f := range got {
		g = append(g, key(f))
	}
	for _, f := range want {
		w = append(w, key(f))
	}
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Fatalf("Expiring: got %q, want %q", g, w)
	}
	byKey := map[string]store.File{}
	for _, f := range want {
		byKey[key(f)] = f
	}
	for _, f := range got {
		wf := byKey[key(f)]
		if len(f.Data) != 0 {
			t.Fatalf("Expiring returned Data for %s", key(f))
		}
		if f.SHA256 != wf.SHA256 || !f.Expires.Equal(wf.Expires) {
			t.Fatalf("Expiring %s: SHA256 %s Expires %v, want %s %v", key(f), f.SHA256, f.Expires, wf.SHA256, wf.Expires)
		}
	}
}

func testExpiring(t *testing.T, s store.MetaStore) {
	cutoff := base.Add(5 * time.Hour)
	// g1: an old version expires early, the current one late: not listed.
	update(t, s, "g1", expiringAt("g1", "timestamp", 1, base.Add(time.Hour)))
	update(t, s, "g1", expiringAt("g1", "timestamp", 2, base.Add(10*time.Hour)))
	// g2: current version expires before the cutoff: listed, as v2 only.
	update(t, s, "g2", expiringAt("g2", "timestamp", 1, base.Add(time.Hour)))
	g2 := expiringAt("g2", "timestamp", 2, base.Add(2*time.Hour))
	update(t, s, "g2", g2)
	// g3: one version, expiring before the cutoff (an expiry can go
	// backwards between versions; only the current one counts).
	update(t, s, "g3", expiringAt("g3", "timestamp", 1, base.Add(9*time.Hour)))
	g3 := expiringAt("g3", "timestamp", 2, base.Add(3*time.Hour))
	update(t, s, "g3", g3)
	// g4: expires after the cutoff; g5: exactly at it (not before).
	update(t, s, "g4", expiringAt("g4", "timestamp", 1, base.Add(6*time.Hour)))
	update(t, s, "g5", expiringAt("g5", "timestamp", 1, cutoff))
	// g6: another role expiring early: not listed for timestamp.
	g6 := expiringAt("g6", "snapshot", 1, base.Add(time.Hour))
	update(t, s, "g6", g6)
	// g7: long expired, then deleted: not listed.
	update(t, s, "g7", expiringAt("g7", "timestamp", 1, base.Add(-time.Hour)))
	if _, err := s.Delete(t.Context(), "g7"); err != nil {
		t.Fatal(err)
	}

	got, err := s.Expiring(t.Context(), "timestamp", cutoff, 100)
	if err != nil {
		t.Fatalf("Expiring: %v", err)
	}
	checkExpiring(t, got, g2, g3)

	got, err = s.Expiring(t.Context(), "snapshot", cutoff, 100)
	if err != nil {
		t.Fatalf("Expiring(snapshot): %v", err)
	}
	checkExpiring(t, got, g6)

	got, err = s.Expiring(t.Context(), "timestamp", cutoff.Add(time.Microsecond), 100)
	if err != nil {
		t.Fatalf("Expiring: %v", err)
	}
	g5 := expiringAt("g5", "timestamp", 1, cutoff)
	checkExpiring(t, got, g2, g3, g5)

	got, err = s.Expiring(t.Context(), "timestamp", base, 100)
	if err != nil {
		t.Fatalf("Expiring(base): %v", err)
	}
	checkExpiring(t, got)
}

func testExpiringLimit(t *testing.T, s store.MetaStore) {
	var all []store.File
	for i := range 7 {
		gun := fmt.Sprintf("example.com/expiring/%d", i)
		f := expiringAt(gun, "timestamp", 1, base.Add(time.Duration(i)*time.Minute))
		update(t, s, gun, f)
		all = append(all, f)
	}
	for _, limit := range []int{1, 3, 7, 8} {
		got, err := s.Expiring(t.Context(), "timestamp", base.Add(time.Hour), limit)
		if err != nil {
			t.Fatalf("Expiring(limit %d): %v", limit, err)
		}
		if want := min(limit, len(all)); len(got) != want {
			t.Fatalf("Expiring(limit %d): %d files, want %d", limit, len(got), want)
		}
		seen := map[string]bool{}
		for _, f := range got {
			if seen[f.GUN] {
				t.Fatalf("Expiring(limit %d) listed %q twice", limit, f.GUN)
			}
			seen[f.GUN] = true
		}
	}
}

// testConcurrentSameVersion races writers of one version of one role:
// exactly one wins, the others get ErrOldVersion, nothing is duplicated.
func testConcurrentSameVersion(t *testing.T, s store.MetaStore) {
	const gun, writers, rounds = "example.com/race", 16, 3
	for v := 1; v <= rounds; v++ {
		errs := make([]error, writers)
		files := make([]store.File, writers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range writers {
			files[i] = file(gun, "timestamp", v, fmt.Appendf(nil, "timestamp v%d by writer %d", v, i))
			wg.Go(func() {
				<-start
				errs[i] = s.UpdateMany(t.Context(), gun, []store.File{files[i]})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("v%d: writers %d and %d both succeeded", v, winner, i)
				}
				winner = i
			case !errors.Is(err, store.ErrOldVersion):
				t.Fatalf("v%d: writer %d: %v, want nil or ErrOldVersion", v, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("v%d: no writer succeeded", v)
		}
		checkFile(t, "GetCurrent", getCurrent(t, s, gun, "timestamp"), files[winner])
		checkFile(t, "GetVersion", getVersion(t, s, gun, "timestamp", v), files[winner])
		cs := changes(t, s, gun, 0, 100)
		if len(cs) != v {
			t.Fatalf("v%d: %d changes, want %d: %+v", v, len(cs), v, cs)
		}
		checkChange(t, cs[v-1], gun, v, files[winner].SHA256, store.CategoryUpdate)
		for i, f := range files {
			got, err := s.GetChecksum(t.Context(), gun, "timestamp", f.SHA256)
			if i == winner {
				if err != nil {
					t.Fatalf("GetChecksum(winner): %v", err)
				}
				checkFile(t, "GetChecksum(winner)", got, f)
			} else {
				wantErr(t, "GetChecksum(loser)", err, store.ErrNotFound)
			}
		}
	}
}

// testConcurrentBatches races whole publishes (several roles, in different
// orders) of the same versions: one wins whole, the rest store nothing.
func testConcurrentBatches(t *testing.T, s store.MetaStore) {
	const gun, writers = "example.com/race/batch", 12
	roles := []string{"targets", "targets/releases", "snapshot", "timestamp"}
	batches := make([][]store.File, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		for j := range roles {
			role := roles[(i+j)%len(roles)] // each writer its own order
			batches[i] = append(batches[i], file(gun, role, 1, fmt.Appendf(nil, "%s by %d", role, i)))
		}
		wg.Go(func() {
			<-start
			errs[i] = s.UpdateMany(t.Context(), gun, batches[i])
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("writers %d and %d both succeeded", winner, i)
			}
			winner = i
		case !errors.Is(err, store.ErrOldVersion):
			t.Fatalf("writer %d: %v, want nil or ErrOldVersion", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer succeeded")
	}
	for _, f := range batches[winner] {
		checkFile(t, "GetCurrent("+f.Role+")", getCurrent(t, s, gun, f.Role), f)
	}
	if cs := changes(t, s, "", 0, 100); len(cs) != 1 {
		t.Fatalf("changes: %+v, want 1", cs)
	}
}

// testConcurrentGUNs writes many GUNs at once: every write succeeds
// (no "database is busy" leaks to callers) and the changefeed has them all.
func testConcurrentGUNs(t *testing.T, s store.MetaStore) {
	const writers, versions = 16, 4
	errs := make(chan error, writers*versions)
	var wg sync.WaitGroup
	for i := range writers {
		gun := fmt.Sprintf("example.com/parallel/%d", i)
		wg.Go(func() {
			for v := 1; v <= versions; v++ {
				batch := []store.File{
					file(gun, "snapshot", v, meta(gun, "snapshot", v)),
					file(gun, "timestamp", v, meta(gun, "timestamp", v)),
				}
				if err := s.UpdateMany(t.Context(), gun, batch); err != nil {
					errs <- fmt.Errorf("%s v%d: %w", gun, v, err)
				}
				if _, err := s.GetCurrent(t.Context(), gun, "timestamp"); err != nil {
					errs <- fmt.Errorf("%s read v%d: %w", gun, v, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	for i := range writers {
		gun := fmt.Sprintf("example.com/parallel/%d", i)
		if f := getCurrent(t, s, gun, "timestamp"); f.Version != versions {
			t.Fatalf("%s: current timestamp v%d, want v%d", gun, f.Version, versions)
		}
	}
	cs := changes(t, s, "", 0, 1000)
	if len(cs) != writers*versions {
		t.Fatalf("%d changes, want %d", len(cs), writers*versions)
	}
	seen := map[string]bool{}
	for _, c := range cs {
		k := fmt.Sprintf("%s v%d", c.GUN, c.Version)
		if seen[k] {
			t.Fatalf("change for %s twice", k)
		}
		seen[k] = true
	}
}

func testMetaContextCanceled(t *testing.T, s store.MetaStore) {
	const gun = "example.com/canceled"
	put(t, s, gun, "root", 1)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	ts := file(gun, "timestamp", 1, meta(gun, "timestamp", 1))
	err := s.UpdateMany(ctx, gun, []store.File{ts})
	wantErr(t, "UpdateMany with a canceled context", err, context.Canceled)
	wantNotFound(t, s, gun, "timestamp")
	if cs := changes(t, s, "", 0, 100); len(cs) != 0 {
		t.Fatalf("a canceled UpdateMany added changes: %+v", cs)
	}

	_, err = s.GetCurrent(ctx, gun, "root")
	wantErr(t, "GetCurrent", err, context.Canceled)
	_, err = s.GetVersion(ctx, gun, "root", 1)
	wantErr(t, "GetVersion", err, context.Canceled)
	_, err = s.GetChecksum(ctx, gun, "root", sum(meta(gun, "root", 1)))
	wantErr(t, "GetChecksum", err, context.Canceled)
	_, err = s.Changes(ctx, "", 0, 10)
	wantErr(t, "Changes", err, context.Canceled)
	_, err = s.Expiring(ctx, "root", base.Add(1000*time.Hour), 10)
	wantErr(t, "Expiring", err, context.Canceled)
	_, err = s.Delete(ctx, gun)
	wantErr(t, "Delete", err, context.Canceled)
	getCurrent(t, s, gun, "root") // not deleted
}

// Package storagetest is the conformance suite of custody.Storage: every
// implementation runs Run from its tests. The open function is called once
// per subtest and must return a new, empty storage; it arranges its own
// cleanup with t.Cleanup.
//
// Invariants checked: records and aliases come back byte for byte, times to
// the microsecond; a duplicate ID is store.ErrConflict and changes nothing;
// listings follow the filter, newest first; Reseal is a compare and swap;
// retiring keeps the first retirement time; a canceled context stores
// nothing.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/store"
)

// Run runs the suite.
func Run(t *testing.T, open func(t *testing.T) custody.Storage) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s custody.Storage)
	}{
		{"PutGet", testPutGet},
		{"GetMissing", testGetMissing},
		{"DuplicateID", testDuplicate},
		{"List", testList},
		{"SealedKeys", testSealedKeys},
		{"Reseal", testReseal},
		{"Retire", testRetire},
		{"Delete", testDelete},
		{"Aliases", testAliases},
		{"Usage", testUsage},
		{"LegacyKEKAbsent", testLegacyAbsent},
		{"ContextCanceled", testCanceled},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// base has sub-microsecond digits: stores keep microseconds.
var base = time.Date(2031, 5, 17, 9, 30, 0, 123456789, time.UTC)

func sealed(id, gun, role string, created time.Time) custody.Record {
	p, _ := custody.PurposeForRole(role)
	return custody.Record{
		ID: id, GUN: gun, Role: role, Algorithm: "ecdsa",
		Public:  fmt.Appendf(nil, "public \x00\xff %s", id),
		Purpose: p, Owner: custody.OwnerServer,
		Seal: custody.Seal{
			Format: custody.FormatV2, Alias: "default",
			WrappedDEK: fmt.Appendf(nil, "wrapped \x00\x80 %s", id),
			Sealed:     fmt.Appendf(nil, "sealed \x00\x80\xfe %s %s", id, bytes.Repeat([]byte{0xa5}, 300)),
		},
		CreatedAt: created,
	}
}

func inToken(id, gun, role string, created time.Time) custody.Record {
	r := sealed(id, gun, role, created)
	r.Seal = custody.Seal{Format: custody.FormatV2}
	r.Token = custody.TokenRef{Token: "pkcs11:token=t", Label: "label " + id, ObjectID: []byte{0, 1, 0xfe, 0xff}}
	return r
}

func us(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Truncate(time.Microsecond)
}

func checkRecord(t *testing.T, what string, got, want custody.Record) {
	t.Helper()
	if got.ID != want.ID || got.GUN != want.GUN || got.Role != want.Role || got.Algorithm != want.Algorithm ||
		got.Purpose != want.Purpose || got.Owner != want.Owner || got.Seal.Format != want.Seal.Format ||
		got.Seal.Alias != want.Seal.Alias || got.Token.Token != want.Token.Token || got.Token.Label != want.Token.Label {
		t.Fatalf("%s: got %+v\nwant %+v", what, got, want)
	}
	for _, b := range []struct {
		name      string
		got, want []byte
	}{
		{"public", got.Public, want.Public}, {"wrapped data key", got.Seal.WrappedDEK, want.Seal.WrappedDEK},
		{"sealed key", got.Seal.Sealed, want.Seal.Sealed}, {"object ID", got.Token.ObjectID, want.Token.ObjectID},
	} {
		if !bytes.Equal(b.got, b.want) {
			t.Fatalf("%s: %s = %x, want %x", what, b.name, b.got, b.want)
		}
	}
	if !got.CreatedAt.Equal(us(want.CreatedAt)) || !got.RetiredAt.Equal(us(want.RetiredAt)) {
		t.Fatalf("%s: times %v, %v; want %v, %v", what, got.CreatedAt, got.RetiredAt, us(want.CreatedAt), us(want.RetiredAt))
	}
}

func put(t *testing.T, s custody.Storage, recs ...custody.Record) {
	t.Helper()
	for _, r := range recs {
		if err := s.PutKey(t.Context(), r); err != nil {
			t.Fatalf("PutKey(%s): %v", r.ID, err)
		}
	}
}

func get(t *testing.T, s custody.Storage, id string) custody.Record {
	t.Helper()
	r, err := s.GetKey(t.Context(), id)
	if err != nil {
		t.Fatalf("GetKey(%s): %v", id, err)
	}
	return r
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func ids(recs []custody.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

func testPutGet(t *testing.T, s custody.Storage) {
	v1 := sealed("0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9", "example.com/app", "snapshot", base.Add(time.Second))
	v1.Seal.Format, v1.Seal.Alias = custody.FormatV1, "prod_2026"
	v1.Algorithm = "ed25519"
	legacy := sealed("legacy", "example.com/app", "timestamp", base)
	legacy.Purpose, legacy.Owner, legacy.Seal = "", "", custody.Seal{Format: custody.FormatLegacy, Sealed: []byte("legacy sealed")}
	retired := sealed("retired", "", "", base.Add(2*time.Second))
	retired.Purpose, retired.Owner, retired.RetiredAt = custody.PurposeCosign, custody.ProjectOwner("p"), base.Add(time.Hour)
	recs := []custody.Record{
		sealed("ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100", "example.com/app", "timestamp", base),
		v1, legacy, retired, inToken("tok", "example.com/app", "targets/alice", base.Add(3*time.Second)),
	}
	put(t, s, recs...)
	for _, r := range recs {
		checkRecord(t, "GetKey("+r.ID+")", get(t, s, r.ID), r)
	}
}

func testGetMissing(t *testing.T, s custody.Storage) {
	put(t, s, sealed("abc", "g", "timestamp", base))
	for _, id := range []string{"ab", "abcd", "ABC", "missing", ""} {
		_, err := s.GetKey(t.Context(), id)
		wantErr(t, "GetKey("+id+")", err, store.ErrNotFound)
	}
}

func testDuplicate(t *testing.T, s custody.Storage) {
	orig := sealed("dup", "g", "timestamp", base)
	put(t, s, orig)
	other := inToken("dup", "other", "snapshot", base.Add(time.Hour))
	wantErr(t, "PutKey of a stored ID", s.PutKey(t.Context(), other), store.ErrConflict)
	checkRecord(t, "GetKey after a refused PutKey", get(t, s, "dup"), orig)
}

func testList(t *testing.T, s custody.Storage) {
	const gun = "example.com/keys"
	// Stored out of time order: listings follow CreatedAt, then insertion.
	k1 := sealed("k1", gun, "timestamp", base.Add(1*time.Hour))
	k3 := sealed("k3", gun, "timestamp", base.Add(3*time.Hour))
	k2 := inToken("k2", gun, "timestamp", base.Add(2*time.Hour))
	k2b := sealed("k2b", gun, "timestamp", base.Add(2*time.Hour)) // same time as k2, stored later
	gone := sealed("gone", gun, "timestamp", base.Add(5*time.Hour))
	gone.RetiredAt = base.Add(6 * time.Hour)
	del := sealed("del", gun, "targets/alice", base.Add(4*time.Hour))
	del.Owner = custody.ProjectOwner("alpha")
	cos := sealed("cos", "", "", base.Add(7*time.Hour))
	cos.Purpose, cos.Owner = custody.PurposeCosign, custody.ProjectOwner("alpha")
	put(t, s, k1, k3, k2, k2b, gone, del, cos,
		sealed("s1", gun, "snapshot", base.Add(4*time.Hour)),
		sealed("o1", gun+"/other", "timestamp", base.Add(5*time.Hour)),
		sealed("o2", "example.com/key", "timestamp", base.Add(6*time.Hour)))
	for _, tc := range []struct {
		name string
		f    custody.Filter
		want []string
	}{
		{"gun and role", custody.Filter{GUN: gun, Role: "timestamp"}, []string{"k3", "k2b", "k2", "k1"}},
		{"with retired", custody.Filter{GUN: gun, Role: "timestamp", IncludeRetired: true}, []string{"gone", "k3", "k2b", "k2", "k1"}},
		{"limit", custody.Filter{GUN: gun, Role: "timestamp", Limit: 2}, []string{"k3", "k2b"}},
		{"owner", custody.Filter{Owner: custody.ProjectOwner("alpha")}, []string{"cos", "del"}},
		{"owner and purpose", custody.Filter{Owner: custody.ProjectOwner("alpha"), Purpose: custody.PurposeDelegation}, []string{"del"}},
		{"purpose", custody.Filter{Purpose: custody.PurposeSnapshot}, []string{"s1"}},
		{"gun", custody.Filter{GUN: gun}, []string{"s1", "del", "k3", "k2b", "k2", "k1"}},
		{"no such role", custody.Filter{GUN: gun, Role: "root"}, nil},
		{"everything", custody.Filter{}, []string{"cos", "o2", "o1", "s1", "del", "k3", "k2b", "k2", "k1"}},
	} {
		got, err := s.ListKeys(t.Context(), tc.f)
		if err != nil {
			t.Fatalf("%s: ListKeys: %v", tc.name, err)
		}
		if !slices.Equal(ids(got), tc.want) {
			t.Fatalf("%s: ListKeys = %q, want %q", tc.name, ids(got), tc.want)
		}
	}
	got, _ := s.ListKeys(t.Context(), custody.Filter{GUN: gun, Role: "timestamp"})
	checkRecord(t, "listed k3", got[0], k3)
	checkRecord(t, "listed k2", got[2], k2)
}

func testSealedKeys(t *testing.T, s custody.Storage) {
	put(t, s, sealed("c", "g", "timestamp", base), inToken("b", "g", "timestamp", base),
		sealed("a", "g", "snapshot", base), sealed("d", "g", "timestamp", base), sealed("e", "g", "timestamp", base))
	var all []string
	after := ""
	for range 10 {
		page, err := s.SealedKeys(t.Context(), after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 2 {
			t.Fatalf("SealedKeys returned %d records, limit 2", len(page))
		}
		all = append(all, ids(page)...)
		after = page[len(page)-1].ID
	}
	if want := []string{"a", "c", "d", "e"}; !slices.Equal(all, want) {
		t.Fatalf("SealedKeys walked %q, want %q (no token keys, ID order)", all, want)
	}
}

func testReseal(t *testing.T, s custody.Storage) {
	legacy := sealed("k", "g", "timestamp", base)
	legacy.Purpose, legacy.Owner, legacy.Seal = "", "", custody.Seal{Format: custody.FormatLegacy, Sealed: []byte("old")}
	put(t, s, legacy, inToken("t", "g", "timestamp", base))
	next := sealed("k", "g", "timestamp", base)
	next.Seal.Alias = "second"
	ok, err := s.Reseal(t.Context(), legacy, next)
	if err != nil || !ok {
		t.Fatalf("Reseal = %v, %v; want true", ok, err)
	}
	checkRecord(t, "after Reseal", get(t, s, "k"), next)

	// The old seal again: the swap does not apply.
	again := next
	again.Seal.Sealed = []byte("another")
	if ok, err := s.Reseal(t.Context(), legacy, again); err != nil || ok {
		t.Fatalf("Reseal of a stale seal = %v, %v; want false", ok, err)
	}
	checkRecord(t, "after a stale Reseal", get(t, s, "k"), next)
	// Any field of the seal differing is stale.
	for _, stale := range []func(*custody.Record){
		func(r *custody.Record) { r.Seal.Format = custody.FormatV1 },
		func(r *custody.Record) { r.Seal.Alias = "default" },
		func(r *custody.Record) { r.Seal.WrappedDEK = append([]byte{1}, r.Seal.WrappedDEK...) },
		func(r *custody.Record) { r.Seal.Sealed = r.Seal.Sealed[1:] },
	} {
		old := next
		stale(&old)
		if ok, err := s.Reseal(t.Context(), old, again); err != nil || ok {
			t.Fatalf("Reseal with a differing seal = %v, %v; want false", ok, err)
		}
	}
	checkRecord(t, "after stale Reseals", get(t, s, "k"), next)
	// Token keys have no seal; missing keys nothing to swap.
	tok := get(t, s, "t")
	if ok, err := s.Reseal(t.Context(), tok, next); err == nil && ok {
		t.Fatal("Reseal of a token key with another ID applied")
	}
	tnext := tok
	tnext.Seal.Sealed = []byte("x")
	if ok, err := s.Reseal(t.Context(), tok, tnext); err != nil || ok {
		t.Fatalf("Reseal of a token key = %v, %v; want false", ok, err)
	}
	missing := sealed("missing", "g", "timestamp", base)
	if ok, err := s.Reseal(t.Context(), missing, missing); err != nil || ok {
		t.Fatalf("Reseal of a missing key = %v, %v; want false", ok, err)
	}
}

func testRetire(t *testing.T, s custody.Storage) {
	r := sealed("k", "g", "timestamp", base)
	put(t, s, r)
	at := base.Add(time.Hour)
	if err := s.RetireKey(t.Context(), "k", at); err != nil {
		t.Fatal(err)
	}
	r.RetiredAt = at
	checkRecord(t, "retired", get(t, s, "k"), r)
	if err := s.RetireKey(t.Context(), "k", at.Add(time.Hour)); err != nil {
		t.Fatalf("retiring again: %v", err)
	}
	checkRecord(t, "retired twice (the first time stays)", get(t, s, "k"), r)
	wantErr(t, "RetireKey of a missing key", s.RetireKey(t.Context(), "missing", at), store.ErrNotFound)
}

func testDelete(t *testing.T, s custody.Storage) {
	keep := sealed("keep", "g", "timestamp", base)
	put(t, s, sealed("k", "g", "timestamp", base), keep)
	if err := s.DeleteKey(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetKey(t.Context(), "k")
	wantErr(t, "GetKey of a deleted key", err, store.ErrNotFound)
	wantErr(t, "DeleteKey again", s.DeleteKey(t.Context(), "k"), store.ErrNotFound)
	checkRecord(t, "the other key", get(t, s, "keep"), keep)
	// The ID can be stored again (a key imported again after deletion).
	put(t, s, sealed("k", "g", "snapshot", base))
}

func testAliases(t *testing.T, s custody.Storage) {
	_, err := s.GetAlias(t.Context(), "default")
	wantErr(t, "GetAlias of a missing alias", err, store.ErrNotFound)
	a := custody.Alias{Name: "default", KDF: "scrypt-n32768-r8-p1", Salt: []byte{0, 1, 0xff}, Check: []byte("check \x00"), CreatedAt: base}
	if err := s.AddAlias(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	b := a
	b.Salt, b.Check, b.KDF = []byte("other"), []byte("other"), "scrypt-n1024-r8-p1"
	if err := s.AddAlias(t.Context(), b); err != nil {
		t.Fatalf("AddAlias of an existing alias: %v (the first is kept, no error)", err)
	}
	got, err := s.GetAlias(t.Context(), "default")
	if err != nil || got.Name != a.Name || got.KDF != a.KDF || !bytes.Equal(got.Salt, a.Salt) || !bytes.Equal(got.Check, a.Check) || !got.CreatedAt.Equal(us(base)) {
		t.Fatalf("GetAlias = %+v, %v; want %+v", got, err, a)
	}
	_, err = s.GetAlias(t.Context(), "DEFAULT")
	wantErr(t, "GetAlias of another case", err, store.ErrNotFound)
}

func testUsage(t *testing.T, s custody.Storage) {
	if u, err := s.Usage(t.Context()); err != nil || len(u) != 0 {
		t.Fatalf("Usage of an empty store = %+v, %v", u, err)
	}
	legacy := sealed("l", "g", "timestamp", base)
	legacy.Seal = custody.Seal{Format: custody.FormatLegacy, Sealed: []byte("x")}
	second := sealed("s", "g", "timestamp", base)
	second.Seal.Alias = "second"
	put(t, s, sealed("a", "g", "timestamp", base), sealed("b", "g", "snapshot", base), second, legacy,
		inToken("t1", "g", "timestamp", base), inToken("t2", "g", "timestamp", base))
	got, err := s.Usage(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	count := map[custody.Usage]int{}
	for _, u := range got {
		k := u
		k.Keys = 0
		count[k] += u.Keys
	}
	want := map[custody.Usage]int{
		{Alias: "default", Format: custody.FormatV2}:        2,
		{Alias: "second", Format: custody.FormatV2}:         1,
		{Format: custody.FormatLegacy}:                      1,
		{Format: custody.FormatV2, Token: "pkcs11:token=t"}: 2,
	}
	if len(count) != len(want) {
		t.Fatalf("Usage = %+v, want %v", got, want)
	}
	for k, n := range want {
		if count[k] != n {
			t.Fatalf("Usage = %+v, want %v", got, want)
		}
	}
}

func testLegacyAbsent(t *testing.T, s custody.Storage) {
	_, err := s.LegacyKEK(t.Context())
	wantErr(t, "LegacyKEK of a new store", err, store.ErrNotFound)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testCanceled(t *testing.T, s custody.Storage) {
	live := sealed("live", "g", "timestamp", base)
	put(t, s, live)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	wantErr(t, "PutKey", s.PutKey(ctx, sealed("dead", "g", "timestamp", base)), context.Canceled)
	_, err := s.GetKey(t.Context(), "dead")
	wantErr(t, "GetKey of a key put with a canceled context", err, store.ErrNotFound)
	_, err = s.GetKey(ctx, "live")
	wantErr(t, "GetKey", err, context.Canceled)
	_, err = s.ListKeys(ctx, custody.Filter{})
	wantErr(t, "ListKeys", err, context.Canceled)
	wantErr(t, "RetireKey", s.RetireKey(ctx, "live", base), context.Canceled)
	wantErr(t, "DeleteKey", s.DeleteKey(ctx, "live"), context.Canceled)
	next := live
	next.Seal.Alias = "x"
	_, err = s.Reseal(ctx, live, next)
	wantErr(t, "Reseal", err, context.Canceled)
	wantErr(t, "AddAlias", s.AddAlias(ctx, custody.Alias{Name: "a", KDF: "k", Salt: []byte{1}, Check: []byte{1}, CreatedAt: base}), context.Canceled)
	_, err = s.GetAlias(t.Context(), "a")
	wantErr(t, "GetAlias of an alias added with a canceled context", err, store.ErrNotFound)
	checkRecord(t, "the key after canceled changes", get(t, s, "live"), live)
}

package storetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/store"
)

// RunKeyStore runs the KeyStore conformance suite.
func RunKeyStore(t *testing.T, open func(t *testing.T) store.KeyStore) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.KeyStore)
	}{
		{"PutGet", testPutGetKey},
		{"GetMissing", testGetMissingKey},
		{"DuplicateID", testDuplicateKey},
		{"ListNewestFirst", testListKeys},
		{"Settings", testSettings},
		{"ContextCanceled", testKeyContextCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

func keyRecord(id, gun, role string, created time.Time) store.KeyRecord {
	return store.KeyRecord{
		ID:        id,
		GUN:       gun,
		Role:      role,
		Algorithm: "ecdsa",
		Public:    fmt.Appendf(nil, "public \x00\xff %s", id),
		Sealed:    fmt.Appendf(nil, "sealed \x00\x80\xfe %s %s", id, bytes.Repeat([]byte{0xa5}, 300)),
		CreatedAt: created,
	}
}

func checkKey(t *testing.T, what string, got, want store.KeyRecord) {
	t.Helper()
	if got.ID != want.ID || got.GUN != want.GUN || got.Role != want.Role || got.Algorithm != want.Algorithm {
		t.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
	if !bytes.Equal(got.Public, want.Public) || !bytes.Equal(got.Sealed, want.Sealed) {
		t.Fatalf("%s: key bytes differ", what)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("%s: CreatedAt = %v, want %v", what, got.CreatedAt, want.CreatedAt)
	}
}

func putKey(t *testing.T, s store.KeyStore, rec store.KeyRecord) {
	t.Helper()
	if err := s.PutKey(t.Context(), rec); err != nil {
		t.Fatalf("PutKey(%s): %v", rec.ID, err)
	}
}

func testPutGetKey(t *testing.T, s store.KeyStore) {
	recs := []store.KeyRecord{
		keyRecord("0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9", "example.com/app", "timestamp", base),
		keyRecord("ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100", "example.com/app", "snapshot", base.Add(time.Second)),
	}
	recs[1].Algorithm = "ed25519"
	for _, r := range recs {
		putKey(t, s, r)
	}
	for _, r := range recs {
		got, err := s.GetKey(t.Context(), r.ID)
		if err != nil {
			t.Fatalf("GetKey(%s): %v", r.ID, err)
		}
		checkKey(t, "GetKey", got, r)
	}
}

func testGetMissingKey(t *testing.T, s store.KeyStore) {
	putKey(t, s, keyRecord("abc", "g", "timestamp", base))
	for _, id := range []string{"ab", "abcd", "ABC", "missing"} {
		_, err := s.GetKey(t.Context(), id)
		wantErr(t, "GetKey("+id+")", err, store.ErrNotFound)
	}
}

func testDuplicateKey(t *testing.T, s store.KeyStore) {
	orig := keyRecord("dup", "g", "timestamp", base)
	putKey(t, s, orig)
	other := keyRecord("dup", "other", "snapshot", base.Add(time.Hour))
	other.Sealed = []byte("other sealed bytes")
	err := s.PutKey(t.Context(), other)
	wantErr(t, "PutKey of a stored ID", err, store.ErrConflict)
	got, err := s.GetKey(t.Context(), "dup")
	if err != nil {
		t.Fatal(err)
	}
	checkKey(t, "GetKey after a refused PutKey", got, orig)
}

func testListKeys(t *testing.T, s store.KeyStore) {
	const gun = "example.com/keys"
	// Stored out of time order: the list follows CreatedAt, not insertion.
	k1 := keyRecord("k1", gun, "timestamp", base.Add(1*time.Hour))
	k3 := keyRecord("k3", gun, "timestamp", base.Add(3*time.Hour))
	k2 := keyRecord("k2", gun, "timestamp", base.Add(2*time.Hour))
	for _, r := range []store.KeyRecord{k1, k3, k2,
		keyRecord("s1", gun, "snapshot", base.Add(4*time.Hour)),
		keyRecord("o1", gun+"/other", "timestamp", base.Add(5*time.Hour)),
		keyRecord("o2", "example.com/key", "timestamp", base.Add(6*time.Hour)),
	} {
		putKey(t, s, r)
	}
	got, err := s.ListKeys(t.Context(), gun, "timestamp")
	if err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	var gotIDs []string
	for _, r := range got {
		gotIDs = append(gotIDs, r.ID)
	}
	if want := []string{"k3", "k2", "k1"}; !slices.Equal(gotIDs, want) {
		t.Fatalf("ListKeys = %q, want %q", gotIDs, want)
	}
	checkKey(t, "ListKeys[0]", got[0], k3)
	checkKey(t, "ListKeys[2]", got[2], k1)

	none, err := s.ListKeys(t.Context(), gun, "root")
	if err != nil || len(none) != 0 {
		t.Fatalf("ListKeys of no keys = %v, %v; want none, nil", none, err)
	}
}

func testSettings(t *testing.T, s store.KeyStore) {
	ctx := t.Context()
	_, err := s.GetSetting(ctx, "kek.salt")
	wantErr(t, "GetSetting of an unset name", err, store.ErrNotFound)

	salt := []byte{0x00, 0x01, 0xfe, 0xff, 'x'}
	if err := s.PutSetting(ctx, "kek.salt", salt); err != nil {
		t.Fatalf("PutSetting: %v", err)
	}
	got, err := s.GetSetting(ctx, "kek.salt")
	if err != nil || !bytes.Equal(got, salt) {
		t.Fatalf("GetSetting = %x, %v; want %x", got, err, salt)
	}
	err = s.PutSetting(ctx, "kek.salt", []byte("another"))
	wantErr(t, "PutSetting of a set name", err, store.ErrConflict)
	if got, err := s.GetSetting(ctx, "kek.salt"); err != nil || !bytes.Equal(got, salt) {
		t.Fatalf("GetSetting after a refused PutSetting = %x, %v; want %x", got, err, salt)
	}
	_, err = s.GetSetting(ctx, "kek.salt2")
	wantErr(t, "GetSetting of another name", err, store.ErrNotFound)
	_, err = s.GetSetting(ctx, "KEK.SALT")
	wantErr(t, "GetSetting of another case", err, store.ErrNotFound)
}

func testKeyContextCanceled(t *testing.T, s store.KeyStore) {
	putKey(t, s, keyRecord("live", "g", "timestamp", base))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.PutKey(ctx, keyRecord("dead", "g", "timestamp", base))
	wantErr(t, "PutKey", err, context.Canceled)
	_, err = s.GetKey(t.Context(), "dead")
	wantErr(t, "GetKey of a key put with a canceled context", err, store.ErrNotFound)
	_, err = s.GetKey(ctx, "live")
	wantErr(t, "GetKey", err, context.Canceled)
	_, err = s.ListKeys(ctx, "g", "timestamp")
	wantErr(t, "ListKeys", err, context.Canceled)
	err = s.PutSetting(ctx, "name", []byte("v"))
	wantErr(t, "PutSetting", err, context.Canceled)
	_, err = s.GetSetting(ctx, "name")
	wantErr(t, "GetSetting", err, context.Canceled)
	_, err = s.GetSetting(t.Context(), "name")
	wantErr(t, "GetSetting of a setting put with a canceled context", err, store.ErrNotFound)
}

package trustdir_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/trustdir"
)

func TestTokenRefs(t *testing.T) {
	dir := trustdir.Dir{Path: t.TempDir()}
	onToken, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	const uri = "pkcs11:token=signet;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so"

	ks := dir.Keys(nil)
	id, err := ks.AddTokenRef(onToken.Public(), "root", uri)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := keys.FromCrypto(onToken.Public())
	if id != pub.ID() {
		t.Fatalf("ID %s, want %s", id, pub.ID())
	}
	if _, err := os.Stat(filepath.Join(dir.Path, "private", id+".pkcs11")); err != nil {
		t.Fatal(err)
	}
	// Key files only: the reference is not a key file (notary ignores it too).
	if list, err := ks.List(); err != nil || len(list) != 0 {
		t.Fatalf("List = %v, %v; want no key files", list, err)
	}
	refs, err := ks.TokenRefs()
	if err != nil || len(refs) != 1 || refs[0].ID != id || refs[0].Role != "root" || refs[0].URI != uri {
		t.Fatalf("TokenRefs = %+v, %v", refs, err)
	}

	// Without a token opener the key is reported, not silently missing.
	if _, ok, err := ks.Signer(t.Context(), id); ok || err == nil || !strings.Contains(err.Error(), uri) {
		t.Fatalf("Signer without opener: ok=%v err=%v", ok, err)
	}
	// With one, the token's key is the signer; a wrong key is refused.
	calls := 0
	ks = dir.Keys(nil).WithTokens(func(ctx context.Context, ref trustdir.TokenRef) (crypto.Signer, error) {
		calls++
		if ctx != t.Context() {
			t.Error("the opener did not get the caller's context")
		}
		if ref.URI != uri || ref.Role != "root" {
			t.Errorf("opener got %+v", ref)
		}
		return onToken, nil
	})
	for range 2 {
		s, ok, err := ks.Signer(t.Context(), id)
		if err != nil || !ok || s != crypto.Signer(onToken) {
			t.Fatalf("Signer = %v, %v, %v", s, ok, err)
		}
	}
	if calls != 1 {
		t.Errorf("the token was opened %d times, want once", calls)
	}
	if _, ok, err := ks.Signer(t.Context(), "0123"); ok || err != nil {
		t.Errorf("unknown key: ok=%v err=%v", ok, err)
	}
	wrong := dir.Keys(nil).WithTokens(func(context.Context, trustdir.TokenRef) (crypto.Signer, error) { return other, nil })
	if _, _, err := wrong.Signer(t.Context(), id); err == nil || !strings.Contains(err.Error(), "not") {
		t.Errorf("a token key that is not the referenced one: %v", err)
	}
	failing := dir.Keys(nil).WithTokens(func(context.Context, trustdir.TokenRef) (crypto.Signer, error) { return nil, errors.New("token gone") })
	if _, _, err := failing.Signer(t.Context(), id); err == nil || !strings.Contains(err.Error(), "token gone") {
		t.Errorf("opener error: %v", err)
	}

	if err := ks.Remove(id); err != nil {
		t.Fatal(err)
	}
	if refs, _ := ks.TokenRefs(); len(refs) != 0 {
		t.Errorf("after Remove: %v", refs)
	}
}

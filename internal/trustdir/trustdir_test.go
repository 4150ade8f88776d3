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
	"github.com/signet-trust/signet/internal/tuf"
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

// TestPathsStayInside: repository, metadata and changelist paths that a
// symbolic link planted in the trust directory leads outside it are
// refused; links that stay inside are followed.
func TestPathsStayInside(t *testing.T) {
	base := t.TempDir()
	dir := trustdir.Dir{Path: filepath.Join(base, "trust")}
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	// Nothing exists yet: the paths are fine.
	if _, err := dir.Cache("example.com/app"); err != nil {
		t.Fatalf("Cache in a new directory: %v", err)
	}
	mk := func(p string) {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}
	tufDir := filepath.Join(dir.Path, "tuf")
	mk(tufDir)
	link(outside, filepath.Join(tufDir, "evil.example"))
	link(filepath.Join(base, "nowhere"), filepath.Join(tufDir, "dangling.example"))
	mk(filepath.Join(tufDir, "meta.example", "app"))
	link(outside, filepath.Join(tufDir, "meta.example", "app", "metadata"))
	mk(filepath.Join(tufDir, "cl.example", "app"))
	link(outside, filepath.Join(tufDir, "cl.example", "app", "changelist"))
	mk(filepath.Join(tufDir, "real.example"))
	link(filepath.Join(tufDir, "real.example"), filepath.Join(tufDir, "alias.example"))

	for _, gun := range []tuf.GUN{"evil.example/app", "dangling.example/app"} {
		if _, err := dir.Cache(gun); !errors.Is(err, trustdir.ErrOutside) {
			t.Errorf("Cache(%s): %v", gun, err)
		}
		if _, err := dir.Changelist(gun); !errors.Is(err, trustdir.ErrOutside) {
			t.Errorf("Changelist(%s): %v", gun, err)
		}
		if err := dir.RemoveRepo(gun); !errors.Is(err, trustdir.ErrOutside) {
			t.Errorf("RemoveRepo(%s): %v", gun, err)
		}
	}
	c, err := dir.Cache("meta.example/app")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Put("root", []byte("{}")); !errors.Is(err, trustdir.ErrOutside) {
		t.Errorf("Put through a metadata link: %v", err)
	}
	if _, err := c.Get("root"); !errors.Is(err, trustdir.ErrOutside) {
		t.Errorf("Get through a metadata link: %v", err)
	}
	if _, err := dir.Changelist("cl.example/app"); !errors.Is(err, trustdir.ErrOutside) {
		t.Errorf("Changelist through a link: %v", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("files appeared outside the trust directory: %v", ents)
	}
	if _, err := os.Lstat(filepath.Join(base, "nowhere")); !os.IsNotExist(err) {
		t.Fatalf("a dangling link's target was created: %v", err)
	}
	// Inside links are fine, and so is a trust directory that is itself a link.
	c, err = dir.Cache("alias.example/app")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Put("root", []byte("{}")); err != nil {
		t.Fatalf("Put through an inside link: %v", err)
	}
	linked := trustdir.Dir{Path: filepath.Join(base, "linked-trust")}
	link(dir.Path, linked.Path)
	if c, err := linked.Cache("alias.example/app"); err != nil {
		t.Fatal(err)
	} else if b, err := c.Get("root"); err != nil || string(b) != "{}" {
		t.Fatalf("Get through a linked trust directory: %q %v", b, err)
	}
}

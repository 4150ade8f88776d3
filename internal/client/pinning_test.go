package client_test

import (
	"context"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/policy"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// TestReaderPinning: the Reader applies trust pinning where notary 0.7
// does — to the root it fetches on first contact and to the roots that
// replace an expired trusted root — and not to a rotation signed by a root
// it trusts, which pins trust by itself. A pinned CA bundle is read only
// when a root is checked against it.
func TestReaderPinning(t *testing.T) {
	update := func(e *attackEnv, p policy.Pinning) error {
		rd := e.reader()
		rd.Pinning = p
		_, err := rd.Update(context.Background())
		return err
	}
	pinTo := func(k tuftest.Key) policy.Pinning {
		return policy.Pinning{Certs: map[string][]string{attackGUN: {k.Key.ID()}}}
	}
	// rotate replaces the root key, signed by the old and the new key.
	rotate := func(e *attackEnv) tuftest.Key {
		old := e.repo.Keys[tuf.RoleRoot][0]
		next := tuftest.NewRootKey(t, attackGUN, attackNow)
		e.repo.SetRoleKeys(tuf.RoleRoot, next)
		e.repo.Root.Expires = attackNow.AddDate(10, 0, 0)
		e.repo.Bump(tuf.RoleRoot)
		e.repo.Sign(tuf.RoleRoot, old, next)
		e.online()
		return next
	}

	t.Run("first contact", func(t *testing.T) {
		e := newAttackEnv(t)
		owner := e.repo.Keys[tuf.RoleRoot][0]
		err := update(e, pinTo(tuftest.NewRootKey(t, attackGUN, attackNow)))
		wantRefused(t, err, tuf.RoleRoot, trust.ErrRootCert)
		if len(e.cache.m) != 0 {
			t.Fatal("a refused first root was cached")
		}
		if err := update(e, policy.Pinning{DisableTOFU: true}); err == nil || !strings.Contains(err.Error(), "trust on first use is disabled") {
			t.Fatalf("disable_tofu on first contact: %v", err)
		}
		if err := update(e, pinTo(owner)); err != nil {
			t.Fatalf("pinned root refused: %v", err)
		}
	})
	t.Run("a trusted root pins trust", func(t *testing.T) {
		e := newAttackEnv(t)
		e.mustUpdate() // trusted on first use
		// Pinning configured afterwards does not recheck the trusted root,
		// nor the rotation it signs; disable_tofu has nothing to refuse, and
		// a CA file that does not exist is never read.
		stranger := pinTo(tuftest.NewRootKey(t, attackGUN, attackNow))
		missingCA := policy.Pinning{CA: map[string]string{"example.com/": filepath.Join(t.TempDir(), "absent.pem")}}
		for _, p := range []policy.Pinning{stranger, {DisableTOFU: true}, missingCA} {
			if err := update(e, p); err != nil {
				t.Fatalf("pinning %+v: %v", p, err)
			}
		}
		rotate(e)
		if err := update(e, stranger); err != nil {
			t.Fatalf("rotation signed by the trusted root: %v", err)
		}
	})
	t.Run("an expired trusted root", func(t *testing.T) {
		e := newAttackEnv(t)
		owner := e.repo.Keys[tuf.RoleRoot][0]
		e.repo.Root.Expires = attackNow.Add(24 * time.Hour)
		e.repo.Bump(tuf.RoleRoot)
		e.repo.Sign(tuf.RoleRoot)
		e.online()
		e.mustUpdate()
		next := rotate(e)
		e.now = attackNow.Add(48 * time.Hour) // the cached root has expired
		e.keepsCache(func() {
			err := update(e, pinTo(owner))
			wantRefused(t, err, tuf.RoleRoot, trust.ErrRootCert)
			if !strings.Contains(err.Error(), "pinned key ID") {
				t.Fatalf("error %v", err)
			}
			missing := filepath.Join(t.TempDir(), "absent.pem")
			err = update(e, policy.Pinning{CA: map[string]string{"example.com/": missing}})
			if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "CA pinned for example.com/") {
				t.Fatalf("unreadable CA: %v", err)
			}
		})
		if err := update(e, pinTo(next)); err != nil {
			t.Fatalf("new root pinned: %v", err)
		}
	})
	t.Run("CA read on first contact", func(t *testing.T) {
		e := newAttackEnv(t)
		ca := filepath.Join(t.TempDir(), "ca.pem")
		// notary's self-signed root certificate as the CA: it does not
		// chain for Go's default key usage (code signing only), as in
		// notary, so the root is refused.
		cert := e.repo.Keys[tuf.RoleRoot][0].Key.Certificates()[0]
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		err := update(e, policy.Pinning{CA: map[string]string{"example.com/attack/": ca}})
		wantRefused(t, err, tuf.RoleRoot, trust.ErrRootCert)
		if !strings.Contains(err.Error(), "chains to the CA pinned for example.com/attack/") {
			t.Fatalf("error %v", err)
		}
	})
}

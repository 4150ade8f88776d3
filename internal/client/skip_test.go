package client_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// A delegation that expired, or that a wrong key signed, is left out as
// notary's client leaves it out, with what it delegates, and recorded in
// the view's Skipped; SkipDelegation, when set, is told too. Targets never
// is left out.
func TestReaderSkipDelegation(t *testing.T) {
	now := time.Now()
	build := func(edit func(r *tuftest.Repo)) *client.Remote {
		r := tuftest.NewRepo(t, gun, now)
		r.Delegate("targets/alice", []string{""})
		r.Delegate("targets/bob", []string{""})
		r.Delegate("targets/bob/team", []string{""})
		r.AddTarget("targets/alice", "a", []byte("a"))
		r.AddTarget("targets/bob", "b", []byte("b"))
		r.AddTarget("targets/bob/team", "c", []byte("c"))
		edit(r)
		r.SignAll()
		if edit := r.Keys["forge"]; edit != nil {
			r.Sign("targets/bob", edit...)
			r.SignSnapshot()
			r.SignTimestamp()
		}
		srv := tuftest.NewServer(gun)
		srv.Publish(r)
		hs := httptest.NewServer(srv)
		t.Cleanup(hs.Close)
		remote, err := client.NewRemote(hs.URL, hs.Client(), gun)
		if err != nil {
			t.Fatal(err)
		}
		return remote
	}
	for _, c := range []struct {
		name string
		edit func(r *tuftest.Repo)
		rule error
	}{
		{"expired", func(r *tuftest.Repo) { r.Targets["targets/bob"].Expires = now.Add(-time.Hour) }, trust.ErrExpired},
		{"signed by another key", func(r *tuftest.Repo) { r.Keys["forge"] = []tuftest.Key{tuftest.NewKey(t)} }, trust.ErrSignatures},
	} {
		t.Run(c.name, func(t *testing.T) {
			remote := build(c.edit)
			v0, err := (&client.Reader{Remote: remote, Cache: &memCache{}}).Update(context.Background())
			if err != nil {
				t.Fatalf("without SkipDelegation: %v", err)
			}
			if got := v0.Skipped(); len(got) != 1 || !errors.Is(got["targets/bob"], c.rule) {
				t.Fatalf("without SkipDelegation, skipped %v", got)
			}
			skipped := map[string]error{}
			cache := &memCache{}
			rd := &client.Reader{Remote: remote, Cache: cache, SkipDelegation: func(role string, err error) { skipped[role] = err }}
			v, err := rd.Update(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(skipped) != 1 || !errors.Is(skipped["targets/bob"], c.rule) {
				t.Fatalf("skipped %v", skipped)
			}
			if v.Targets("targets/bob") != nil || v.Targets("targets/bob/team") != nil || v.Targets("targets/alice") == nil {
				t.Errorf("loaded roles %v", v.TargetsRoles())
			}
			if b, _ := cache.Get("targets/bob"); b != nil {
				t.Error("a skipped delegation was cached")
			}
		})
	}
	t.Run("targets is never skipped", func(t *testing.T) {
		remote := build(func(r *tuftest.Repo) { r.Targets[tuf.RoleTargets].Expires = now.Add(-time.Hour) })
		rd := &client.Reader{Remote: remote, Cache: &memCache{}, SkipDelegation: func(role string, err error) { t.Errorf("skipped %s", role) }}
		if _, err := rd.Update(context.Background()); !errors.Is(err, trust.ErrExpired) {
			t.Fatalf("expired targets: %v", err)
		}
	})
}

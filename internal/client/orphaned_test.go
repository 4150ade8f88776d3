package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/client/changes"
	"github.com/signet-trust/signet/internal/keys"
)

// TestRemovingTheSigningKeyOfADelegation: a delegation whose current
// metadata is signed only by a key being removed would no longer verify.
// The publish re-signs it when a remaining key is held, and is refused
// (nothing uploaded) when none is.
func TestRemovingTheSigningKeyOfADelegation(t *testing.T) {
	ctx := context.Background()
	url := startServer(t)
	owner := newClientEnv(t, url, gun)
	rootKey, _ := owner.keys.add(t)
	targetsKey, _ := owner.keys.add(t)
	if err := client.Initialize(ctx, owner.remote, owner.cache, client.InitOptions{Root: rootKey, Targets: targetsKey}, time.Now()); err != nil {
		t.Fatal(err)
	}
	// targets/releases has two keys; the delegate holds the first, the
	// laptop the second. The delegate signs v1 with its key alone.
	delegate := newClientEnv(t, url, gun)
	_, k1 := delegate.keys.add(t)
	laptop := newClientEnv(t, url, gun)
	_, k2 := laptop.keys.add(t)
	add := changes.AddDelegation{Role: "targets/releases", Threshold: 1, Keys: []*keys.PublicKey{k1, k2}, Paths: []string{""}}
	if err := owner.pub.Publish(ctx, []changes.Change{add}); err != nil {
		t.Fatal(err)
	}
	if err := delegate.pub.Publish(ctx, []changes.Change{target("targets/releases", "v1", "one")}); err != nil {
		t.Fatal(err)
	}
	rm := changes.UpdateDelegation{Role: "targets/releases", RemoveKeys: []string{k1.ID()}}

	// The owner holds neither key: refused, with what to do.
	before, err := owner.remote.GetCurrent(ctx, "targets", client.MaxMetadataSize)
	if err != nil {
		t.Fatal(err)
	}
	err = owner.pub.Publish(ctx, []changes.Change{rm})
	if !errors.Is(err, client.ErrOrphanedRole) || !strings.Contains(err.Error(), "signet witness "+gun+" targets/releases") {
		t.Fatalf("removing the only signing key: %v", err)
	}
	after, err := owner.remote.GetCurrent(ctx, "targets", client.MaxMetadataSize)
	if err != nil || string(after) != string(before) {
		t.Fatalf("a refused removal changed targets (%v)", err)
	}

	// An owner who also holds the remaining key: targets/releases is
	// re-signed with it in the same publish, and every client still reads v1.
	owner.keys[k2.ID()] = laptop.keys[k2.ID()]
	if err := owner.pub.Publish(ctx, []changes.Change{rm}); err != nil {
		t.Fatalf("removal with the remaining key held: %v", err)
	}
	for name, c := range map[string]*clientEnv{"owner": owner, "delegate": delegate, "fresh": newClientEnv(t, url, gun)} {
		if got := c.list(t); got["v1"] != "targets/releases" {
			t.Fatalf("%s after the removal: %v", name, got)
		}
	}
}

package client_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/client/changes"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// memKeys is an in-memory KeyStore keyed by canonical key ID.
type memKeys map[string]crypto.Signer

func (m memKeys) Signer(id string) (crypto.Signer, bool, error) {
	s, ok := m[id]
	return s, ok, nil
}

func (m memKeys) add(t *testing.T) (crypto.Signer, *keys.PublicKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := keys.FromCrypto(k.Public())
	m[pub.ID()] = k
	return k, pub
}

type clientEnv struct {
	remote *client.Remote
	cache  *memCache
	keys   memKeys
	pub    *client.Publisher
}

func newClientEnv(t *testing.T, url, gun string) *clientEnv {
	remote, err := client.NewRemote(url, httptest.NewServer(nil).Client(), gun)
	if err != nil {
		t.Fatal(err)
	}
	c := &clientEnv{remote: remote, cache: &memCache{}, keys: memKeys{}}
	c.pub = &client.Publisher{Reader: &client.Reader{Remote: remote, Cache: c.cache}, Keys: c.keys}
	return c
}

func target(t *testing.T, role, name, content string) changes.Change {
	c, err := changes.AddTarget(role, name, tuf.NewFileMeta([]byte(content)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *clientEnv) list(t *testing.T) map[string]string {
	t.Helper()
	v, err := c.pub.Reader.Update(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tg := range client.ListTargets(v) {
		out[tg.Name] = tg.Role
	}
	return out
}

func TestInitPublishAndDelegate(t *testing.T) {
	for _, serverSnapshot := range []bool{false, true} {
		name := map[bool]string{false: "client snapshot", true: "server snapshot"}[serverSnapshot]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			url := startServer(t)
			owner := newClientEnv(t, url, gun)
			rootKey, _ := owner.keys.add(t)
			targetsKey, _ := owner.keys.add(t)
			opts := client.InitOptions{Root: rootKey, Targets: targetsKey}
			if !serverSnapshot {
				opts.Snapshot, _ = owner.keys.add(t)
			}
			if err := client.Initialize(ctx, owner.remote, owner.cache, opts, time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := owner.pub.Publish(ctx, []changes.Change{target(t, "targets", "v1", "one")}); err != nil {
				t.Fatalf("first publish: %v", err)
			}
			if got := owner.list(t); got["v1"] != "targets" {
				t.Fatalf("after first publish: %v", got)
			}
			// Delegate targets/releases to a key only the delegate holds.
			delegate := newClientEnv(t, url, gun)
			_, dpub := delegate.keys.add(t)
			add, _ := changes.ChangeDelegation(changes.ActionCreate, "targets/releases", changes.Delegation{NewThreshold: 1, AddKeys: []*keys.PublicKey{dpub}, AddPaths: []string{""}})
			if err := owner.pub.Publish(ctx, []changes.Change{add}); err != nil {
				t.Fatalf("delegation: %v", err)
			}
			err := delegate.pub.Publish(ctx, []changes.Change{target(t, "targets/releases", "v2", "two")})
			if serverSnapshot {
				if err != nil {
					t.Fatalf("delegate publish with a server-held snapshot: %v", err)
				}
				if got := owner.list(t); got["v2"] != "targets/releases" {
					t.Fatalf("delegate's target not listed: %v", got)
				}
			} else if se := (*client.ServerError)(nil); !errors.As(err, &se) || se.Name != "ErrBadHierarchy" {
				t.Fatalf("delegate without the snapshot key: %v", err)
			}
			// Removing the only key of a threshold-1 role is refused.
			rm, _ := changes.ChangeDelegation(changes.ActionUpdate, "targets/releases", changes.Delegation{RemoveKeys: []string{dpub.ID()}})
			err = owner.pub.Publish(ctx, []changes.Change{rm})
			if !errors.Is(err, client.ErrBelowThreshold) || !strings.Contains(err.Error(), "targets/releases would keep 0 key(s) but needs 1") {
				t.Fatalf("below threshold: %v", err)
			}
		})
	}
}

func TestRotateTargetsAndRoot(t *testing.T) {
	ctx := context.Background()
	url := startServer(t)
	owner := newClientEnv(t, url, gun)
	rootKey, _ := owner.keys.add(t)
	targetsKey, _ := owner.keys.add(t)
	snapKey, _ := owner.keys.add(t)
	if err := client.Initialize(ctx, owner.remote, owner.cache, client.InitOptions{Root: rootKey, Targets: targetsKey, Snapshot: snapKey}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := owner.pub.Publish(ctx, []changes.Change{target(t, "targets", "v1", "one")}); err != nil {
		t.Fatal(err)
	}
	// Targets key rotation: root re-signed, targets re-signed by the new key.
	_, newTargets := owner.keys.add(t)
	rot, _ := changes.RotateBaseRole("targets", newTargets)
	if err := owner.pub.Publish(ctx, []changes.Change{rot, changes.Witness("targets")}); err != nil {
		t.Fatalf("targets rotation: %v", err)
	}
	// A client that trusted the repository before still verifies.
	other := newClientEnv(t, url, gun)
	if got := other.list(t); got["v1"] != "targets" {
		t.Fatalf("fresh client: %v", got)
	}
	if got := owner.list(t); got["v1"] != "targets" {
		t.Fatalf("old client after rotation: %v", got)
	}
}

// TestExpiredTargetsAreRenewed: notary refuses every operation once targets
// has expired; signet refuses to read it but re-signs it on the next publish.
func TestExpiredTargetsAreRenewed(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	shift := time.Duration(0)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(shift) }
	url := startServerAt(t, now)
	owner := newClientEnv(t, url, gun)
	owner.pub.Now, owner.pub.Reader.Now = now, now
	rootKey, _ := owner.keys.add(t)
	targetsKey, _ := owner.keys.add(t)
	snapKey, _ := owner.keys.add(t)
	if err := client.Initialize(ctx, owner.remote, owner.cache, client.InitOptions{Root: rootKey, Targets: targetsKey, Snapshot: snapKey}, now()); err != nil {
		t.Fatal(err)
	}
	if err := owner.pub.Publish(ctx, []changes.Change{target(t, "targets", "v1", "one")}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	shift = client.TargetsExpiry + 24*time.Hour
	mu.Unlock()
	if _, err := owner.pub.Reader.Update(ctx); !errors.Is(err, trust.ErrExpired) {
		t.Fatalf("reading expired targets: %v", err)
	}
	if err := owner.pub.Publish(ctx, []changes.Change{target(t, "targets", "v2", "two")}); err != nil {
		t.Fatalf("publishing over expired targets: %v", err)
	}
	if got := owner.list(t); got["v1"] != "targets" || got["v2"] != "targets" {
		t.Fatalf("after renewal: %v", got)
	}
}

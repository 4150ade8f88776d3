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

func (m memKeys) Signer(_ context.Context, id string) (crypto.Signer, bool, error) {
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
	remote, err := client.NewRemote(url, httptest.NewServer(nil).Client(), tuf.GUN(gun))
	if err != nil {
		t.Fatal(err)
	}
	c := &clientEnv{remote: remote, cache: &memCache{}, keys: memKeys{}}
	c.pub = &client.Publisher{Reader: &client.Reader{Remote: remote, Cache: c.cache}, Keys: c.keys}
	return c
}

func target(role, name, content string) changes.Change {
	return changes.AddTarget{Role: role, Name: name, Meta: tuf.NewFileMeta([]byte(content))}
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
			if err := owner.pub.Publish(ctx, []changes.Change{target("targets", "v1", "one")}); err != nil {
				t.Fatalf("first publish: %v", err)
			}
			if got := owner.list(t); got["v1"] != "targets" {
				t.Fatalf("after first publish: %v", got)
			}
			// Delegate targets/releases to a key only the delegate holds.
			delegate := newClientEnv(t, url, gun)
			_, dpub := delegate.keys.add(t)
			add := changes.AddDelegation{Role: "targets/releases", Threshold: 1, Keys: []*keys.PublicKey{dpub}, Paths: []string{""}}
			if err := owner.pub.Publish(ctx, []changes.Change{add}); err != nil {
				t.Fatalf("delegation: %v", err)
			}
			err := delegate.pub.Publish(ctx, []changes.Change{target("targets/releases", "v2", "two")})
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
			rm := changes.UpdateDelegation{Role: "targets/releases", RemoveKeys: []string{dpub.ID()}}
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
	if err := owner.pub.Publish(ctx, []changes.Change{target("targets", "v1", "one")}); err != nil {
		t.Fatal(err)
	}
	// Targets key rotation: root re-signed, targets re-signed by the new key.
	_, newTargets := owner.keys.add(t)
	rot := changes.RotateKey{Role: "targets", Keys: []*keys.PublicKey{newTargets}}
	if err := owner.pub.Publish(ctx, []changes.Change{rot}); err != nil {
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
	root := currentRoot(t, owner)
	if _, kept := root.Keys[oldTargetsID(t, targetsKey)]; kept {
		t.Error("the replaced targets key is still listed in root.json")
	}

	// Root key rotation, with a staged change published alongside.
	oldRoot := root.Roles[tuf.RoleRoot].KeyIDs
	var newRoot crypto.Signer
	err := owner.pub.RotateRoot(ctx, func(context.Context) (crypto.Signer, error) {
		s, _ := owner.keys.add(t)
		newRoot = s
		return s, nil
	}, target("targets", "v2", "two"))
	if err != nil {
		t.Fatalf("root rotation: %v", err)
	}
	root = currentRoot(t, owner)
	ids := root.Roles[tuf.RoleRoot].KeyIDs
	newPub, _ := keys.FromCrypto(newRoot.Public())
	if len(ids) != 1 || root.Keys[ids[0]].CanonicalID() != newPub.ID() || len(root.Keys[ids[0]].Certificates()) != 1 {
		t.Fatalf("root role after rotation: %v", ids)
	}
	// notary 0.7's shape: the old root certificate stays among the keys.
	if len(oldRoot) != 1 || root.Keys[oldRoot[0]] == nil || root.Version != 3 {
		t.Fatalf("root.json after rotation: version %d, keys %d, old root key kept: %v", root.Version, len(root.Keys), root.Keys[oldRoot[0]] != nil)
	}
	for _, c := range []*clientEnv{owner, newClientEnv(t, url, gun)} { // trusted the old root; fresh
		if got := c.list(t); got["v1"] != "targets" || got["v2"] != "targets" {
			t.Fatalf("after root rotation: %v", got)
		}
	}
	// A later rotation of another role keeps the old root certificate too.
	_, newSnap := owner.keys.add(t)
	if err := owner.pub.Publish(ctx, []changes.Change{changes.RotateKey{Role: "snapshot", Keys: []*keys.PublicKey{newSnap}}}); err != nil {
		t.Fatal(err)
	}
	if root = currentRoot(t, owner); root.Keys[oldRoot[0]] == nil || root.Keys[newSnap.ID()] == nil {
		t.Fatal("a snapshot rotation dropped the old root certificate")
	}

	// Refusals: the current root key not held (no new key is asked for),
	// and a "rotation" to the current key.
	asked := false
	stranger := newClientEnv(t, url, gun)
	err = stranger.pub.RotateRoot(ctx, func(context.Context) (crypto.Signer, error) { asked = true; return newRoot, nil })
	if !errors.Is(err, client.ErrNoKey) || asked {
		t.Fatalf("rotation without the root key: %v (new key asked: %v)", err, asked)
	}
	err = owner.pub.RotateRoot(ctx, func(context.Context) (crypto.Signer, error) { return newRoot, nil })
	if err == nil || !strings.Contains(err.Error(), "is already the root key") {
		t.Fatalf("rotation to the current key: %v", err)
	}
	if currentRoot(t, owner).Version != 4 {
		t.Fatal("a refused rotation published")
	}
}

func currentRoot(t *testing.T, c *clientEnv) tuf.Root {
	t.Helper()
	b, err := c.remote.GetCurrent(context.Background(), tuf.RoleRoot, client.MaxMetadataSize)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tuf.ParseRoot(b)
	if err != nil {
		t.Fatal(err)
	}
	return m.Signed
}

func oldTargetsID(t *testing.T, s crypto.Signer) string {
	k, err := keys.FromCrypto(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	return k.ID()
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
	if err := owner.pub.Publish(ctx, []changes.Change{target("targets", "v1", "one")}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	shift = client.TargetsExpiry + 24*time.Hour
	mu.Unlock()
	if _, err := owner.pub.Reader.Update(ctx); !errors.Is(err, trust.ErrExpired) {
		t.Fatalf("reading expired targets: %v", err)
	}
	if err := owner.pub.Publish(ctx, []changes.Change{target("targets", "v2", "two")}); err != nil {
		t.Fatalf("publishing over expired targets: %v", err)
	}
	if got := owner.list(t); got["v1"] != "targets" || got["v2"] != "targets" {
		t.Fatalf("after renewal: %v", got)
	}
}

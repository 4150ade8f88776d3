package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/store/sqlstore"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

const gun = "example.com/client/app"

// memCache is an in-memory client.Cache.
type memCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (c *memCache) Get(role string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[role], nil
}

func (c *memCache) Put(role string, b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	c.m[role] = b
	return nil
}

// startServer runs a signet server in process and returns its URL.
func startServer(t *testing.T) string {
	t.Helper()
	return startServerAt(t, time.Now)
}

// startServerAt runs a signet server whose clock is now.
func startServerAt(t *testing.T, now func() time.Time) string {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cust, err := custody.Open(ctx, st, []byte("pw"), custody.AlgorithmECDSA, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Custodian: cust, Now: now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

// publishRepo creates a repository on the server with a server-held
// timestamp key and returns the test repository to keep signing with.
func publishRepo(t *testing.T, remote *client.Remote) *tuftest.Repo {
	t.Helper()
	ctx := context.Background()
	tsKey, err := remote.GetKey(ctx, "timestamp")
	if err != nil {
		t.Fatal(err)
	}
	r := tuftest.NewRepo(t, remote.GUN(), time.Now())
	r.SetRoleKeys("timestamp", tuftest.Key{Key: tsKey})
	r.Delegate("targets/releases", []string{""})
	r.AddTarget("targets", "v1", []byte("one"))
	r.AddTarget("targets/releases", "v1", []byte("released one"))
	r.AddTarget("targets/releases", "v2", []byte("two"))
	r.SignAll()
	if err := remote.Publish(ctx, map[string][]byte{"root": r.Signed["root"], "targets": r.Signed["targets"],
		"targets/releases": r.Signed["targets/releases"], "snapshot": r.Signed["snapshot"]}); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReaderUpdateAndList(t *testing.T) {
	url := startServer(t)
	remote, err := client.NewRemote(url, httptest.NewServer(nil).Client(), gun)
	if err != nil {
		t.Fatal(err)
	}
	publishRepo(t, remote)
	cache := &memCache{}
	rd := &client.Reader{Remote: remote, Cache: cache}
	v, err := rd.Update(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	list := client.ListTargets(v)
	if len(list) != 2 || list[0].Name != "v1" || list[0].Role != "targets" || list[1].Role != "targets/releases" {
		t.Fatalf("list %+v", list)
	}
	// Docker's precedence: releases first.
	if tg, ok := client.Lookup(v, "v1", "targets/releases", "targets"); !ok || tg.Role != "targets/releases" || tg.Meta.Length != 12 {
		t.Fatalf("lookup %+v %v", tg, ok)
	}
	if cache.m["targets/releases"] == nil || cache.m["timestamp"] == nil {
		t.Error("verified metadata not cached")
	}
	// A second update works from the cache.
	if _, err := rd.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestReaderWalksRootRotations(t *testing.T) {
	url := startServer(t)
	hc := httptest.NewServer(nil).Client()
	remote, _ := client.NewRemote(url, hc, gun)
	r := publishRepo(t, remote)
	cache := &memCache{}
	if _, err := (&client.Reader{Remote: remote, Cache: cache}).Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Rotate the root key twice; each new root signed by old and new keys.
	for range 2 {
		old := r.Keys["root"]
		k := tuftest.NewRootKey(t, gun, time.Now())
		r.SetRoleKeys("root", k)
		r.Bump("root")
		r.Sign("root", append(old, k)...)
		r.Bump("snapshot")
		r.SignSnapshot()
		if err := remote.Publish(context.Background(), map[string][]byte{"root": r.Signed["root"], "snapshot": r.Signed["snapshot"]}); err != nil {
			t.Fatal(err)
		}
	}
	v, err := (&client.Reader{Remote: remote, Cache: cache}).Update(context.Background())
	if err != nil {
		t.Fatalf("client with root v1 cached did not follow two rotations: %v", err)
	}
	if v.Root().Signed.Version != 3 {
		t.Errorf("root version %d", v.Root().Signed.Version)
	}
}

func TestReaderRefusesRollbackAndUnknownRepo(t *testing.T) {
	url := startServer(t)
	hc := httptest.NewServer(nil).Client()
	remote, _ := client.NewRemote(url, hc, gun)
	publishRepo(t, remote)
	cache := &memCache{}
	if _, err := (&client.Reader{Remote: remote, Cache: cache}).Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Pretend we had seen a much newer timestamp: the server's is a rollback.
	ts, _ := tuf.ParseTimestamp(cache.m["timestamp"])
	newer := tuftest.Swizzle(t, cache.m["timestamp"], func(s map[string]any) { s["version"] = ts.Signed.Version + 5 })
	cache.m["timestamp"] = newer
	_, err := (&client.Reader{Remote: remote, Cache: cache}).Update(context.Background())
	if !errors.Is(err, trust.ErrRollback) {
		t.Fatalf("rollback not refused: %v", err)
	}
	other, _ := client.NewRemote(url, hc, "example.com/none")
	if _, err := (&client.Reader{Remote: other, Cache: &memCache{}}).Update(context.Background()); !errors.Is(err, client.ErrNoTrustData) || !strings.Contains(err.Error(), "example.com/none") {
		t.Fatalf("unknown repository: %v", err)
	}
}

package client_test

// Client-side attack suite: every attack of the TUF specification and of
// Notary's threat model (docs/design/threat-model.md maps each to the tests
// here), built with tuftest's swizzlers and served by a malicious trust
// server (tuftest.Server). The test repository holds every key, so it is
// the honest owner's workbench and, for the keys an attack assumes
// compromised, the attacker's.

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/policy"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

const (
	attackGUN = "example.com/attack/app"
	otherGUN  = "example.com/attack/other"
)

var attackNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// attackEnv is one repository served by a malicious server, and one client
// (with its cache) reading it.
type attackEnv struct {
	t     *testing.T
	repo  *tuftest.Repo
	srv   *tuftest.Server
	hs    *httptest.Server
	cache *memCache
	now   time.Time
}

// newAttackEnv publishes a repository with targets/releases (all paths)
// listing v1, and targets listing v1 too.
func newAttackEnv(t *testing.T) *attackEnv {
	t.Helper()
	r := tuftest.NewRepo(t, attackGUN, attackNow)
	r.Delegate("targets/releases", []string{""})
	r.AddTarget("targets", "v1", []byte("image one"))
	r.AddTarget("targets/releases", "v1", []byte("image one"))
	r.SignAll()
	e := &attackEnv{t: t, repo: r, srv: tuftest.NewServer(attackGUN), cache: &memCache{}, now: attackNow}
	e.srv.Publish(r)
	e.hs = httptest.NewServer(e.srv)
	t.Cleanup(e.hs.Close)
	return e
}

func (e *attackEnv) reader() *client.Reader {
	remote, err := client.NewRemote(e.hs.URL, e.hs.Client(), attackGUN)
	if err != nil {
		e.t.Fatal(err)
	}
	return &client.Reader{Remote: remote, Cache: e.cache, Now: func() time.Time { return e.now }}
}

func (e *attackEnv) update() (*trust.Repo, error) { return e.reader().Update(context.Background()) }

func (e *attackEnv) mustUpdate() *trust.Repo {
	e.t.Helper()
	v, err := e.update()
	if err != nil {
		e.t.Fatalf("honest update refused: %v", err)
	}
	return v
}

// release is the honest owner's next publish: target name → content in
// role, the role re-signed, then a new snapshot and timestamp.
func (e *attackEnv) release(role, name, content string) {
	e.repo.AddTarget(role, name, []byte(content))
	e.repo.Bump(role)
	e.repo.Sign(role)
	e.online()
}

// online signs a new snapshot and timestamp over whatever the repository
// holds now and serves everything: what the server (or whoever holds its
// online keys) does.
func (e *attackEnv) online() {
	e.repo.Bump(tuf.RoleSnapshot)
	e.repo.SignSnapshot()
	e.repo.Bump(tuf.RoleTimestamp)
	e.repo.SignTimestamp()
	e.srv.Publish(e.repo)
}

// onlineTimestampOnly signs a new timestamp over the snapshot last signed:
// an attacker with the timestamp key alone.
func (e *attackEnv) onlineTimestampOnly() {
	e.repo.Bump(tuf.RoleTimestamp)
	e.repo.SignTimestamp()
	e.srv.Serve(tuf.RoleTimestamp, e.repo.Signed[tuf.RoleTimestamp])
}

// wantRefused checks that err is the step error of role for rule — or,
// for client.ErrChecksum (a file substituted under the checksum its parent
// lists, refused as it downloads, before it is parsed), that error for a
// file of role.
func wantRefused(t *testing.T, err error, role string, rule error) {
	t.Helper()
	if err == nil {
		t.Fatalf("attack accepted; want %v at step %s", rule, role)
	}
	if rule == client.ErrChecksum {
		if !errors.Is(err, client.ErrChecksum) || !strings.HasPrefix(err.Error(), role+": ") {
			t.Fatalf("error %v; want %v for a %s file", err, rule, role)
		}
		return
	}
	var se *trust.StepError
	if !errors.As(err, &se) || se.Role != role || !errors.Is(err, rule) {
		t.Fatalf("error %v; want %v at step %s", err, rule, role)
	}
}

// keepsCache runs attack and checks that the client's cache — its trusted
// state — is exactly what it was.
func (e *attackEnv) keepsCache(attack func()) {
	e.t.Helper()
	before := maps.Clone(e.cache.m)
	attack()
	if !maps.EqualFunc(before, e.cache.m, bytes.Equal) {
		e.t.Fatal("a refused update changed the client's trusted metadata")
	}
}

// wantSkipped runs attack and checks that the update succeeds with the
// delegation role left out for rule — as notary's client leaves out a
// delegation whose signatures do not meet its threshold or that expired —
// so that nothing it lists is trusted, and that the client's cached copy
// of the role did not change.
func (e *attackEnv) wantSkipped(role string, rule error, attack func()) *trust.Repo {
	e.t.Helper()
	before := e.cache.m[role]
	attack()
	v, err := e.update()
	if err != nil {
		e.t.Fatalf("update refused (%v); want %s left out for %v", err, role, rule)
	}
	if why := v.Skipped()[role]; !errors.Is(why, rule) {
		e.t.Fatalf("%s skipped for %v; want %v", role, why, rule)
	}
	if v.Targets(role) != nil {
		e.t.Fatalf("%s is loaded although it was refused", role)
	}
	if !bytes.Equal(before, e.cache.m[role]) {
		e.t.Fatalf("the refused %s replaced the cached one", role)
	}
	return v
}

func digestOf(t client.Target) []byte { return t.Meta.Hashes["sha256"] }

func sha(content string) []byte { return tuf.NewFileMeta([]byte(content)).Hashes["sha256"] }

// Arbitrary software: a target that nobody with the right key signed.
func TestAttackArbitrarySoftware(t *testing.T) {
	tests := []struct {
		name   string
		attack func(e *attackEnv)
		role   string
		rule   error
	}{
		{"target hash swapped, served under the honest name", func(e *attackEnv) {
			// No key at all: the server answers the honest checksum URL
			// with a swizzled targets file.
			fm := e.repo.Snapshot.Meta[tuf.RoleTargets]
			e.srv.ServeAt(tuf.RoleTargets, fm.Hashes["sha256"], tuftest.SwapTarget(e.t, e.repo.Signed[tuf.RoleTargets], "v1", []byte("evil")))
		}, tuf.RoleTargets, client.ErrChecksum},
		{"target hash swapped, snapshot and timestamp re-signed by the online keys", func(e *attackEnv) {
			e.repo.Signed[tuf.RoleTargets] = tuftest.SwapTarget(e.t, e.repo.Signed[tuf.RoleTargets], "v1", []byte("evil"))
			e.online()
		}, tuf.RoleTargets, trust.ErrSignatures},
		{"targets unsigned", func(e *attackEnv) {
			e.repo.AddTarget(tuf.RoleTargets, "v1", []byte("evil"))
			e.repo.Bump(tuf.RoleTargets)
			e.repo.Signed[tuf.RoleTargets] = tuftest.StripSignatures(e.t, e.repo.Sign(tuf.RoleTargets))
			e.online()
		}, tuf.RoleTargets, trust.ErrSignatures},
		{"targets signed by the attacker's key", func(e *attackEnv) {
			e.repo.AddTarget(tuf.RoleTargets, "v1", []byte("evil"))
			e.repo.Bump(tuf.RoleTargets)
			e.repo.Sign(tuf.RoleTargets, tuftest.NewKey(e.t))
			e.online()
		}, tuf.RoleTargets, trust.ErrSignatures},
		{"targets signed by the online keys", func(e *attackEnv) {
			e.repo.AddTarget(tuf.RoleTargets, "v1", []byte("evil"))
			e.repo.Bump(tuf.RoleTargets)
			e.repo.Sign(tuf.RoleTargets, append(e.repo.Keys[tuf.RoleSnapshot], e.repo.Keys[tuf.RoleTimestamp]...)...)
			e.online()
		}, tuf.RoleTargets, trust.ErrSignatures},
		{"delegation rewritten by the online keys", func(e *attackEnv) {
			e.repo.Signed["targets/releases"] = tuftest.SwapTarget(e.t, e.repo.Signed["targets/releases"], "v1", []byte("evil"))
			e.online()
		}, "targets/releases", trust.ErrThreshold},
		{"snapshot signed by the attacker's key", func(e *attackEnv) {
			e.repo.Bump(tuf.RoleSnapshot)
			e.repo.SignSnapshot()
			e.repo.Sign(tuf.RoleSnapshot, tuftest.NewKey(e.t))
			e.onlineTimestampOnly()
			e.srv.Publish(e.repo)
		}, tuf.RoleSnapshot, trust.ErrSignatures},
		{"timestamp signed by the attacker's key", func(e *attackEnv) {
			e.repo.Bump(tuf.RoleTimestamp)
			e.repo.SignTimestamp()
			e.srv.Serve(tuf.RoleTimestamp, e.repo.Sign(tuf.RoleTimestamp, tuftest.NewKey(e.t)))
		}, tuf.RoleTimestamp, trust.ErrSignatures},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tuf.IsDelegation(tt.role) {
				// A delegation that does not verify is left out, as by
				// notary: the evil digest is never seen, v1 resolves to
				// what targets lists.
				for _, prior := range []bool{true, false} {
					e := newAttackEnv(t)
					if prior {
						e.mustUpdate()
					}
					v := e.wantSkipped(tt.role, tt.rule, func() { tt.attack(e) })
					if tg, ok := client.Lookup(v, "v1"); !ok || tg.Role != tuf.RoleTargets || !bytes.Equal(digestOf(tg), sha("image one")) {
						t.Fatalf("v1 resolves to %+v", tg)
					}
				}
				return
			}
			// A client that trusted the honest state before: its cache
			// stays as it was.
			e := newAttackEnv(t)
			e.mustUpdate()
			e.keepsCache(func() {
				tt.attack(e)
				_, err := e.update()
				wantRefused(t, err, tt.role, tt.rule)
			})
			// A client on first contact: it trusts the (honest) root and
			// nothing else.
			e = newAttackEnv(t)
			tt.attack(e)
			_, err := e.update()
			wantRefused(t, err, tt.role, tt.rule)
			if len(e.cache.m) != 1 || e.cache.m[tuf.RoleRoot] == nil {
				t.Errorf("first contact cached %d files after a refused update", len(e.cache.m))
			}
		})
	}
}

// Rollback: metadata older than what the client has already trusted.
func TestAttackRollback(t *testing.T) {
	tests := []struct {
		name   string
		attack func(e *attackEnv, old map[string][]byte)
		role   string
		rule   error
	}{
		{"whole older state replayed", func(e *attackEnv, old map[string][]byte) {
			e.srv.PublishFiles(old)
		}, tuf.RoleTimestamp, trust.ErrRollback},
		{"older snapshot under a new timestamp (timestamp key)", func(e *attackEnv, old map[string][]byte) {
			e.repo.Signed[tuf.RoleSnapshot] = old[tuf.RoleSnapshot]
			e.srv.Serve(tuf.RoleSnapshot, old[tuf.RoleSnapshot])
			e.onlineTimestampOnly()
		}, tuf.RoleSnapshot, trust.ErrRollback},
		{"older targets under a new snapshot (snapshot and timestamp keys)", func(e *attackEnv, old map[string][]byte) {
			e.repo.Signed[tuf.RoleTargets] = old[tuf.RoleTargets]
			e.online()
		}, tuf.RoleTargets, trust.ErrRollback},
		{"older delegation under a new snapshot (snapshot and timestamp keys)", func(e *attackEnv, old map[string][]byte) {
			e.repo.Signed["targets/releases"] = old["targets/releases"]
			e.online()
		}, "targets/releases", trust.ErrRollback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newAttackEnv(t)
			e.mustUpdate()
			old := e.repo.Files()
			// v1 was bad; the owner re-points it in both roles.
			e.repo.AddTarget(tuf.RoleTargets, "v1", []byte("fixed"))
			e.repo.Bump(tuf.RoleTargets)
			e.repo.Sign(tuf.RoleTargets)
			e.release("targets/releases", "v1", "fixed")
			v := e.mustUpdate()
			if tg, ok := client.Lookup(v, "v1", "targets/releases", tuf.RoleTargets); !ok || !bytes.Equal(digestOf(tg), sha("fixed")) {
				t.Fatalf("honest release not seen: %+v", tg)
			}
			e.keepsCache(func() {
				tt.attack(e, old)
				_, err := e.update()
				wantRefused(t, err, tt.role, tt.rule)
			})
		})
	}

	t.Run("older root after a rotation", func(t *testing.T) {
		e := newAttackEnv(t)
		e.mustUpdate()
		old := e.repo.Files()
		revoked := e.repo.Keys[tuf.RoleTimestamp]
		// The owner rotates the root key and revokes the timestamp key
		// (root version 2).
		oldRoot := e.repo.Keys[tuf.RoleRoot]
		k := tuftest.NewRootKey(t, attackGUN, attackNow)
		e.repo.SetRoleKeys(tuf.RoleRoot, k)
		e.repo.SetRoleKeys(tuf.RoleTimestamp, tuftest.NewKey(t))
		e.repo.Bump(tuf.RoleRoot)
		e.repo.Sign(tuf.RoleRoot, append(oldRoot, k)...)
		e.online()
		if v := e.mustUpdate(); v.Root().Signed.Version != 2 {
			t.Fatalf("root version %d", v.Root().Signed.Version)
		}
		// The attacker, holding the revoked timestamp key, serves root
		// version 1 and a new timestamp signed with the revoked key.
		e.keepsCache(func() {
			e.srv.PublishFiles(old)
			ts := tuf.Timestamp{Common: tuf.Common{Type: tuf.TypeTimestamp, Version: 50, Expires: attackNow.AddDate(0, 0, 14)},
				Meta: map[string]tuf.FileMeta{tuf.RoleSnapshot: tuf.NewFileMeta(old[tuf.RoleSnapshot])}}
			b, err := tuf.Sign(&ts, revoked...)
			if err != nil {
				t.Fatal(err)
			}
			e.srv.Serve(tuf.RoleTimestamp, b)
			_, err = e.update()
			wantRefused(t, err, tuf.RoleTimestamp, trust.ErrSignatures)
			// The older root the server calls current is passed over
			// (keepsCache: root version 2 stays), and the error is the
			// timestamp's alone, without a note about roots.
			if strings.Contains(err.Error(), "root") {
				t.Errorf("error talks about roots: %v", err)
			}
		})
	})
}

// Indefinite freeze: the server keeps answering with metadata that was
// once valid. Expiry bounds it: 14 days for the server's timestamp.
func TestAttackIndefiniteFreeze(t *testing.T) {
	t.Run("timestamp replayed within its lifetime is accepted", func(t *testing.T) {
		// The bound of the freeze, not a refusal: TUF cannot tell a stale
		// timestamp from a fresh one before it expires.
		e := newAttackEnv(t)
		e.mustUpdate()
		e.now = e.now.Add(13 * 24 * time.Hour)
		e.mustUpdate()
	})
	t.Run("expired timestamp served forever", func(t *testing.T) {
		e := newAttackEnv(t)
		e.mustUpdate()
		e.now = e.now.Add(15 * 24 * time.Hour)
		e.keepsCache(func() {
			_, err := e.update()
			wantRefused(t, err, tuf.RoleTimestamp, trust.ErrExpired)
		})
	})
	for _, role := range []string{tuf.RoleSnapshot, tuf.RoleTargets, "targets/releases"} {
		t.Run("expired "+role+" under a fresh timestamp", func(t *testing.T) {
			// The attacker holds the timestamp key (or the server keeps
			// re-signing it) but cannot renew what the others sign.
			e := newAttackEnv(t)
			switch role {
			case tuf.RoleSnapshot:
				e.repo.Snapshot.Expires = attackNow.Add(24 * time.Hour)
			default:
				e.repo.Targets[role].Expires = attackNow.Add(24 * time.Hour)
			}
			e.repo.SignAll()
			e.srv.Publish(e.repo)
			e.mustUpdate()
			e.now = e.now.Add(48 * time.Hour)
			if tuf.IsDelegation(role) {
				e.wantSkipped(role, trust.ErrExpired, e.onlineTimestampOnly)
				return
			}
			e.keepsCache(func() {
				e.onlineTimestampOnly()
				_, err := e.update()
				wantRefused(t, err, role, trust.ErrExpired)
			})
		})
	}
}

// Fast-forward: a compromised online key signs a version far ahead, which
// the client accepts (it is validly signed); after the owner rotates the
// key, the honest, lower versions would look like a rollback. As TUF's
// client workflow prescribes (5.3.11), the rotation makes the client forget
// its trusted timestamp and snapshot, so it recovers by itself.
func TestAttackFastForward(t *testing.T) {
	for _, role := range []string{tuf.RoleTimestamp, tuf.RoleSnapshot} {
		t.Run(role, func(t *testing.T) {
			e := newAttackEnv(t)
			e.mustUpdate()
			// The attacker, holding the online keys, fast-forwards.
			honestTS, honestSnap := e.repo.Timestamp.Version, e.repo.Snapshot.Version
			e.repo.Timestamp.Version = honestTS + 1
			if role == tuf.RoleTimestamp {
				e.repo.Timestamp.Version = 1 << 30
			} else {
				e.repo.Snapshot.Version = 1 << 30
			}
			e.repo.SignSnapshot()
			e.repo.SignTimestamp()
			e.srv.Publish(e.repo)
			if v := e.mustUpdate(); v.Timestamp().Signed.Version != 1<<30 && v.Snapshot().Signed.Version != 1<<30 {
				t.Fatal("fast-forwarded metadata not taken")
			}
			// The owner rotates the compromised key in root version 2; the
			// server goes on from its own, honest versions.
			oldRoot := e.repo.Keys[tuf.RoleRoot]
			e.repo.SetRoleKeys(role, tuftest.NewKey(t))
			e.repo.Bump(tuf.RoleRoot)
			e.repo.Sign(tuf.RoleRoot, oldRoot...)
			e.repo.Snapshot.Version = honestSnap + 1
			e.repo.Timestamp.Version = honestTS + 2
			e.repo.SignSnapshot()
			e.repo.SignTimestamp()
			e.srv.Publish(e.repo)

			// Before the rotation reaches the client, the honest versions
			// are refused as a rollback …
			if v := e.mustUpdate(); v.Timestamp().Signed.Version != honestTS+2 {
				t.Errorf("timestamp version %d after recovery", v.Timestamp().Signed.Version)
			}
		})
	}
}

// Mix-and-match: files of different states served together.
func TestAttackMixAndMatch(t *testing.T) {
	setup := func(t *testing.T, prior bool) (*attackEnv, map[string][]byte) {
		e := newAttackEnv(t)
		if prior {
			e.mustUpdate()
		}
		old := e.repo.Files()
		e.repo.AddTarget(tuf.RoleTargets, "v2", []byte("two"))
		e.repo.Bump(tuf.RoleTargets)
		e.repo.Sign(tuf.RoleTargets)
		e.release("targets/releases", "v1", "fixed")
		if prior {
			e.mustUpdate()
		}
		return e, old
	}
	t.Run("old targets under the new checksum name", func(t *testing.T) {
		e, old := setup(t, true)
		e.keepsCache(func() {
			e.srv.ServeAt(tuf.RoleTargets, e.repo.Snapshot.Meta[tuf.RoleTargets].Hashes["sha256"], old[tuf.RoleTargets])
			_, err := e.update()
			wantRefused(t, err, tuf.RoleTargets, client.ErrChecksum)
		})
	})
	t.Run("old snapshot under the new timestamp", func(t *testing.T) {
		e, old := setup(t, true)
		e.keepsCache(func() {
			e.srv.ServeAt(tuf.RoleSnapshot, e.repo.Timestamp.Meta[tuf.RoleSnapshot].Hashes["sha256"], old[tuf.RoleSnapshot])
			_, err := e.update()
			wantRefused(t, err, tuf.RoleSnapshot, client.ErrChecksum)
		})
	})
	t.Run("new targets with old releases in a snapshot the online keys sign", func(t *testing.T) {
		e, old := setup(t, true)
		e.keepsCache(func() {
			e.repo.Signed["targets/releases"] = old["targets/releases"]
			e.online()
			_, err := e.update()
			wantRefused(t, err, "targets/releases", trust.ErrRollback)
		})
	})
	t.Run("a client without prior state cannot tell (documented limit)", func(t *testing.T) {
		// With the snapshot and timestamp keys — the server's own in
		// Docker's setup — a first-contact client is served any
		// combination of validly signed files (Notary §8.1: TOFU).
		e, old := setup(t, false)
		e.repo.Signed["targets/releases"] = old["targets/releases"]
		e.online()
		v := e.mustUpdate()
		if tg, _ := client.Lookup(v, "v1", "targets/releases"); !bytes.Equal(digestOf(tg), sha("image one")) {
			t.Fatal("expected the mixed state to be served")
		}
	})
}

// Endless data: the client never reads more than the metadata allows.
func TestAttackEndlessData(t *testing.T) {
	const slack = 8 << 20 // socket buffers between the handler and the client
	tests := []struct {
		name  string
		role  string
		limit int64 // what the client may read
		h     *tuftest.Endless
	}{
		{"endless timestamp", tuf.RoleTimestamp, client.MaxTimestampSize, &tuftest.Endless{Prefix: []byte(`{"signed":`)}},
		{"endless snapshot", tuf.RoleSnapshot, 0, &tuftest.Endless{Prefix: []byte(`{"signed":`)}},
		{"endless targets", tuf.RoleTargets, 0, &tuftest.Endless{Prefix: []byte(`{"signed":`)}},
		{"endless delegation", "targets/releases", 0, &tuftest.Endless{Prefix: []byte(`{"signed":`)}},
		{"timestamp announcing 2 GiB", tuf.RoleTimestamp, client.MaxTimestampSize, &tuftest.Endless{DeclaredLength: 2 << 30}},
		{"targets announcing more than its length", tuf.RoleTargets, 0, &tuftest.Endless{DeclaredLength: 1 << 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newAttackEnv(t)
			e.mustUpdate()
			e.release("targets/releases", "v2", "two")
			e.srv.Override(tt.role, tt.h)
			e.keepsCache(func() {
				_, err := e.update()
				if !errors.Is(err, client.ErrMaliciousServer) {
					t.Fatalf("endless %s: %v", tt.role, err)
				}
			})
			if tt.h.Sent() > tt.limit+slack {
				t.Errorf("the server sent %d bytes; the client should have stopped near %d", tt.h.Sent(), tt.limit)
			}
		})
	}
	t.Run("endless root on first contact", func(t *testing.T) {
		if testing.Short() {
			t.Skip("streams 100 MiB")
		}
		e := newAttackEnv(t)
		h := &tuftest.Endless{Prefix: []byte(`{"signed":`)}
		e.srv.Override(tuf.RoleRoot, h)
		if _, err := e.update(); !errors.Is(err, client.ErrMaliciousServer) {
			t.Fatalf("endless root: %v", err)
		}
		if h.Sent() > client.MaxMetadataSize+slack {
			t.Errorf("the server sent %d bytes", h.Sent())
		}
	})
	t.Run("endless error body", func(t *testing.T) {
		e := newAttackEnv(t)
		h := &tuftest.Endless{Prefix: []byte(`{"errors":[`), Status: http.StatusInternalServerError}
		e.srv.Override(tuf.RoleTimestamp, h)
		_, err := e.update()
		var se *client.ServerError
		if !errors.As(err, &se) || se.Status != http.StatusInternalServerError {
			t.Fatalf("endless error body: %v", err)
		}
		if h.Sent() > slack {
			t.Errorf("the server sent %d bytes of an error", h.Sent())
		}
	})
	t.Run("slow retrieval stops at the caller's deadline", func(t *testing.T) {
		e := newAttackEnv(t)
		e.srv.Override(tuf.RoleTimestamp, tuftest.Trickle{Interval: 50 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := e.reader().Update(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Fatalf("trickle: %v after %v", err, time.Since(start))
		}
	})
}

// Extraneous dependencies: a delegation listing targets outside its
// delegated paths. Readers hide them (the reference does the same; only
// Signet's server also refuses them on upload).
func TestAttackExtraneousTargets(t *testing.T) {
	e := newAttackEnv(t)
	r := e.repo
	r.Delegate("targets/team", []string{"team/"})
	r.Delegate("targets/team/a", []string{"team/a/", "prod/"}) // wider than its parent
	r.AddTarget("targets/team", "team/app", []byte("team app"))
	r.AddTarget("targets/team", "prod/app", []byte("evil"))
	r.AddTarget("targets/team", "v1", []byte("evil"))
	r.AddTarget("targets/team/a", "team/a/x", []byte("x"))
	r.AddTarget("targets/team/a", "prod/db", []byte("evil"))
	// A role listed in the snapshot that nobody delegates to.
	ghost := tuftest.NewTargets(attackNow.AddDate(1, 0, 0))
	r.Targets["targets/ghost"] = ghost
	r.Keys["targets/ghost"] = []tuftest.Key{tuftest.NewKey(t)}
	r.AddTarget("targets/ghost", "ghost", []byte("evil"))
	r.Bump(tuf.RoleTargets)
	r.SignAll()
	e.srv.Publish(r)

	v := e.mustUpdate()
	var names []string
	for _, tg := range client.ListTargets(v, "targets/releases", tuf.RoleTargets) {
		names = append(names, tg.Role+":"+tg.Name)
	}
	want := "targets/team/a:team/a/x targets/team:team/app targets/releases:v1"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("listed %q, want %q", got, want)
	}
	for _, name := range []string{"prod/app", "prod/db", "ghost"} {
		if tg, ok := client.Lookup(v, name); ok {
			t.Errorf("lookup %s found %+v", name, tg)
		}
	}
	if tg, ok := client.Lookup(v, "v1"); !ok || tg.Role != tuf.RoleTargets {
		t.Errorf("v1 resolves to %+v; targets/team must not shadow it", tg)
	}
	if _, ok := client.RoleTarget(v, "targets/team", "prod/app"); ok {
		t.Error("RoleTarget shows a target outside the role's paths")
	}
	if v.Targets("targets/ghost") != nil {
		t.Error("an undelegated role was loaded")
	}
	for _, f := range e.srv.Requests() {
		if strings.HasPrefix(f, "targets/ghost") {
			t.Errorf("the client downloaded %s, which nobody delegates to", f)
		}
	}
}

// A compromised key below the threshold signs alone.
func TestAttackKeyBelowThreshold(t *testing.T) {
	tests := []struct {
		name   string
		role   string
		attack func(e *attackEnv, stolen tuftest.Key)
		rule   error
	}{
		{"targets", tuf.RoleTargets, func(e *attackEnv, stolen tuftest.Key) {
			e.repo.AddTarget(tuf.RoleTargets, "v1", []byte("evil"))
			e.repo.Bump(tuf.RoleTargets)
			e.repo.Sign(tuf.RoleTargets, stolen)
			e.online()
		}, trust.ErrSignatures},
		{"targets, one key signing twice", tuf.RoleTargets, func(e *attackEnv, stolen tuftest.Key) {
			e.repo.AddTarget(tuf.RoleTargets, "v1", []byte("evil"))
			e.repo.Bump(tuf.RoleTargets)
			e.repo.Signed[tuf.RoleTargets] = tuftest.DuplicateSignature(e.t, e.repo.Sign(tuf.RoleTargets, stolen), 2)
			e.online()
		}, trust.ErrSignatures},
		{"delegation", "targets/releases", func(e *attackEnv, stolen tuftest.Key) {
			e.repo.AddTarget("targets/releases", "v1", []byte("evil"))
			e.repo.Bump("targets/releases")
			e.repo.Sign("targets/releases", stolen)
			e.online()
		}, trust.ErrSignatures},
		{"snapshot", tuf.RoleSnapshot, func(e *attackEnv, stolen tuftest.Key) {
			e.repo.Bump(tuf.RoleSnapshot)
			e.repo.SignSnapshot()
			e.repo.Sign(tuf.RoleSnapshot, stolen)
			e.onlineTimestampOnly()
			e.srv.Publish(e.repo)
		}, trust.ErrSignatures},
		{"timestamp", tuf.RoleTimestamp, func(e *attackEnv, stolen tuftest.Key) {
			e.repo.Bump(tuf.RoleTimestamp)
			e.repo.SignTimestamp()
			e.srv.Serve(tuf.RoleTimestamp, e.repo.Sign(tuf.RoleTimestamp, stolen))
		}, trust.ErrSignatures},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newAttackEnv(t)
			k1, k2 := tuftest.NewKey(t), tuftest.NewKey(t)
			if tuf.IsDelegation(tt.role) {
				e.repo.Delegate(tt.role, []string{""}, k1, k2)
			} else {
				e.repo.SetRoleKeys(tt.role, k1, k2)
			}
			e.repo.SetThreshold(tt.role, 2)
			e.repo.SignAll()
			e.srv.Publish(e.repo)
			e.mustUpdate() // both keys sign: accepted
			if tuf.IsDelegation(tt.role) {
				e.wantSkipped(tt.role, trust.ErrThreshold, func() { tt.attack(e, k1) })
				return
			}
			e.keepsCache(func() {
				tt.attack(e, k1)
				_, err := e.update()
				wantRefused(t, err, tt.role, tt.rule)
			})
		})
	}
	t.Run("root rotation signed by one of two root keys", func(t *testing.T) {
		e := newAttackEnv(t)
		k1, k2 := tuftest.NewRootKey(t, attackGUN, attackNow), tuftest.NewRootKey(t, attackGUN, attackNow)
		e.repo.SetRoleKeys(tuf.RoleRoot, k1, k2)
		e.repo.SetThreshold(tuf.RoleRoot, 2)
		e.repo.SignAll()
		e.srv.Publish(e.repo)
		e.mustUpdate()
		e.keepsCache(func() {
			// The thief rotates root to its own key and the timestamp to
			// one it holds.
			mine := tuftest.NewRootKey(t, attackGUN, attackNow)
			e.repo.SetRoleKeys(tuf.RoleRoot, mine)
			e.repo.SetRoleKeys(tuf.RoleTimestamp, tuftest.NewKey(t))
			e.repo.Bump(tuf.RoleRoot)
			e.repo.Sign(tuf.RoleRoot, k1, mine)
			e.online()
			_, err := e.update()
			if err == nil || !strings.Contains(err.Error(), "could not rotate trust to a new trusted root") {
				t.Fatalf("rotation below the old root's threshold: %v", err)
			}
		})
	})
}

// A root that is not this repository's: the root of another repository,
// a rotation to another repository's certificate, a new root the old one
// did not sign, and, with pinning, a root on first contact that is not the
// pinned one.
func TestAttackForeignRoot(t *testing.T) {
	t.Run("first contact with the root of another repository", func(t *testing.T) {
		e := newAttackEnv(t)
		other := tuftest.NewRepo(t, otherGUN, attackNow)
		other.SignAll()
		e.srv.PublishFiles(other.Files())
		_, err := e.update()
		wantRefused(t, err, tuf.RoleRoot, trust.ErrRootCert)
		if !strings.Contains(err.Error(), `is for "`+otherGUN+`"`) || len(e.cache.m) != 0 {
			t.Fatalf("error %v; cache %d files", err, len(e.cache.m))
		}
	})
	t.Run("rotation to another repository's certificate", func(t *testing.T) {
		e := newAttackEnv(t)
		e.mustUpdate()
		e.keepsCache(func() {
			oldRoot := e.repo.Keys[tuf.RoleRoot]
			foreign := tuftest.NewRootKey(t, otherGUN, attackNow)
			e.repo.SetRoleKeys(tuf.RoleRoot, foreign)
			e.repo.SetRoleKeys(tuf.RoleTimestamp, tuftest.NewKey(t))
			e.repo.Bump(tuf.RoleRoot)
			e.repo.Sign(tuf.RoleRoot, append(oldRoot, foreign)...)
			e.online()
			_, err := e.update()
			if err == nil || !strings.Contains(err.Error(), `is for "`+otherGUN+`"`) {
				t.Fatalf("rotation to a foreign certificate: %v", err)
			}
		})
	})
	t.Run("new root not signed by the old root", func(t *testing.T) {
		e := newAttackEnv(t)
		e.mustUpdate()
		e.keepsCache(func() {
			mine := tuftest.NewRootKey(t, attackGUN, attackNow)
			e.repo.SetRoleKeys(tuf.RoleRoot, mine)
			e.repo.SetRoleKeys(tuf.RoleTimestamp, tuftest.NewKey(t))
			e.repo.Bump(tuf.RoleRoot)
			e.repo.Sign(tuf.RoleRoot)
			e.online()
			_, err := e.update()
			if err == nil || !strings.Contains(err.Error(), "could not rotate trust to a new trusted root") {
				t.Fatalf("unsigned rotation: %v", err)
			}
		})
	})
	t.Run("pinned client, first contact with a substituted root", func(t *testing.T) {
		e := newAttackEnv(t)
		pin := policy.Pinning{Certs: map[string][]string{attackGUN: {e.repo.Keys[tuf.RoleRoot][0].Key.ID()}}}
		rd := e.reader()
		rd.Pinning = pin
		if _, err := rd.Update(context.Background()); err != nil {
			t.Fatalf("the pinned root refused: %v", err)
		}
		// A fresh client meets an attacker's root with a valid certificate
		// for the right GUN.
		e.cache = &memCache{}
		fake := tuftest.NewRepo(t, attackGUN, attackNow)
		fake.SignAll()
		e.srv.PublishFiles(fake.Files())
		rd = e.reader()
		rd.Pinning = pin
		_, err := rd.Update(context.Background())
		wantRefused(t, err, tuf.RoleRoot, trust.ErrRootCert)
		if !strings.Contains(err.Error(), "pinned") || len(e.cache.m) != 0 {
			t.Fatalf("error %v; cache %d files", err, len(e.cache.m))
		}
		// Without pinning, the same first contact is trust on first use.
		e.mustUpdate()
	})
}

// One delegate rewriting another's tag. Docker puts every signer's key in
// targets/releases, so any signer can re-point any tag there and docker's
// resolution (releases, then targets) follows: the documented hole. The
// per-signer role targets/<name> cannot be written by another signer, and
// `signet verify --require-signer` resolves only from those
// (internal/cli TestTrustAndVerify runs the command end to end).
func TestAttackRewriteAnotherDelegatesTag(t *testing.T) {
	e := newAttackEnv(t)
	r := e.repo
	alice, bob := tuftest.NewKey(t), tuftest.NewKey(t)
	r.Delegate("targets/releases", []string{""}, alice, bob)
	r.Delegate("targets/alice", []string{""}, alice)
	r.Delegate("targets/bob", []string{""}, bob)
	r.Bump(tuf.RoleTargets)
	r.AddTarget("targets/releases", "v1", []byte("alice's image"))
	r.AddTarget("targets/alice", "v1", []byte("alice's image"))
	r.SignAll()
	e.srv.Publish(r)
	e.mustUpdate()

	t.Run("bob re-points v1 in targets/releases", func(t *testing.T) {
		r.AddTarget("targets/releases", "v1", []byte("bob's image"))
		r.Bump("targets/releases")
		r.Sign("targets/releases", bob)
		e.online()
		v := e.mustUpdate() // validly signed: TUF has nothing to refuse
		docker, ok := client.Lookup(v, "v1", "targets/releases", tuf.RoleTargets)
		if !ok || !bytes.Equal(digestOf(docker), sha("bob's image")) {
			t.Fatalf("docker-style resolution: %+v", docker)
		}
		signer, ok := client.RoleTarget(v, "targets/alice", "v1")
		if !ok || !bytes.Equal(digestOf(signer), sha("alice's image")) {
			t.Fatalf("alice's own role: %+v %v", signer, ok)
		}
	})
	t.Run("bob writes into targets/alice", func(t *testing.T) {
		v := e.wantSkipped("targets/alice", trust.ErrThreshold, func() {
			r.AddTarget("targets/alice", "v1", []byte("bob's image"))
			r.Bump("targets/alice")
			r.Sign("targets/alice", bob)
			e.online()
		})
		if signer, ok := client.RoleTarget(v, "targets/alice", "v1"); ok {
			t.Fatalf("alice's role, rewritten by bob, still answers: %+v", signer)
		}
	})
}
